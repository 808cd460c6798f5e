package slurm

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParsePendingJobs(t *testing.T) {
	// 24.11 records, shortened: one pending, one running, one pending
	// with -w, -x and a node range.
	out := "JobId=7 JobName=wrap UserId=root(0) JobState=PENDING Reason=Resources Dependency=(null) " +
		"SubmitTime=2026-12-03T05:20:01 Partition=img ReqNodeList=(null) ExcNodeList=(null) NodeList= " +
		"NumNodes=1-1 NumCPUs=1 Features=marked DelayBoot=00:00:00\n" +
		"JobId=6 JobName=wrap JobState=RUNNING Reason=None SubmitTime=2026-12-03T05:19:00 Partition=img NumNodes=2 Features=(null)\n" +
		"JobId=8 JobName=wrap JobState=PENDING Reason=Priority SubmitTime=2026-12-03T05:21:00 Partition=img,cloud " +
		"ReqNodeList=img[1-2] ExcNodeList=img3 NumNodes=2-4 Features=marked&avx2\n"
	jobs := parsePendingJobs(out)
	at, _ := time.ParseInLocation("2006-01-02T15:04:05", "2026-12-03T05:20:01", time.Local)
	if len(jobs) != 2 {
		t.Fatalf("got %+v", jobs)
	}
	j := jobs[0]
	if j.ID != "7" || j.Reason != "Resources" || j.Features != "marked" || j.MinNodes != 1 || !j.Submit.Equal(at) ||
		!slices.Equal(j.Partitions, []string{"img"}) || j.ReqNodes != "" || j.ExcNodes != "" {
		t.Errorf("job 7: %+v", j)
	}
	j = jobs[1]
	if j.ID != "8" || j.Reason != "Priority" || j.Features != "marked&avx2" || j.MinNodes != 2 ||
		!slices.Equal(j.Partitions, []string{"img", "cloud"}) || j.ReqNodes != "img[1-2]" || j.ExcNodes != "img3" {
		t.Errorf("job 8: %+v", j)
	}
	if got := parsePendingJobs("No jobs in the system\n"); len(got) != 0 {
		t.Errorf("no jobs: %+v", got)
	}
}

// TestRESTPendingJobsAndFeatures: GET /jobs/ as the v0.0.42 data parser
// writes JOB_INFO (src/plugins/data_parser/v0.0.42/parsers.c: node_count
// UINT32_NO_VAL, state_reason, required_nodes, excluded_nodes), and the
// node update's features_act (UPDATE_NODE_MSG, CSV_STRING).
func TestRESTPendingJobsAndFeatures(t *testing.T) {
	var posted []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slurm/v0.0.42/jobs/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"jobs":[
{"job_id":3,"job_state":["PENDING"],"state_reason":"Resources","partition":"img","features":"marked","node_count":{"set":true,"infinite":false,"number":2},"required_nodes":"","excluded_nodes":"img2","submit_time":{"set":true,"infinite":false,"number":1796275200}},
{"job_id":2,"job_state":["RUNNING"],"state_reason":"None","partition":"img","features":"","node_count":{"set":true,"infinite":false,"number":1}}],"errors":[]}`)
	})
	mux.HandleFunc("POST /slurm/v0.0.42/node/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posted = append(posted, r.PathValue("name")+" "+string(b))
		writeJSON(w, 200, `{"errors":[]}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r := newTestREST(t, srv.URL)
	jobs, err := r.PendingJobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].ID != "3" || jobs[0].MinNodes != 2 || jobs[0].ExcNodes != "img2" || jobs[0].Reason != "Resources" ||
		jobs[0].Features != "marked" || jobs[0].Submit.Unix() != 1796275200 {
		t.Fatalf("jobs %+v", jobs)
	}
	if err := r.SetActiveFeatures(context.Background(), "img1", []string{"marked"}); err != nil {
		t.Fatal(err)
	}
	var body map[string][]string
	if len(posted) != 1 || !strings.HasPrefix(posted[0], "img1 ") || json.Unmarshal([]byte(strings.TrimPrefix(posted[0], "img1 ")), &body) != nil ||
		!slices.Equal(body["features_act"], []string{"marked"}) {
		t.Fatalf("posted %q", posted)
	}
	for _, bad := range []struct {
		node  string
		feats []string
	}{{"img1", nil}, {"img1", []string{"a b"}}, {"img1", []string{"x,y"}}, {"img[1-2]", []string{"marked"}}} {
		if err := r.SetActiveFeatures(context.Background(), bad.node, bad.feats); err == nil {
			t.Errorf("SetActiveFeatures(%q, %q) accepted", bad.node, bad.feats)
		}
	}
	if len(posted) != 1 {
		t.Fatalf("invalid requests were sent: %q", posted)
	}
}

// TestScontrolActiveFeaturesArgv: one argv, no shell; invalid names are
// refused before scontrol runs.
func TestScontrolActiveFeaturesArgv(t *testing.T) {
	s, rec := fakeScontrolClient(t, "update-down", 0)
	if err := s.SetActiveFeatures(context.Background(), "img1", []string{"marked"}); err != nil {
		t.Fatal(err)
	}
	if got, want := readRecord(t, rec).Args, []string{"update", "NodeName=img1", "ActiveFeatures=marked"}; !slices.Equal(got, want) {
		t.Errorf("argv = %q\nwant   %q", got, want)
	}
	if err := s.SetActiveFeatures(context.Background(), "img1", []string{"marked;reboot"}); err == nil {
		t.Error("a feature with ';' accepted")
	}
}
