package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Issue 11, defect 8: a timer saved by a daemon that then stopped for 10
// minutes. Meanwhile c1 came up, ran, powered down and began a new
// power-up: the restored timer must not make the new one stuck at once.
func TestStaleTimerAfterRestart(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.up("c1", slurm.StateIdle, slurm.FlagPoweringUp)
	w.round(t)
	if err := w.r.SaveState(w.cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(10 * time.Minute) // no daemon; a new power-up of c1 has just begun
	r2, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadState(w.cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	if acts, err := r2.Round(context.Background()); err != nil || len(acts) != 0 {
		t.Fatalf("fresh power-up after the restart: acts %q err %v", kinds(acts), err)
	}
	if n := w.node(t, "c1"); !n.Has(slurm.FlagPoweringUp) || n.Reason != "" {
		t.Fatalf("c1 touched: %+v", n)
	}
}

// Issue 11, defect 8: the round saw c1 powering up past the limit with no
// instance, but the resume hook (holding c1's node lock) launched it in
// the meantime. Under the lock the daemon re-reads the runtime: the
// decision is withdrawn, the fresh node is left to boot.
func TestStuckWithdrawnWhenTheHookLaunched(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.up("c1", slurm.StateIdle, slurm.FlagPoweringUp)
	w.round(t)
	w.clock.Add(4 * time.Minute)
	hook := true
	w.r.d.LockNodes = func(ctx context.Context, nodes []string) (func(), map[string]error, error) {
		if hook { // the hook that held c1's lock is done: c1 runs
			w.launch(t, "c1")
			hook = false
		}
		return func() {}, nil, nil
	}
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("round: %q", got)
	}
	if n := w.node(t, "c1"); !n.Has(slurm.FlagPoweringUp) || reason.Has(n.Reason, reason.StuckPowerUp) || !w.hasInstance("c1") {
		t.Fatalf("fresh c1 killed: %+v instance=%v", n, w.hasInstance("c1"))
	}
}

// A timer belongs to one power-up: an instance created after the timer
// started (a launch of this power-up) restarts it, so a later loss of the
// instance counts from the launch, not from the power-up's first sight.
func TestTimerRestartsAtTheLaunch(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.up("c1", slurm.StateIdle, slurm.FlagPoweringUp)
	v := &view{entries: []Entry{{Name: "c1", Group: "g", Node: &slurm.Node{Name: "c1", State: slurm.StateIdle, Flags: []string{slurm.FlagPoweringUp}}}}}
	t0 := w.clock.Now()
	w.r.trackPoweringUp(v, t0)
	launched := t0.Add(2 * time.Minute)
	v.entries[0].Inst = &runtime.Instance{Name: "c1", ID: "i1", Created: launched}
	w.r.trackPoweringUp(v, t0.Add(150*time.Second))
	if got := v.entries[0].PoweringUpSince; !got.Equal(launched) {
		t.Fatalf("timer %v, want the launch %v", got, launched)
	}
	v.entries[0].Inst = nil // lost
	w.r.trackPoweringUp(v, t0.Add(4*time.Minute))
	if a, ok := Decide(t0.Add(4*time.Minute), w.r.policy, v.entries[0]); ok {
		t.Fatalf("stuck 2 minutes after the launch: %+v", a)
	}
}
