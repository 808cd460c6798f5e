package slurm_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
)

// Fail powers down only what the registry calls retryable, and one bad
// node never fails the others of a batch.
func TestFail(t *testing.T) {
	ctx := context.Background()
	f := slurmfake.New("a1", "a2", "a3", "b1")
	res := slurm.Fail(ctx, f, []string{"b1"}, reason.Config, "image missing")
	if r := res["b1"]; r.Err != nil || !r.Down || r.PoweredDown {
		t.Fatalf("Config: %+v, want DOWN and not powered down", r)
	}
	if n, _ := f.Node("b1"); n.State != slurm.StateDown || !reason.Has(n.Reason, reason.Config) {
		t.Fatalf("b1: %+v", n)
	}

	bad := errors.New("slurmctld refused a2")
	f.SetFault(func(op string, names []string, u slurm.NodeUpdate) error {
		if op == "update" && slices.Contains(names, "a2") {
			return bad
		}
		return nil
	})
	res = slurm.Fail(ctx, f, []string{"a1", "a2", "a3"}, reason.DeadNode, "gone")
	for _, n := range []string{"a1", "a3"} {
		if r := res[n]; r.Err != nil || !r.Down || !r.PoweredDown {
			t.Errorf("%s: %+v, want DOWN and powered down", n, r)
		}
		if sn, _ := f.Node(n); !reason.Has(sn.Reason, reason.DeadNode) {
			t.Errorf("%s: reason %q", n, sn.Reason)
		}
	}
	if r := res["a2"]; !errors.Is(r.Err, bad) || r.Down {
		t.Errorf("a2: %+v, want the fault and not DOWN", r)
	}
}

// Fail ignores its caller's cancellation (a signal must not leave nodes
// half failed) but keeps the caller's deadline: a hook whose budget is
// over does not outlive it.
func TestFailDetachedButBounded(t *testing.T) {
	f := slurmfake.New("a1", "a2")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := slurm.Fail(ctx, f, []string{"a1"}, reason.Transient, "x")["a1"]; r.Err != nil || !r.PoweredDown {
		t.Fatalf("after cancel: %+v, want DOWN and powered down", r)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if r := slurm.Fail(ctx, f, []string{"a2"}, reason.Transient, "x")["a2"]; r.Down || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Fatalf("after the deadline: %+v, want nothing done (deadline exceeded)", r)
	}
}
