package nodehealth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
)

// scripted is a check returning the next scripted round on each Run (the
// last one repeats).
type scripted struct {
	name   string
	rounds [][]Finding
	calls  int
	k      int
	notify chan struct{}
}

func (s *scripted) Name() string { return s.name }
func (s *scripted) Run(ctx context.Context) []Finding {
	i := min(s.calls, len(s.rounds)-1)
	s.calls++
	return slices.Clone(s.rounds[i])
}
func (s *scripted) DrainAfter() int         { return s.k }
func (s *scripted) Notify() <-chan struct{} { return s.notify }

var (
	fail    = []Finding{Failf("/scratch", ActionDrain, "1.0%% free, want >= 5%%")}
	unknown = []Finding{Unknownf("/scratch", "statfs timed out")}
	ok      = []Finding{OKf("/scratch", "40%% free")}
)

// poweredOn wraps the fake so nodes look powered up (the fake starts them
// POWERED_DOWN and has no way to finish a power-up).
type poweredOn struct{ *slurmfake.Fake }

func (p poweredOn) Nodes(ctx context.Context, names ...string) ([]slurm.Node, error) {
	ns, err := p.Fake.Nodes(ctx, names...)
	for i := range ns {
		ns[i].Flags = slices.DeleteFunc(ns[i].Flags, func(f string) bool {
			return f == slurm.FlagPoweredDown || f == slurm.FlagPoweringUp
		})
	}
	return ns, err
}

func observe(s *State, check string, fs []Finding) {
	fs = slices.Clone(fs)
	for i := range fs {
		fs[i].Check = check
	}
	s.Observe(fs)
}

func TestPolicy(t *testing.T) {
	p := Policy{DrainAfter: 2, UndrainAfter: 2}
	idle := slurm.Node{Name: "n1", State: slurm.StateIdle}
	ourDrain := slurm.Node{Name: "n1", State: slurm.StateIdle, Flags: []string{slurm.FlagDrain},
		Reason: "slurm-elastic-health: disk: /scratch: full"}
	adminDrain := slurm.Node{Name: "n1", State: slurm.StateIdle, Flags: []string{slurm.FlagDrain}, Reason: "bad DIMM, ticket 42"}
	adminDown := slurm.Node{Name: "n1", State: slurm.StateDown, Reason: "PSU replaced, ticket 43"}
	adminDownDrain := slurm.Node{Name: "n1", State: slurm.StateDown, Flags: []string{slurm.FlagDrain}, Reason: "PSU replaced, ticket 43"}
	hooksDown := slurm.Node{Name: "n1", State: slurm.StateDown, Reason: "slurm-elastic: (Code:DeadNode) gone"}
	tests := []struct {
		name   string
		rounds [][]Finding
		node   slurm.Node
		want   Op
	}{
		{"one failure is not enough", [][]Finding{fail}, idle, OpNone},
		{"K failures drain", [][]Finding{fail, fail}, idle, OpDrain},
		{"an OK round resets", [][]Finding{fail, ok, fail}, idle, OpNone},
		{"unknown never drains", [][]Finding{unknown, unknown, unknown}, idle, OpNone},
		{"unknown does not reset failures", [][]Finding{fail, unknown, fail}, idle, OpDrain},
		{"watch never drains", [][]Finding{{Failf("x", ActionWatch, "sbe")}, {Failf("x", ActionWatch, "sbe")}}, idle, OpNone},
		{"powering up: wait", [][]Finding{fail, fail}, slurm.Node{Name: "n1", State: slurm.StateIdle, Flags: []string{slurm.FlagPoweringUp}}, OpNone},
		{"powering down: wait", [][]Finding{fail, fail}, slurm.Node{Name: "n1", State: slurm.StateIdle, Flags: []string{slurm.FlagPoweringDown}}, OpNone},
		{"powered down: wait", [][]Finding{ok, ok, ok}, slurm.Node{Name: "n1", State: slurm.StateIdle, Flags: []string{slurm.FlagPoweredDown, slurm.FlagDrain}, Reason: ourDrain.Reason}, OpNone},
		{"admin drain is left alone when failing", [][]Finding{fail, fail}, adminDrain, OpNone},
		{"admin drain is never undrained", [][]Finding{ok, ok, ok, ok}, adminDrain, OpNone},
		{"admin down is left alone when failing", [][]Finding{fail, fail}, adminDown, OpNone},
		{"admin down is never undrained", [][]Finding{ok, ok, ok}, adminDown, OpNone},
		{"down+drain by someone else is left alone", [][]Finding{fail, fail}, adminDownDrain, OpNone},
		{"hooks' down is left alone", [][]Finding{fail, fail}, hooksDown, OpNone},
		{"our drain: M clean rounds undrain", [][]Finding{fail, ok, ok}, ourDrain, OpUndrain},
		{"our drain: fewer than M clean rounds wait", [][]Finding{fail, fail, ok}, ourDrain, OpNone},
		{"our drain: unknown is not clean", [][]Finding{ok, unknown, ok}, ourDrain, OpNone},
		{"our drain: still failing", [][]Finding{fail, fail, fail}, ourDrain, OpNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			for _, r := range tc.rounds {
				observe(&s, "disk", r)
			}
			d := p.Decide(&s, tc.node)
			if d.Op != tc.want {
				t.Fatalf("got %s (%s), want %s", d.Op, d.Why, tc.want)
			}
			if d.Op == OpDrain && d.Reason != "slurm-elastic-health: disk: /scratch: 1.0% free, want >= 5%" {
				t.Errorf("reason %q", d.Reason)
			}
		})
	}
}

func TestPolicyPerCheckThreshold(t *testing.T) {
	p := Policy{DrainAfter: 3, PerCheck: map[string]int{"xid": 1}}
	var s State
	observe(&s, "xid", []Finding{Failf("gpu3", ActionPowerCycle, "Xid 79: GPU has fallen off the bus")})
	d := p.Decide(&s, slurm.Node{Name: "n1", State: slurm.StateAllocated})
	if d.Op != OpDrain || d.Reason != "slurm-elastic-health: xid: gpu3: Xid 79: GPU has fallen off the bus (power-cycle)" {
		t.Fatalf("%+v", d)
	}
}

func TestReason(t *testing.T) {
	long := Finding{Check: "custom", Component: "custom", Status: Fail, Message: strings.Repeat("é", 200) + "\nsecond line"}
	r := Reason(long)
	if len(r) > 240 || !strings.HasSuffix(r, "...") || strings.Contains(r, "\n") {
		t.Fatalf("reason %d bytes: %q", len(r), r)
	}
	if c, ok := OwnReason(r); !ok || c != "custom" {
		t.Fatalf("OwnReason(%q) = %q, %v", r, c, ok)
	}
	for _, other := range []string{"slurm-elastic: (Code:launch) x", "NHC: disk full", ""} {
		if _, ok := OwnReason(other); ok {
			t.Errorf("OwnReason(%q) claims it", other)
		}
	}
}

func newRunner(t *testing.T, checks ...Check) (*Runner, *slurmfake.Fake) {
	t.Helper()
	f := slurmfake.New("n1", "n2")
	return &Runner{Node: "n1", Checks: checks, Policy: Policy{DrainAfter: 2, UndrainAfter: 2},
		Slurm: poweredOn{f}, CheckTimeout: time.Second, Metrics: NewMetrics("n1")}, f
}

func TestRunnerDrainsAndUndrains(t *testing.T) {
	ctx := context.Background()
	c := &scripted{name: "disk", rounds: [][]Finding{fail, fail, fail, ok, ok}}
	r, f := newRunner(t, c)
	wantFlags := []bool{false, true, true, true, false}
	for i, want := range wantFlags {
		if _, _, err := r.Round(ctx); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		n, _ := f.Node("n1")
		if got := slices.Contains(n.Flags, slurm.FlagDrain); got != want {
			t.Fatalf("round %d: drained=%v want %v (reason %q)", i, got, want, n.Reason)
		}
		if want && !strings.HasPrefix(n.Reason, "slurm-elastic-health: disk: /scratch: ") {
			t.Fatalf("round %d: reason %q", i, n.Reason)
		}
	}
	if n, _ := f.Node("n2"); slices.Contains(n.Flags, slurm.FlagDrain) {
		t.Fatal("another node was touched")
	}
	if got := f.Calls("update"); got != 2 {
		t.Errorf("%d updates, want 2 (one drain, one undrain)", got)
	}
}

func TestRunnerNeverUndrainsAdminDrain(t *testing.T) {
	ctx := context.Background()
	c := &scripted{name: "disk", rounds: [][]Finding{fail, fail, ok}}
	r, f := newRunner(t, c)
	if err := f.Update(ctx, []string{"n1"}, slurm.NodeUpdate{State: slurm.SetDrain, Reason: "admin: memtest"}); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if _, _, err := r.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n, _ := f.Node("n1")
	if !slices.Contains(n.Flags, slurm.FlagDrain) || n.Reason != "admin: memtest" {
		t.Fatalf("admin drain changed: %+v", n)
	}
	if got := f.Calls("update"); got != 1 {
		t.Errorf("%d updates, want only the admin's", got)
	}
}

// An admin's `scontrol update state=down reason=...` is neither
// overwritten by a health drain nor later undrained.
func TestRunnerNeverTouchesAdminDown(t *testing.T) {
	ctx := context.Background()
	c := &scripted{name: "disk", rounds: [][]Finding{fail, fail, fail, ok, ok, ok}}
	r, f := newRunner(t, c)
	if err := f.Update(ctx, []string{"n1"}, slurm.NodeUpdate{State: slurm.SetDown, Reason: "admin: PSU swap"}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, _, err := r.Round(ctx); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		n, _ := f.Node("n1")
		if n.Reason != "admin: PSU swap" || slices.Contains(n.Flags, slurm.FlagDrain) || n.State != slurm.StateDown {
			t.Fatalf("round %d: admin down changed: %+v", i, n)
		}
	}
	if got := f.Calls("update"); got != 1 {
		t.Errorf("%d updates, want only the admin's", got)
	}
}

func TestRunnerDryRun(t *testing.T) {
	c := &scripted{name: "disk", rounds: [][]Finding{fail}}
	r, f := newRunner(t, c)
	r.DryRun = true
	for range 3 {
		_, d, err := r.Round(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d.Op == OpNone && r.state.fails["disk"] >= 2 {
			t.Fatalf("dry run should still decide: %+v", d)
		}
	}
	if f.Calls("update") != 0 {
		t.Fatal("dry run updated slurm")
	}
}

func TestRunnerSlurmUnreachableKeepsFinding(t *testing.T) {
	ctx := context.Background()
	c := &scripted{name: "disk", rounds: [][]Finding{fail}}
	r, f := newRunner(t, c)
	down := errors.New("connection refused")
	f.SetFault(func(op string, _ []string, _ slurm.NodeUpdate) error { return down })
	for i := range 3 {
		if _, _, err := r.Round(ctx); !errors.Is(err, down) {
			t.Fatalf("round %d: err %v, want the slurm error", i, err)
		}
	}
	// Slurm answers reads but refuses the update: still an error.
	f.SetFault(func(op string, _ []string, _ slurm.NodeUpdate) error {
		if op == "update" {
			return down
		}
		return nil
	})
	if d, err := r.Act(ctx); !errors.Is(err, down) || d.Op != OpDrain {
		t.Fatalf("act: %+v %v", d, err)
	}
	f.SetFault(nil)
	d, err := r.Act(ctx)
	if err != nil || d.Op != OpDrain {
		t.Fatalf("retry: %+v %v", d, err)
	}
	if n, _ := f.Node("n1"); !slices.Contains(n.Flags, slurm.FlagDrain) {
		t.Fatal("finding lost: node not drained after slurm came back")
	}
}

// stuck ignores its context until released, like a stat on a hung mount.
type stuck struct {
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (s *stuck) Name() string { return "stuck" }
func (s *stuck) Run(context.Context) []Finding {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	<-s.release
	return ok
}

func TestRunnerAbandonsStuckCheck(t *testing.T) {
	s := &stuck{release: make(chan struct{})}
	c := &scripted{name: "disk", rounds: [][]Finding{ok}}
	r, _ := newRunner(t, s, c)
	r.CheckTimeout = 100 * time.Millisecond
	for i := range 2 {
		fs, _, err := r.Round(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 2 || fs[1].Check != "stuck" || fs[1].Status != Unknown || fs[0].Status != OK {
			t.Fatalf("round %d: %v", i, fs)
		}
	}
	s.mu.Lock()
	calls := s.calls
	s.mu.Unlock()
	if calls != 1 {
		t.Fatalf("stuck check started %d times while still running", calls)
	}
	close(s.release)
}

func TestRunNotifyAndMetrics(t *testing.T) {
	c := &scripted{name: "xid", k: 1, notify: make(chan struct{}, 1),
		rounds: [][]Finding{ok, {Failf("gpu0", ActionPowerCycle, "Xid 79")}}}
	r, f := newRunner(t, c)
	r.Policy.PerCheck = map[string]int{"xid": c.DrainAfter()}
	r.Interval = time.Hour // only the event can trigger the second round
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	c.notify <- struct{}{}
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, _ := f.Node("n1")
		if slices.Contains(n.Flags, slurm.FlagDrain) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("event did not lead to a drain")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mfs, err := r.Metrics.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var status, drains float64 = -1, -1
	for _, mf := range mfs {
		switch mf.GetName() {
		case "slurm_elastic_health_check_status":
			status = mf.GetMetric()[0].GetGauge().GetValue()
		case "slurm_elastic_health_actions_total":
			drains = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if status != float64(Fail) || drains != 1 {
		t.Fatalf("metrics: status %v drains %v", status, drains)
	}
}

func TestSummaryAndString(t *testing.T) {
	w := Finding{Check: "gpu", Component: "gpu0", Status: Fail, Action: ActionWatch, Message: "sbe"}
	if Summary([]Finding{w}) != OK || Summary(unknown) != Unknown || Summary(append(slices.Clone(unknown), fail...)) != Fail {
		t.Fatal("summaries")
	}
	if s := fail[0]; (Finding{Check: "disk", Component: s.Component, Status: s.Status, Message: s.Message}).String() !=
		"FAIL disk /scratch: 1.0% free, want >= 5% (drain)" {
		t.Fatal((Finding{Check: "disk", Component: s.Component, Status: s.Status, Message: s.Message}).String())
	}
}

// TestRunnerAsksSlurmOnlyWhenNeeded: healthy rounds on a node not drained
// by us read the node once per Refresh, not once per round; a failing
// round, and every round while the node is drained by us, read it.
func TestRunnerAsksSlurmOnlyWhenNeeded(t *testing.T) {
	ctx := context.Background()
	c := &scripted{name: "disk", rounds: [][]Finding{ok, ok, ok, fail, fail, ok, ok, ok, ok}}
	r, f := newRunner(t, c)
	r.Refresh = time.Hour
	// round:            1  2  3  4  5  6  7  8  9
	wantReads := []int{1, 1, 1, 2, 3, 4, 5, 5, 5}
	wantDrain := []bool{false, false, false, false, true, true, false, false, false}
	for i := range wantReads {
		if _, _, err := r.Round(ctx); err != nil {
			t.Fatalf("round %d: %v", i+1, err)
		}
		n, _ := f.Node("n1")
		if got := f.Calls("nodes"); got != wantReads[i] {
			t.Fatalf("round %d: %d reads of the node, want %d", i+1, got, wantReads[i])
		}
		if got := slices.Contains(n.Flags, slurm.FlagDrain); got != wantDrain[i] {
			t.Fatalf("round %d: drained %v, want %v", i+1, got, wantDrain[i])
		}
	}
	r.Refresh = time.Nanosecond // stale: the next round reads again
	if _, _, err := r.Round(ctx); err != nil || f.Calls("nodes") != 6 {
		t.Fatalf("after Refresh: %d reads, err %v", f.Calls("nodes"), err)
	}
}
