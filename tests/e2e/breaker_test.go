package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
)

// breakerFile reads the hooks' breaker state in head.
func breakerFile(t *testing.T) (st struct {
	Groups map[string]struct {
		Failures int  `json:"failures"`
		Open     bool `json:"open"`
	} `json:"groups"`
	Launches map[string]struct {
		OK      int `json:"ok"`
		Failed  int `json:"failed"`
		Refused int `json:"refused"`
	} `json:"launches"`
}) {
	t.Helper()
	out := run(t, "cat", elastic.StateDirInHead+"/breaker.json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("breaker.json: %v\n%s", err, out)
	}
	return st
}

// TestBreaker: the cloud group's image is broken; four direct resume calls
// and one resume slurmctld makes for a job fail: 5 consecutive failures
// open the group's circuit breaker (shown by `slurm-elastic breaker` and
// `status`); a further resume launches nothing; the reconciler keeps the
// group out of scheduling. With the image fixed, `slurm-elastic breaker
// reset` re-arms it, the reconciler returns the nodes to service and the
// waiting job completes.
func TestBreaker(t *testing.T) {
	reset(t)
	raw, err := elastic.Config(elastic.Settings{Name: cl.Name, Backend: "scontrol", SuspendTime: 15 * time.Second, CloudNodes: 4, Concurrency: 16,
		Image: "localhost/slurm-elastic-no-such-image:0"}, cl.Cluster, cl.SharedDir)
	if err != nil {
		t.Fatal(err)
	}
	// One Podman host without the image (image_pull_policy never): every
	// launch fails Config ("is on no podman host"), which the breaker
	// counts; the host is skipped for that image only, never cooled down.
	// (Before issue 15 a missing image cooled the host down and refused
	// siblings were Capacity, not counted: the cooldown stays off here.)
	raw = strings.Replace(raw, "podman:\n", "podman:\n  host_cooldown: 0s\n", 1)
	configure(t, elastic.Settings{Raw: raw + "breaker:\n  threshold: 5\n  reset: 0s\n"})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cl.Configure(ctx, elastic.Settings{Name: cl.Name})
		cl.Exec(ctx, adminBin, "breaker", "reset", "--all")
	})
	run(t, adminBin, "breaker", "reset", "--all") // what earlier tests counted
	logStart := len(hookLog(t))

	if code := hook(t, "slurm-elastic-resume", "cloud[1-4]"); code != 1 {
		t.Fatalf("resume of a broken group exited %d, want 1", code)
	}
	if st := breakerFile(t); st.Groups["cloud"].Failures != 4 || st.Groups["cloud"].Open {
		t.Fatalf("after 4 failures: %+v", st)
	}
	run(t, "scontrol", "update", "nodename=cloud[1-4]", "state=resume")
	id := sbatch(t, "-p", "cloud", "-N1", "-o", "/shared/job-%j.out", "--wrap", "hostname")
	waitFor(t, 90*time.Second, "the breaker of group cloud open", func() (bool, string) {
		st := breakerFile(t)
		return st.Groups["cloud"].Open, fmt.Sprintf("%+v", st)
	})
	if l := hookLog(t)[logStart:]; !strings.Contains(l, `"msg":"circuit breaker opened: the group's launches are stopped until it is re-armed"`) ||
		!strings.Contains(l, `"level":"ERROR"`) {
		t.Errorf("hook log lacks the ERROR line:\n%s", l)
	}
	if out := run(t, adminBin, "breaker"); !strings.Contains(out, "cloud   OPEN") || !strings.Contains(out, "5/5") {
		t.Errorf("slurm-elastic breaker:\n%s", out)
	}

	// Open: a resume launches nothing, the node gets our reason.
	waitFor(t, time.Minute, "cloud2 out of powering", func() (bool, string) {
		n := node(t, "cloud2")
		return !n.has("POWERING_UP") && !n.has("POWERING_DOWN"), fmt.Sprintf("%+v", n)
	})
	before := breakerFile(t).Launches["cloud"]
	if code := hook(t, "slurm-elastic-resume", "cloud2"); code != 1 {
		t.Fatalf("resume with the breaker open exited %d, want 1", code)
	}
	after := breakerFile(t).Launches["cloud"]
	if after.Failed != before.Failed || after.Refused != before.Refused+1 {
		t.Fatalf("launches before %+v after %+v: want one refused, no launch", before, after)
	}
	if n := node(t, "cloud2"); !strings.HasPrefix(n.Reason, "slurm-elastic: (Code:BreakerOpen) group cloud ") ||
		!strings.Contains(n.Reason, "slurm-elastic breaker reset cloud") {
		t.Fatalf("cloud2: %+v", n)
	}
	if c := containers(t); len(c) != 0 {
		t.Fatalf("containers: %v", c)
	}

	// The reconciler keeps the whole group out of scheduling.
	waitFor(t, 2*time.Minute, "every cloud node held with our BreakerOpen reason", func() (bool, string) {
		if _, err := reconcileOnce(ctxT(t, time.Minute)); err != nil {
			t.Logf("round: %v", err)
		}
		for _, n := range nodes(t, "cloud[1-4]") {
			if !(n.has("DOWN") || n.has("DRAIN")) || !strings.HasPrefix(n.Reason, "slurm-elastic: (Code:BreakerOpen) ") {
				return false, fmt.Sprintf("%s %v %q", n.Name, n.State, n.Reason)
			}
		}
		return true, ""
	})
	if out := run(t, adminBin, "status"); !strings.Contains(out, "OPEN since") {
		t.Errorf("status does not show the open breaker:\n%s", out)
	}

	// Fixed image, re-armed: the nodes come back and the job runs.
	configure(t, elastic.Settings{})
	if out := run(t, adminBin, "breaker", "reset", "cloud"); !strings.Contains(out, "cloud: re-armed (was open)") {
		t.Fatalf("breaker reset: %s", out)
	}
	stop := reconcileLoop(t)
	j := waitJob(t, id, 4*time.Minute, "COMPLETED")
	t.Logf("job %s completed after the re-arm, requeued %d time(s)", id, j.Restarts)
	if ev := reconcileEvents(t, "cloud3", "breaker_end"); len(ev) == 0 {
		t.Errorf("no breaker_end event for cloud3:\n%s", daemonLog(t))
	}
	waitFor(t, 3*time.Minute, "cloud nodes back in service", func() (bool, string) {
		for _, n := range nodes(t, "cloud[1-4]") {
			if n.has("DRAIN") || n.has("DOWN") {
				return false, fmt.Sprintf("%+v", n)
			}
		}
		return true, ""
	})
	stop()
	waitCloudIdle(t, 2*time.Minute)
	if st := breakerFile(t); st.Groups["cloud"].Open || st.Launches["cloud"].OK < 1 {
		t.Fatalf("after the re-arm: %+v", st)
	}
}
