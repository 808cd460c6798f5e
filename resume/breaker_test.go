package resume

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/reason"

	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// TestBreakerOpensAndRefuses: the ghost group (its image unknown) fails
// launch after launch; at breaker.threshold the breaker opens, and
// from then on resume launches nothing for the group and sets its nodes
// DOWN with the BreakerOpen reason. Other groups launch on.
func TestBreakerOpensAndRefuses(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.d.Config.Breaker.Threshold = 3
	e.d.Breaker = breaker.New()
	ctx := context.Background()
	for i := range 3 {
		if err := Resume(ctx, e.d, []string{"ghost1"}, nil); err == nil {
			t.Fatalf("launch %d of a broken group succeeded", i+1)
		}
		if open := e.d.Breaker.IsOpen("ghost"); open != (i == 2) {
			t.Fatalf("after %d failures open=%v: %+v", i+1, open, e.d.Breaker.Get("ghost"))
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
	c := e.d.Breaker.Launches
	if c["ghost"].Failed != 3 || c["ghost"].Refused != 2 || c["ghost"].FailuresByClass["Config"] != 3 || c["cloud"].OK != 1 || e.d.Breaker.IsOpen("cloud") {
		t.Fatalf("counts %+v %+v", c["ghost"], c["cloud"])
	}
	// Re-armed: launches are tried again.
	e.d.Breaker.Reset("ghost", time.Now())
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
	e.d.Breaker = breaker.New()
	Resume(context.Background(), e.d, []string{"cloud1", "cloud2", "cloud3"}, nil)
	if e.d.Breaker.IsOpen("cloud") || e.d.Breaker.Get("cloud").Failures != 0 {
		t.Fatalf("capacity failures counted: %+v", e.d.Breaker.Get("cloud"))
	}
	if c := e.d.Breaker.Launches["cloud"]; c.OK != 1 || c.Failed != 2 || c.FailuresByClass["Capacity"] != 2 {
		t.Fatalf("counts %+v", c)
	}
}

// TestBreakerTimedRearm: an open breaker past breaker.reset is
// re-armed by the next resume, which launches again.
func TestBreakerTimedRearm(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.d.Config.Breaker.Threshold = 1
	e.d.Config.Breaker.Reset = time.Minute
	e.d.Breaker = breaker.New()
	e.d.Breaker.Failure("cloud", "cloud4", "Config", "x", time.Now().Add(-2*time.Minute), 1, 0)
	if err := Resume(context.Background(), e.d, []string{"cloud1"}, nil); err != nil {
		t.Fatalf("resume after the timeout: %v", err)
	}
	if e.d.Breaker.IsOpen("cloud") || e.d.Breaker.Get("cloud").RearmedBy != "timeout" {
		t.Fatalf("%+v", e.d.Breaker.Get("cloud"))
	}
}

// TestResumeFailCountsTimeouts: a node that missed ResumeTimeout is a
// bootstrap failure; one our resume had already failed (its own reason
// kept) is not counted twice.
func TestResumeFailCountsTimeouts(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.d.Config.Breaker.Threshold = 5
	e.d.Breaker = breaker.New()
	e.sc.Update(context.Background(), []string{"cloud2"}, slurm.NodeUpdate{State: slurm.SetDown, Reason: reason.Format(reason.Config, "image gone")})
	if err := ResumeFail(context.Background(), e.d, []string{"cloud1", "cloud2"}); err != nil {
		t.Fatal(err)
	}
	b := e.d.Breaker.Get("cloud")
	if b.Failures != 1 || !strings.HasPrefix(b.LastFailure, "node cloud1: ResumeTimeout: ") {
		t.Fatalf("%+v", b)
	}
	if c := e.d.Breaker.Launches["cloud"]; c.FailuresByClass["ResumeTimeout"] != 1 || c.Failed != 0 {
		t.Fatalf("counts %+v", c)
	}
}
