package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/nodelock"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type world struct {
	cfg   *conf.Config
	rt    *runtimefake.Fake
	sc    *slurmfake.Fake
	clock *clock
	r     *Reconciler
	locks atomic.Int32
}

func newWorld(t testing.TB, nodes string, names ...string) *world {
	t.Helper()
	cfg := conf.Default()
	cfg.Cluster = "t"
	cfg.StateDir = t.TempDir()
	cfg.Groups = []conf.Group{{Name: "g", Nodes: nodes, Runtime: "fake", Template: conf.Template{Image: "img"}}}
	cfg.Daemon.OrphanGrace = time.Minute
	cfg.Daemon.PowerUpLimit = 3 * time.Minute
	cfg.ApplyDefaults()
	w := &world{cfg: &cfg, rt: runtimefake.New(runtimefake.Options{Cluster: "t"}), sc: slurmfake.New(names...), clock: &clock{t: time.Now()}}
	r, err := New(Deps{
		Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now,
		Lock: func(ctx context.Context) (func(), error) { w.locks.Add(1); return func() {}, nil },
		// The node locks the hooks take, a held one waited for briefly.
		LockNodes: func(ctx context.Context, nodes []string) (func(), map[string]error, error) {
			w.locks.Add(1)
			ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			h, missed, err := nodelock.Nodes(ctx, cfg.StateDir, nodes)
			return h.Release, missed, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.r = r
	return w
}

func (w *world) launch(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if r := w.rt.Launch(context.Background(), []runtime.NodeSpec{{Name: n, Group: "g", Template: runtime.Template{Image: "img"}}})[0]; r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// up puts node n in Slurm as registered and in state st.
func (w *world) up(n, st string, flags ...string) {
	w.sc.Put(slurm.Node{Name: n, State: st, Flags: append([]string{slurm.FlagCloud}, flags...)})
}

func (w *world) node(t *testing.T, n string) slurm.Node {
	t.Helper()
	sn, ok := w.sc.Node(n)
	if !ok {
		t.Fatalf("node %s unknown", n)
	}
	return sn
}

func (w *world) round(t *testing.T) []Action {
	t.Helper()
	acts, err := w.r.Round(context.Background())
	if err != nil {
		t.Fatalf("round: %v", err)
	}
	return acts
}

func kinds(acts []Action) string {
	var s []string
	for _, a := range acts {
		s = append(s, a.Node+":"+string(a.Kind))
	}
	return strings.Join(s, " ")
}

func (w *world) hasInstance(n string) bool {
	for _, in := range w.rt.Instances() {
		if in.Name == n {
			return true
		}
	}
	return false
}

// A node a power hook works on (its node lock held) is left out of the
// round: the dead-node failover of c1 waits until the lock is free, while
// c2's goes ahead (defect 7: per-node locks, the daemon never acts on a
// node a hook holds).
func TestRoundPutsOffNodesAHookHolds(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.launch(t, "c1", "c2")
	w.up("c1", slurm.StateAllocated)
	w.up("c2", slurm.StateAllocated)
	w.rt.SetState("c1", runtime.StateExited)
	w.rt.SetState("c2", runtime.StateExited)
	hook, missed, err := nodelock.Nodes(context.Background(), w.cfg.StateDir, []string{"c1"})
	if err != nil || len(missed) > 0 {
		t.Fatal(err, missed)
	}
	if got := kinds(w.round(t)); got != "c2:dead" {
		t.Fatalf("round while a hook holds c1: %q, want only c2:dead", got)
	}
	if c1 := w.node(t, "c1"); c1.State != slurm.StateAllocated {
		t.Fatalf("c1 acted on while a hook held it: %+v", c1)
	}
	hook.Release()
	if got := kinds(w.round(t)); got != "c1:dead" {
		t.Fatalf("round after the hook: %q, want c1:dead", got)
	}
}

// TestRoundsHeal drives the fakes through every kind of trouble at once
// and checks that rounds bring the world back to idle~ with no instance,
// leaving alone what is not theirs, and then stay quiet.
func TestRoundsHeal(t *testing.T) {
	w := newWorld(t, "c[1-6]", "c1", "c2", "c3", "c4", "c5", "c6", "other1")
	w.launch(t, "c1", "c2", "c3", "c4", "c5", "x9")
	w.up("c1", slurm.StateAllocated)         // healthy, running a job
	w.up("c2", slurm.StateAllocated)         // its container is killed below
	w.rt.SetState("c2", runtime.StateExited) // dead node
	// c3 stays IDLE+POWERED_DOWN in Slurm: its instance is an orphan.
	w.up("c4", slurm.StateIdle, slurm.FlagDrain) // drained by health
	w.sc.Update(context.Background(), []string{"c4"}, slurm.NodeUpdate{State: slurm.SetDrain, Reason: "slurm-elastic-health: gpu0 XID 79"})
	w.up("c5", slurm.StateIdle, slurm.FlagDrain) // drained by health, held
	held := "slurm-elastic-health: gpu0 XID 79 hold: jd"
	w.sc.Update(context.Background(), []string{"c5"}, slurm.NodeUpdate{State: slurm.SetDrain, Reason: held})
	w.up("c6", slurm.StateIdle, slurm.FlagPoweringUp) // resume never launched it
	w.up("other1", slurm.StateAllocated)              // not in any group: never ours

	// Round 1: everything is young (orphan grace) and c6 has just been
	// seen powering up: only the dead node and the unhealthy one.
	// x9 is an instance of a node in no group: unknown, reported once,
	// never removed.
	if got := kinds(w.round(t)); got != "c2:dead c4:unhealthy x9:unknown" {
		t.Fatalf("round 1: %q", got)
	}
	// Slurm 24.11 (and the fake) leave a powered-down node IDLE, the
	// reason kept as a record.
	c2 := w.node(t, "c2")
	if !c2.Has(slurm.FlagPoweredDown) || !reason.Has(c2.Reason, reason.DeadNode) {
		t.Fatalf("c2 after round 1: %+v", c2)
	}
	c4 := w.node(t, "c4")
	if !c4.Has(slurm.FlagDrain) || !c4.Has(slurm.FlagPoweredDown) || !reason.Has(c4.Reason, reason.Unhealthy) || !strings.Contains(c4.Reason, "gpu0 XID 79") {
		t.Fatalf("c4 after round 1: %+v", c4)
	}
	if w.locks.Load() != 1 {
		t.Fatalf("power lock taken %d times, want 1", w.locks.Load())
	}

	// Round 2, 4 minutes on: the orphans (c3, and the leftovers of c2
	// and c4 that no suspend hook removed here) go; c6 is stuck; x9 stays.
	w.clock.Add(4 * time.Minute)
	if got := kinds(w.round(t)); got != "c2:orphan c3:orphan c4:orphan c6:stuck" {
		t.Fatalf("round 2: %q", got)
	}
	// Round 3: what the reconciler powered down and is still drained is
	// re-enabled.
	if got := kinds(w.round(t)); got != "c4:reenable" {
		t.Fatalf("round 3: %q", got)
	}
	// Round 4: quiet.
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("round 4: %q", got)
	}
	for _, n := range []string{"c2", "c3", "c4", "c6"} {
		sn := w.node(t, n)
		if sn.State != slurm.StateIdle || !sn.Has(slurm.FlagPoweredDown) || sn.Has(slurm.FlagDrain) || (sn.Reason != "" && reason.Parse(sn.Reason).Family != reason.Failover) || w.hasInstance(n) {
			t.Errorf("%s not idle~ and clean: %+v instance=%v", n, sn, w.hasInstance(n))
		}
	}
	if c1 := w.node(t, "c1"); c1.State != slurm.StateAllocated || !w.hasInstance("c1") {
		t.Errorf("healthy c1 touched: %+v", c1)
	}
	if c5 := w.node(t, "c5"); c5.Reason != held || !c5.Has(slurm.FlagDrain) || c5.Has(slurm.FlagPoweredDown) || !w.hasInstance("c5") {
		t.Errorf("held c5 touched: %+v", c5)
	}
	if o := w.node(t, "other1"); o.State != slurm.StateAllocated || o.Reason != "" {
		t.Errorf("foreign node touched: %+v", o)
	}
	if !w.hasInstance("x9") {
		t.Error("unknown x9 removed")
	}
	ev := w.r.Events.Events()
	if len(ev) != 8 || ev[0].Node != "c2" || ev[0].Kind != KindDead || ev[0].Saw == "" || ev[0].Did == "" || ev[0].Error != "" {
		t.Errorf("events: %+v", ev)
	}
	if got := w.r.Metrics.ActionCount(KindOrphan, "ok"); got != 3 {
		t.Errorf("orphan actions counted %d, want 3", got)
	}
	st := w.r.Status()
	if st.Result != "ok" || len(st.Groups) != 1 || st.Groups[0].States["powered_down"] != 4 || st.Groups[0].Instances != 2 {
		t.Errorf("status: %+v", st.Groups)
	}
}

func TestSkipWhenSlurmUnreachable(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.launch(t, "c1")
	w.clock.Add(time.Hour) // c1's instance is an old orphan
	w.sc.SetFault(func(op string, _ []string, _ slurm.NodeUpdate) error {
		if op == "nodes" {
			return errors.New("connection refused")
		}
		return nil
	})
	_, err := w.r.Round(context.Background())
	if !errors.Is(err, ErrSkipped) {
		t.Fatalf("want ErrSkipped, got %v", err)
	}
	if !w.hasInstance("c1") || w.rt.Stats().Terminated != 0 {
		t.Fatal("acted on half a view")
	}
	if st := w.r.Status(); st.Result != "skipped" || !strings.Contains(st.Error, "connection refused") {
		t.Fatalf("status: %+v", st)
	}
	w.sc.SetFault(nil)
	if got := kinds(w.round(t)); got != "c1:orphan" {
		t.Fatalf("after Slurm is back: %q", got)
	}
}

func TestSkipWhenRuntimeUnreachable(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.up("c1", slurm.StateAllocated) // would look dead with no instance listed
	w.rt.SetFault(func(op, _ string) error {
		if op == runtimefake.OpList {
			return runtime.Errorf(runtime.ClassTransient, "podman: connection refused")
		}
		return nil
	})
	if _, err := w.r.Round(context.Background()); !errors.Is(err, ErrSkipped) {
		t.Fatalf("want ErrSkipped, got %v", err)
	}
	if w.sc.Calls("update") != 0 || w.node(t, "c1").State != slurm.StateAllocated {
		t.Fatal("acted without the runtime's view")
	}
}

func TestLockFailureSkips(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.up("c1", slurm.StateAllocated)
	w.r.d.LockNodes = func(ctx context.Context, nodes []string) (func(), map[string]error, error) {
		return nil, nil, errors.New("lock dir unusable")
	}
	if _, err := w.r.Round(context.Background()); !errors.Is(err, ErrSkipped) {
		t.Fatalf("want ErrSkipped, got %v", err)
	}
	if w.sc.Calls("update") != 0 {
		t.Fatal("acted without the node locks")
	}
}

// TestConfirmWithdraws: Slurm starts powering the node up between the
// round's first look and its confirmation: the orphan is not removed.
func TestConfirmWithdraws(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.launch(t, "c1")
	w.clock.Add(time.Hour)
	var calls atomic.Int32
	w.sc.SetFault(func(op string, _ []string, _ slurm.NodeUpdate) error {
		if op == "nodes" && calls.Add(1) == 2 {
			w.up("c1", slurm.StateIdle, slurm.FlagPoweringUp)
		}
		return nil
	})
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("want the orphan withdrawn, got %q", got)
	}
	if !w.hasInstance("c1") {
		t.Fatal("instance of a node powering up removed")
	}
}

// TestOneBadNodeDoesNotHideOthers: Slurm refuses the update of one node;
// the others are still failed over and the error names the bad one.
func TestOneBadNodeDoesNotHideOthers(t *testing.T) {
	w := newWorld(t, "c[1-3]", "c1", "c2", "c3")
	for _, n := range []string{"c1", "c2", "c3"} {
		w.up(n, slurm.StateAllocated)
	}
	w.sc.SetFault(func(op string, names []string, _ slurm.NodeUpdate) error {
		for _, n := range names {
			if op == "update" && n == "c2" {
				return errors.New("slurmctld said no")
			}
		}
		return nil
	})
	acts, err := w.r.Round(context.Background())
	if len(acts) != 3 || err == nil || !strings.Contains(err.Error(), "node c2") || strings.Contains(err.Error(), "node c1") {
		t.Fatalf("acts %q err %v", kinds(acts), err)
	}
	for _, n := range []string{"c1", "c3"} {
		if sn := w.node(t, n); !reason.Has(sn.Reason, reason.DeadNode) || !sn.Has(slurm.FlagPoweredDown) {
			t.Errorf("%s not failed over: %+v", n, sn)
		}
	}
	if got := w.r.Metrics.ActionCount(KindDead, "error"); got != 1 {
		t.Errorf("failed actions counted %d, want 1", got)
	}
	ev := w.r.Events.Events()
	bad := 0
	for _, e := range ev {
		if e.Error != "" {
			bad++
			if e.Node != "c2" || !strings.HasPrefix(e.Did, "failed: ") {
				t.Errorf("failed event: %+v", e)
			}
		}
	}
	if bad != 1 {
		t.Errorf("events: %+v", ev)
	}
}

func TestConfigHoldList(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.cfg.Daemon.Hold = []string{"c[2-3]"}
	r, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.launch(t, "c1", "c2")
	for _, n := range []string{"c1", "c2"} {
		w.up(n, slurm.StateIdle, slurm.FlagDrain)
		w.sc.Update(context.Background(), []string{n}, slurm.NodeUpdate{State: slurm.SetDrain, Reason: "slurm-elastic-health: disk"})
	}
	acts, err := r.Round(context.Background())
	if err != nil || kinds(acts) != "c1:unhealthy" {
		t.Fatalf("acts %q err %v", kinds(acts), err)
	}
}

// TestStuckTimerSurvivesRestart: the POWERING_UP timer is saved, so a
// restarted daemon goes on with the time a daemon watched the power-up
// (not from zero, and not counting the time none ran: see
// TestStaleTimerAfterRestart).
func TestStuckTimerSurvivesRestart(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.up("c1", slurm.StateIdle, slurm.FlagPoweringUp)
	w.round(t)
	w.clock.Add(2 * time.Minute)
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("2 minutes powering up: %q", got)
	}
	if err := w.r.SaveState(w.cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(30 * time.Second) // the restart
	r2, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadState(w.cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	if acts, err := r2.Round(context.Background()); err != nil || len(acts) != 0 {
		t.Fatalf("right after the restart: acts %q err %v", kinds(acts), err)
	}
	w.clock.Add(time.Minute + time.Second) // 3 minutes watched: power_up_limit
	acts, err := r2.Round(context.Background())
	if err != nil || kinds(acts) != "c1:stuck" {
		t.Fatalf("acts %q err %v", kinds(acts), err)
	}
}

func TestRunDaemon(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.up("c1", slurm.StateAllocated) // dead: no instance
	dir := w.cfg.StateDir
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, w.r, RunOptions{StateDir: dir, Interval: 50 * time.Millisecond, MetricsListen: "127.0.0.1:0",
			Ready: func(a string) { addrc <- a }})
	}()
	addr := <-addrc

	// A second daemon on the same state dir is refused.
	if err := Run(ctx, w.r, RunOptions{StateDir: dir, Once: true}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second daemon: %v", err)
	}
	// Wait for the first round's event to be saved (no timing assertion:
	// the test's own deadline bounds it).
	var ev []Event
	for len(ev) == 0 {
		ev, _ = ReadEvents(dir)
		time.Sleep(20 * time.Millisecond)
	}
	if ev[0].Node != "c1" || ev[0].Kind != KindDead {
		t.Fatalf("events: %+v", ev)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`slurm_elastic_actions_total{kind="dead",result="ok"} 1`,
		`slurm_elastic_rounds_total{result="ok"}`,
		`slurm_elastic_nodes{group="g",state="powered_down"} 1`,
		"# TYPE slurm_elastic_round_duration_seconds histogram",
		`slurm_elastic_group_cooling{group="g"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon stopped with %v", err)
	}
	st, err := ReadStatus(dir)
	if err != nil || len(st.Nodes) != 2 || st.Result != "ok" {
		t.Fatalf("status %+v %v", st, err)
	}
	// The lock is free again: a --once run works and saves its round.
	if err := Run(context.Background(), w.r, RunOptions{StateDir: dir, Once: true}); err != nil {
		t.Fatalf("once: %v", err)
	}
}

func TestRingKeepsTheLast(t *testing.T) {
	r := NewRing(3)
	for i := range 5 {
		r.Add(Event{Node: fmt.Sprint(i)})
	}
	got := r.Events()
	if len(got) != 3 || got[0].Node != "2" || got[2].Node != "4" {
		t.Fatalf("%+v", got)
	}
}

// TestCapacityCooldown: a Capacity-class launch failure drains the group's
// idle powered-down nodes (other groups untouched); when the cooldown is
// over every node is re-enabled.
func TestCapacityCooldown(t *testing.T) {
	w := newWorld(t, "c[1-3]", "c1", "c2", "c3", "d1")
	w.cfg.Groups = append(w.cfg.Groups, conf.Group{Name: "h", Nodes: "d1", Runtime: "fake", Partition: "h"})
	r, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.r = r
	w.launch(t, "c3")
	w.up("c3", slurm.StateAllocated) // up and busy: left alone
	// What the resume hook does when the runtime says Capacity: DOWN with
	// the reason (jobs requeued), then POWER_DOWN_FORCE, which returns the
	// node to the pool as IDLE~ with the reason kept.
	w.sc.Update(context.Background(), []string{"c1"}, slurm.NodeUpdate{State: slurm.SetDown, Reason: reason.Format(reason.Capacity, "node c1: launch: capacity exhausted")})
	w.sc.Update(context.Background(), []string{"c1"}, slurm.NodeUpdate{State: slurm.SetPowerDownForce})
	if got := kinds(w.round(t)); got != "c1:capacity c2:cooldown" {
		t.Fatalf("round 1: %q", got)
	}
	until, ok := w.r.Cooling()["g"]
	if !ok || len(w.r.Cooling()) != 1 {
		t.Fatalf("cooling: %v", w.r.Cooling())
	}
	for _, n := range []string{"c1", "c2"} {
		if sn := w.node(t, n); !reason.Has(sn.Reason, reason.Cooldown) || !strings.Contains(sn.Reason, until.UTC().Format(time.RFC3339)) {
			t.Errorf("%s: %+v", n, sn)
		}
	}
	if sn := w.node(t, "c2"); !sn.Has(slurm.FlagDrain) {
		t.Errorf("c2 not drained: %+v", sn)
	}
	if sn := w.node(t, "c1"); sn.State != slurm.StateDown {
		t.Errorf("c1 not kept out of scheduling: %+v", sn)
	}
	if sn := w.node(t, "d1"); sn.Reason != "" || sn.Has(slurm.FlagDrain) {
		t.Errorf("other group touched: %+v", sn)
	}
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("round 2 while cooling: %q", got)
	}
	if err := w.r.SaveState(w.cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStatus(w.cfg.StateDir)
	if err != nil || st.Groups[0].CoolingUntil == nil || st.Groups[1].CoolingUntil != nil {
		t.Fatalf("status %+v %v", st.Groups, err)
	}
	w.clock.Add(6 * time.Minute)
	if got := kinds(w.round(t)); got != "c1:cooldown_end c2:cooldown_end" {
		t.Fatalf("after the cooldown: %q", got)
	}
	for _, n := range []string{"c1", "c2"} {
		if sn := w.node(t, n); sn.State != slurm.StateIdle || sn.Has(slurm.FlagDrain) || sn.Reason != "" {
			t.Errorf("%s not re-enabled: %+v", n, sn)
		}
	}
	if len(w.r.Cooling()) != 0 {
		t.Fatalf("still cooling: %v", w.r.Cooling())
	}
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("quiet round: %q", got)
	}
}

// partialRuntime is the fake runtime with one host not answering: List
// leaves out the instance of hidden and says which host it could not list.
type partialRuntime struct {
	*runtimefake.Fake
	hidden string
}

func (p partialRuntime) List(ctx context.Context) ([]runtime.Instance, error) {
	all, err := p.Fake.List(ctx)
	if err != nil {
		return nil, err
	}
	var kept []runtime.Instance
	for _, in := range all {
		if in.Name != p.hidden {
			kept = append(kept, in)
		}
	}
	return kept, &runtime.PartialError{Hosts: []string{"h1"}, Err: errors.New("host h1: connect: connection refused")}
}

// TestPartialListActsOnWhatIsKnown (issue 11, defect 5): one runtime host
// not answering does not stop the round: an orphan on a host that answers
// is removed, while a busy node whose instance is on the silent host is
// not taken for dead.
func TestPartialListActsOnWhatIsKnown(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.launch(t, "c1", "c2")
	w.up("c1", slurm.StateIdle, slurm.FlagPoweredDown) // c1's instance is an orphan
	w.up("c2", slurm.StateAllocated)                   // c2 runs a job on the silent host
	w.r.d.Runtimes["fake"] = partialRuntime{Fake: w.rt, hidden: "c2"}
	w.clock.Add(2 * time.Minute)
	acts, err := w.r.Round(context.Background())
	if err != nil {
		t.Fatalf("round with one host silent: %v", err)
	}
	if got := kinds(acts); got != "c1:orphan" {
		t.Fatalf("actions %q, want only c1:orphan", got)
	}
	if w.hasInstance("c1") || !w.hasInstance("c2") {
		t.Fatalf("instances: c1 %v (want removed), c2 %v (want kept)", w.hasInstance("c1"), w.hasInstance("c2"))
	}
	if n := w.node(t, "c2"); n.State != slurm.StateAllocated {
		t.Fatalf("c2 is %s: a node on a silent host was acted on", n.State)
	}
}
