package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
)

// TestReconcileWarmPool: group cloud keeps one idle node warm, at most
// two powered up. A round powers one node up ahead of demand; Slurm keeps
// it up past SuspendTime (the SuspendExcNodes line `conf slurm` renders);
// a job runs on it without waiting for a launch, and while it does the
// pool warms a second node, and no third (max 2).
func TestReconcileWarmPool(t *testing.T) {
	reset(t)
	raw := rawConfig(t)
	const weight = "    weight: 10\n"
	if !strings.Contains(raw, weight) {
		t.Fatalf("rendered config lacks %q:\n%s", weight, raw)
	}
	configure(t, elastic.Settings{Raw: strings.Replace(raw, weight, weight+"    warm:\n      idle: 1\n      max: 2\n", 1)})
	// slurm.conf is fixed for the test cluster: apply the rendered line live.
	var exc string
	for _, l := range strings.Split(run(t, adminBin, "conf", "slurm"), "\n") {
		if strings.HasPrefix(l, "SuspendExcNodes=") {
			exc = l
		}
	}
	if exc != "SuspendExcNodes=cloud[1-4]:1" {
		t.Fatalf("conf slurm renders %q, want SuspendExcNodes=cloud[1-4]:1", exc)
	}
	run(t, "scontrol", "update", exc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cl.Configure(ctx, elastic.Settings{Name: cl.Name})
		clearExc(ctx, t)
	})

	if out, err := reconcileOnce(ctxT(t, time.Minute)); err != nil {
		t.Fatalf("round: %v %s\n%s", err, out, daemonLog(t))
	}
	var warm string
	for _, n := range []string{"cloud1", "cloud2", "cloud3", "cloud4"} {
		if ev := reconcileEvents(t, n, "warm"); len(ev) > 0 {
			if warm != "" {
				t.Fatalf("two nodes warmed for warm.idle 1: %s and %s", warm, n)
			}
			warm = n
		}
	}
	if warm == "" {
		t.Fatalf("no node warmed:\n%s", daemonLog(t))
	}
	waitFor(t, 2*time.Minute, warm+" up and idle", func() (bool, string) {
		n := node(t, warm)
		return n.has("IDLE") && !n.has("POWERED_DOWN") && !n.has("POWERING_UP") && len(containers(t)[warm]) == 1, fmt.Sprintf("%+v", n)
	})
	// Past SuspendTime (15s) Slurm keeps it, and the pool is full.
	time.Sleep(25 * time.Second)
	if n := node(t, warm); !n.has("IDLE") || n.has("POWERED_DOWN") || n.has("POWERING_DOWN") {
		t.Fatalf("warm %s suspended by Slurm: %+v", warm, n)
	}
	reconcileOnce(ctxT(t, time.Minute))
	if c := containers(t); len(c) != 1 {
		t.Fatalf("a full pool warmed more: %v", c)
	}

	id := sbatch(t, "-p", "cloud", "-N1", "-o", "/shared/job-%j.out", "--wrap", "sleep 30")
	j := waitJob(t, id, 30*time.Second, "RUNNING")
	if j.Nodes != warm {
		t.Fatalf("job %s runs on %s, not on the warm %s", id, j.Nodes, warm)
	}
	// Busy: one more is warmed; max 2 holds a third back.
	reconcileOnce(ctxT(t, time.Minute))
	reconcileOnce(ctxT(t, time.Minute))
	var second []string
	for _, n := range []string{"cloud1", "cloud2", "cloud3", "cloud4"} {
		if n != warm && len(reconcileEvents(t, n, "warm")) > 0 {
			second = append(second, n)
		}
	}
	if len(second) != 1 {
		t.Fatalf("while %s is busy, warmed %v; want exactly one more (max 2)", warm, second)
	}
	waitJob(t, id, 2*time.Minute, "COMPLETED")
	configure(t, elastic.Settings{})
	clearExc(ctxT(t, time.Minute), t)
	waitCloudIdle(t, 3*time.Minute)
}

// clearExc puts slurmctld back to the cluster's slurm.conf (no
// SuspendExcNodes). Slurm 24.11 logs `scontrol update SuspendExcNodes=` as
// taken, but its power-save thread kept a node up for minutes after it:
// only a reconfigure (slurmctld re-reads slurm.conf) lets it go.
func clearExc(ctx context.Context, t *testing.T) {
	if _, err := cl.Exec(ctx, "scontrol", "update", "SuspendExcNodes="); err != nil {
		t.Logf("clear SuspendExcNodes: %v", err)
	}
	if _, err := cl.Exec(ctx, "scontrol", "reconfigure"); err != nil {
		t.Logf("scontrol reconfigure: %v", err)
	}
	for ctx.Err() == nil {
		if _, err := cl.Exec(ctx, "scontrol", "ping"); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
}
