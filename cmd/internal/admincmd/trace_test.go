package admincmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/timeline"
)

func TestTraceKeepsTheJobsRecordsInOrder(t *testing.T) {
	sub := time.Date(2026, 12, 2, 19, 0, 1, 0, time.Local)
	// Slurm's StartTime is the truncated second of the prolog's end: it
	// sorts after it.
	j := slurm.Job{ID: "42", Name: "wrap", State: "RUNNING", Nodes: "c[1-2]", Partition: "cloud", Submit: sub, Start: sub.Add(2 * time.Second)}
	nodes := []string{"c1", "c2"}
	recs := []timeline.Record{
		{Time: sub.Add(-time.Hour), Event: timeline.Launched, Node: "c1"}, // an older power-up
		{Time: sub.Add(300 * time.Millisecond), Event: timeline.Resume, Job: "42", Nodes: "c[1-2]"},
		{Time: sub.Add(200 * time.Millisecond), Event: timeline.PrologWait, Job: "42", Nodes: "c[1-2]"},
		{Time: sub.Add(1200 * time.Millisecond), Event: timeline.Launched, Node: "c2", Detail: "host h1"},
		{Time: sub.Add(1300 * time.Millisecond), Event: timeline.Addressed, Node: "c2", Detail: "10.0.0.2"},
		{Time: sub.Add(1500 * time.Millisecond), Event: timeline.Launched, Node: "c9"}, // not the job's node
		{Time: sub.Add(2100 * time.Millisecond), Event: timeline.Registered, Job: "42", Node: "c2"},
		{Time: sub.Add(2200 * time.Millisecond), Event: timeline.PrologDone, Job: "42", Detail: "up after 2s"},
		{Time: sub.Add(time.Second), Event: timeline.Resume, Job: "43", Nodes: "c[1-2]"}, // another job
	}
	var kept []timeline.Record
	for _, r := range recs {
		if keepRecord(j, nodes, r) {
			kept = append(kept, r)
		}
	}
	var b bytes.Buffer
	writeTrace(&b, j, kept)
	got := b.String()
	var events []string
	for _, l := range strings.Split(strings.TrimSpace(got), "\n")[1:] {
		f := strings.Fields(l)
		events = append(events, strings.Join(f[2:], " "))
	}
	want := []string{"submitted (Slurm, whole seconds)", "prolog waits for nodes c[1-2]", "resume called c[1-2]", "instance started c2 host h1",
		"addressed c2 10.0.0.2", "registered c2", "prolog done up after 2s", "running (Slurm StartTime, whole seconds)"}
	if strings.Join(events, "|") != strings.Join(want, "|") {
		t.Fatalf("events\n%q\nwant\n%q\n%s", events, want, got)
	}
	if !strings.Contains(got, "+2.200s") || !strings.HasPrefix(got, "job 42 (wrap) RUNNING, partition cloud, nodes c[1-2]") {
		t.Fatalf("trace:\n%s", got)
	}
}
