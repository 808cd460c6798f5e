package slurm

import (
	"strings"
	"testing"
	"time"
)

func TestParseShowJob(t *testing.T) {
	// A 24.11 record, shortened.
	out := "JobId=42 JobName=wrap UserId=root(0) GroupId=root(0) Priority=1 JobState=RUNNING Reason=None " +
		"SubmitTime=2026-12-02T19:00:01 EligibleTime=2026-12-02T19:00:01 StartTime=2026-12-02T19:00:04 EndTime=Unknown " +
		"Partition=cloud NodeList=cloud[1-2] BatchHost=cloud1\n"
	j, err := parseShowJob("42", out)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, _ := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local)
		return tm
	}
	want := Job{ID: "42", Name: "wrap", State: "RUNNING", Nodes: "cloud[1-2]", Partition: "cloud",
		Submit: at("2026-12-02T19:00:01"), Start: at("2026-12-02T19:00:04")}
	if j != want {
		t.Fatalf("got  %+v\nwant %+v", j, want)
	}
	if _, err := parseShowJob("42", "slurm_load_jobs error: Invalid job id specified\n"); err == nil {
		t.Fatal("no JobId: no error")
	}
	if err := validJobID("1;rm"); err == nil || !strings.Contains(err.Error(), `"1;rm"`) {
		t.Fatalf("bad id: %v", err)
	}
	for _, ok := range []string{"7", "7_3", "7+1"} {
		if err := validJobID(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
