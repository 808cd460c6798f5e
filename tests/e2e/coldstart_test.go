package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// TestColdStart: a batch job, an srun and a salloc on powered-down nodes
// start as soon as their nodes register. slurm-elastic-prolog (the
// PrologSlurmctld `slurm-elastic conf slurm` renders) waits for the nodes
// and exits; slurmctld then completes the job's configuration at once
// (prolog_running_decr), not in its periodic pass every 30 s. The proof is
// slurmctld's own line for each job; the figures are logged, and the
// targets live in the benchmark (docs/benchmarks.md, make bench).
func TestColdStart(t *testing.T) {
	reset(t)
	ctlLog := filepath.Join(cl.SlurmLogDir, "slurmctld.log")
	logStart := len(hookLog(t))

	type result struct {
		what, id, out string
		err           error
	}
	var (
		mu   sync.Mutex
		res  []result
		wg   sync.WaitGroup
		t0   = time.Now()
		keep = func(r result) { mu.Lock(); res = append(res, r); mu.Unlock() }
	)
	batch := sbatch(t, "-p", "cloud", "-N2", "-w", "cloud[1-2]", "-o", "/shared/job-%j.out", "--wrap", "srun hostname")
	// Interactive jobs block until done: each prints its job id first.
	for _, c := range []struct{ what, node string }{{"srun", "cloud3"}, {"salloc", "cloud4"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			argv := []string{"srun", "-p", "cloud", "-N1", "-w", c.node, "bash", "-c", "echo $SLURM_JOB_ID; hostname"}
			if c.what == "salloc" {
				argv = append([]string{"salloc", "-p", "cloud", "-N1", "-w", c.node}, argv[0], "bash", "-c", "echo $SLURM_JOB_ID; hostname")
			}
			out, err := cl.Exec(ctxT(t, 3*time.Minute), argv...)
			f := strings.Fields(out)
			id := ""
			if len(f) > 0 {
				id = f[0]
			}
			keep(result{what: c.what + " on " + c.node, id: id, out: out, err: err})
		}()
	}
	waitJob(t, batch, 3*time.Minute, "COMPLETED")
	wg.Wait()
	t.Logf("all three done %v after submit", time.Since(t0).Round(time.Millisecond))
	res = append(res, result{what: "sbatch on cloud[1-2]", id: batch})
	for _, r := range res {
		if r.err != nil || r.id == "" {
			t.Fatalf("%s: %v\n%s", r.what, r.err, r.out)
		}
	}
	if out, _ := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+batch+".out")); !strings.Contains(string(out), "cloud1") || !strings.Contains(string(out), "cloud2") {
		t.Errorf("batch job %s printed %q, want cloud1 and cloud2", batch, out)
	}

	ctl, err := os.ReadFile(ctlLog)
	if err != nil {
		t.Fatal(err)
	}
	log := hookLog(t)[logStart:]
	for _, r := range res {
		done := fmt.Sprintf("prolog_running_decr: Configuration for JobId=%s is complete", r.id)
		if !strings.Contains(string(ctl), done) {
			t.Errorf("%s (job %s): slurmctld did not start it when the prolog ended (no %q in slurmctld.log)", r.what, r.id, done)
		}
		if !jobLogHas(log, "the job's nodes are up: it starts now", r.id) {
			t.Errorf("%s (job %s): the prolog did not log that it waited for the job's nodes:\n%s", r.what, r.id, log)
		}
		j := getJobTimes(t, r.id)
		t.Logf("%s (job %s): submit -> running %s", r.what, r.id, j.StartTime.Sub(j.SubmitTime))
	}
	// Where the time went, as an admin asks it.
	tr := run(t, harness.AdminCLIInHead, "trace", batch)
	t.Logf("slurm-elastic trace %s:\n%s", batch, tr)
	for _, want := range []string{"submitted", "resume called", "instance started         cloud1", "addressed                cloud2",
		"registered               cloud1", "registered               cloud2", "prolog done", "running"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace of job %s lacks %q", batch, want)
		}
	}
	waitCloudIdle(t, 3*time.Minute)
}

// jobLogHas reports whether a JSON log line has message msg for job id.
func jobLogHas(log, msg, id string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"msg":"`+msg+`"`) && strings.Contains(l, `"job":"`+id+`"`) {
			return true
		}
	}
	return false
}

type jobTimes struct{ SubmitTime, StartTime time.Time }

// getJobTimes reads SubmitTime and StartTime of `scontrol -o show job ID`
// (whole seconds, head's local time).
func getJobTimes(t *testing.T, id string) jobTimes {
	t.Helper()
	out := run(t, "scontrol", "-o", "show", "job", id)
	var j jobTimes
	for _, f := range strings.Fields(out) {
		k, v, _ := strings.Cut(f, "=")
		tm, err := time.ParseInLocation("2006-01-02T15:04:05", v, time.Local)
		if err != nil {
			continue
		}
		switch k {
		case "SubmitTime":
			j.SubmitTime = tm
		case "StartTime":
			j.StartTime = tm
		}
	}
	return j
}
