package resume

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/reason"

	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/power"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// TestBreakerOpensAndRefuses: the ghost group (its image unknown) fails
// launch after launch; at breaker.threshold the breaker opens, and
// from then on resume launches nothing for the group and sets its nodes
// DOWN with the BreakerOpen reason. Other groups launch on.
func TestBreakerOpensAndRefuses(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.d.Config.Breaker.Threshold = 3
	e.d.Breaker = &breaker.Store{Dir: t.TempDir()}
	ctx := context.Background()
	for i := range 3 {
		if err := Resume(ctx, e.d, []string{"ghost1"}, nil); err == nil {
			t.Fatalf("launch %d of a broken group succeeded", i+1)
		}
		if open := e.state(t).IsOpen("ghost"); open != (i == 2) {
			t.Fatalf("after %d failures open=%v: %+v", i+1, open, e.state(t).Get("ghost"))
		}
	}
	// The failure that opened it says so on the node, which is powered
	// down at once (not left DOWN for the admin as a Config failure is).
	if sn := e.node(t, "ghost1"); !strings.HasPrefix(sn.Reason, "slurm-elastic: (Code:BreakerOpen) group ghost launches stopped after 3 consecutive failures") ||
		!strings.Contains(sn.Reason, "node ghost1: Config: ") || !sn.Has(slurm.FlagPoweredDown) {
		t.Fatalf("ghost1 after the failure that opened the breaker: %+v", sn)
	}
	launchesBefore := e.rt.Stats().Calls
	err := Resume(ctx, e.d, []string{"ghost1", "ghost2", "cloud1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "circuit breaker open") {
		t.Fatalf("err = %v", err)
	}
	if got := e.rt.Stats().Calls - launchesBefore; got != 1 {
		t.Fatalf("%d runtime calls, want 1 (cloud1 only)", got)
	}
	for _, n := range []string{"ghost1", "ghost2"} {
		sn := e.node(t, n)
		if !strings.HasPrefix(sn.Reason, "slurm-elastic: (Code:BreakerOpen) group ghost ") ||
			!strings.Contains(sn.Reason, "slurm-elastic breaker reset ghost") {
			t.Errorf("%s: %+v", n, sn)
		}
	}
	if _, ok := e.instances(t)["cloud1"]; !ok {
		t.Fatal("cloud1 of a healthy group not launched")
	}
	c := e.state(t).Launches
	if c["ghost"].Failed != 3 || c["ghost"].Refused != 2 || c["ghost"].FailuresByClass["Config"] != 3 || c["cloud"].OK != 1 || e.state(t).IsOpen("cloud") {
		t.Fatalf("counts %+v %+v", c["ghost"], c["cloud"])
	}
	// Re-armed: launches are tried again.
	e.d.Breaker.Update(context.Background(), func(s *breaker.State) { s.Reset("ghost", time.Now()) })
	before := e.rt.Stats().Calls
	Resume(ctx, e.d, []string{"ghost1"}, nil)
	if e.rt.Stats().Calls == before {
		t.Fatal("no launch after a reset")
	}
}

// TestBreakerIgnoresCapacity: Capacity failures are the cooldown's
// business: counted by class, never toward the breaker.
func TestBreakerIgnoresCapacity(t *testing.T) {
	e := newEnv(t, runtimefake.Options{Capacity: 1})
	e.d.Config.Breaker.Threshold = 1
	e.d.Breaker = &breaker.Store{Dir: t.TempDir()}
	Resume(context.Background(), e.d, []string{"cloud1", "cloud2", "cloud3"}, nil)
	if e.state(t).IsOpen("cloud") || e.state(t).Get("cloud").Failures != 0 {
		t.Fatalf("capacity failures counted: %+v", e.state(t).Get("cloud"))
	}
	if c := e.state(t).Launches["cloud"]; c.OK != 1 || c.Failed != 2 || c.FailuresByClass["Capacity"] != 2 {
		t.Fatalf("counts %+v", c)
	}
}

// TestBreakerTimedRearm: an open breaker past breaker.reset is
// re-armed by the next resume, which launches again.
func TestBreakerTimedRearm(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.d.Config.Breaker.Threshold = 1
	e.d.Config.Breaker.Reset = time.Minute
	e.d.Breaker = &breaker.Store{Dir: t.TempDir()}
	e.d.Breaker.Update(context.Background(), func(s *breaker.State) {
		s.Failure("cloud", "cloud4", "Config", "x", time.Now().Add(-2*time.Minute), 1, 0)
	})
	if err := Resume(context.Background(), e.d, []string{"cloud1"}, nil); err != nil {
		t.Fatalf("resume after the timeout: %v", err)
	}
	if e.state(t).IsOpen("cloud") || e.state(t).Get("cloud").RearmedBy != "timeout" {
		t.Fatalf("%+v", e.state(t).Get("cloud"))
	}
}

// TestResumeFailCountsTimeouts: a node that missed ResumeTimeout is a
// bootstrap failure; one our resume had already failed (its own reason
// kept) is not counted twice.
func TestResumeFailCountsTimeouts(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.d.Config.Breaker.Threshold = 5
	e.d.Breaker = &breaker.Store{Dir: t.TempDir()}
	e.sc.Update(context.Background(), []string{"cloud2"}, slurm.NodeUpdate{State: slurm.SetDown, Reason: reason.Format(reason.Config, "image gone")})
	if err := ResumeFail(context.Background(), e.d, []string{"cloud1", "cloud2"}); err != nil {
		t.Fatal(err)
	}
	b := e.state(t).Get("cloud")
	if b.Failures != 1 || !strings.HasPrefix(b.LastFailure, "node cloud1: ResumeTimeout: ") {
		t.Fatalf("%+v", b)
	}
	if c := e.state(t).Launches["cloud"]; c.FailuresByClass["ResumeTimeout"] != 1 || c.Failed != 0 {
		t.Fatalf("counts %+v", c)
	}
}

// state reads the breaker state the runs saved.
func (e env) state(t *testing.T) *breaker.State {
	t.Helper()
	st, err := breaker.Load(e.d.Breaker.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestBreakerIgnoresSignal: a resume stopped by a signal (ctx cancelled)
// before its launches launches nothing, counts nothing and still fails
// the nodes (Interrupted, powered down) within its budget.
func TestBreakerIgnoresSignal(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.d.Config.Breaker.Threshold = 1
	e.d.Breaker = &breaker.Store{Dir: t.TempDir()}
	e.d.Budget = power.NewBudget(time.Now(), time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Resume(ctx, e.d, []string{"cloud1", "cloud2"}, nil); err == nil {
		t.Fatal("a stopped resume reported success")
	}
	if st := e.state(t); st.IsOpen("cloud") || st.Get("cloud").Failures != 0 || (st.Launches["cloud"] != nil && st.Launches["cloud"].Failed != 0) {
		t.Fatalf("signal counted as a launch failure: %+v %+v", st.Get("cloud"), st.Launches["cloud"])
	}
	for _, n := range []string{"cloud1", "cloud2"} {
		if sn := e.node(t, n); !reason.Has(sn.Reason, reason.Interrupted) || !strings.Contains(sn.Reason, "stopped") || !sn.Has(slurm.FlagPoweredDown) {
			t.Errorf("%s: %+v", n, sn)
		}
	}
	if e.rt.Stats().Calls != 0 {
		t.Errorf("%d runtime calls after the signal, want 0", e.rt.Stats().Calls)
	}
}
