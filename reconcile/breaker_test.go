package reconcile

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/reason"

	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

func TestDecideBreaker(t *testing.T) {
	own := reason.Format(reason.BreakerOpen, "group g launches stopped")
	config := reason.Format(reason.Config, "image not found")
	tests := []struct {
		name string
		e    Entry
		want Kind
	}{
		{"open: idle~ no reason", Entry{Group: "g", BreakerOpen: true, Node: node("IDLE", "POWERED_DOWN")}, KindBreaker},
		{"open: idle~ with a stale own reason", Entry{Group: "g", BreakerOpen: true, Node: withReason(node("IDLE", "POWERED_DOWN"), own)}, KindBreaker},
		{"open: DOWN after a Config failure", Entry{Group: "g", BreakerOpen: true, Node: withReason(node("DOWN", "POWERED_DOWN"), config)}, KindBreaker},
		{"open: DOWN with our BreakerOpen reason: done", Entry{Group: "g", BreakerOpen: true, Node: withReason(node("DOWN", "POWERED_DOWN"), own)}, ""},
		{"open: drained with our reason: done", Entry{Group: "g", BreakerOpen: true, Node: withReason(node("IDLE", "POWERED_DOWN", "DRAIN"), own)}, ""},
		{"open: powering up (a launch in flight)", Entry{Group: "g", BreakerOpen: true, Node: node("IDLE", "POWERED_DOWN", "POWERING_UP")}, ""},
		{"open: powering down", Entry{Group: "g", BreakerOpen: true, Node: withReason(node("DOWN", "POWERED_DOWN", "POWERING_DOWN"), config)}, ""},
		{"open: busy node left alone", Entry{Group: "g", BreakerOpen: true, Node: node("ALLOCATED"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"open: admin's drain left alone", Entry{Group: "g", BreakerOpen: true, Node: withReason(node("IDLE", "POWERED_DOWN", "DRAIN"), "psu")}, ""},
		{"open: capacity node is the cooldown's", Entry{Group: "g", BreakerOpen: true, Node: withReason(node("DOWN", "POWERED_DOWN"), reason.Format(reason.Capacity, "x"))}, KindCapacity},
		{"closed: DOWN with BreakerOpen", Entry{Group: "g", Node: withReason(node("DOWN", "POWERED_DOWN"), own)}, KindBreakerEnd},
		{"closed: DRAIN with BreakerOpen", Entry{Group: "g", Node: withReason(node("IDLE", "POWERED_DOWN", "DRAIN"), own)}, KindBreakerEnd},
		{"closed: idle~ with a stale BreakerOpen reason", Entry{Group: "g", Node: withReason(node("IDLE", "POWERED_DOWN"), own)}, ""},
		{"closed: Config DOWN stays for the admin", Entry{Group: "g", Node: withReason(node("DOWN", "POWERED_DOWN"), config)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.e.Name = "c1"
			a, ok := Decide(t0, pol, tc.e)
			if got := Kind(""); ok {
				got = a.Kind
				if got != tc.want {
					t.Fatalf("got %s (%s), want %q", got, a.Saw, tc.want)
				}
			} else if tc.want != "" {
				t.Fatalf("no action, want %s", tc.want)
			}
		})
	}
}

// TestRoundBreaker: with the group's breaker open (as the resume hook
// leaves it in breaker.json), a round keeps its nodes out of scheduling
// with a reason saying how to re-arm; after `breaker reset` (a Reset in
// the file) they are resumed. A node launched after the last failure that
// comes up resets the count; the metrics show the breaker and the hooks'
// launch counts.
func TestRoundBreaker(t *testing.T) {
	w := newWorld(t, "c[1-4]", "c1", "c2", "c3", "c4")
	w.cfg.Breaker.Threshold = 2
	r, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now,
		StateDir: w.cfg.StateDir, Lock: func(ctx context.Context) (func(), error) { w.locks.Add(1); return func() {}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	w.r = r
	dir := w.cfg.StateDir
	st := breaker.New()
	st.Failure("g", "c1", "Config", "image not found", w.clock.Now(), 2, 0)
	st.Failure("g", "c2", "Config", "image not found", w.clock.Now(), 2, 0)
	st.CountLaunch("g", false, "Config")
	st.CountLaunch("g", false, "Config")
	st.CountLaunch("g", true, "")
	if err := breaker.Save(dir, st); err != nil {
		t.Fatal(err)
	}
	// c1 was set DOWN by the failed resume; c2 is DOWN with BreakerOpen
	// (the hook refused it); c3, c4 idle~.
	w.sc.Update(context.Background(), []string{"c1"}, slurm.NodeUpdate{State: slurm.SetDown, Reason: reason.Format(reason.Config, "image not found")})
	w.sc.Update(context.Background(), []string{"c2"}, slurm.NodeUpdate{State: slurm.SetDown, Reason: reason.Format(reason.BreakerOpen, "refused")})
	if got := kinds(w.round(t)); got != "c1:breaker c3:breaker c4:breaker" {
		t.Fatalf("round 1: %q", got)
	}
	for _, n := range []string{"c1", "c3", "c4"} {
		sn := w.node(t, n)
		if !reason.Has(sn.Reason, reason.BreakerOpen) || !strings.Contains(sn.Reason, "slurm-elastic breaker reset g") {
			t.Errorf("%s: %+v", n, sn)
		}
	}
	if sn := w.node(t, "c3"); !sn.Has(slurm.FlagDrain) {
		t.Errorf("c3 not drained: %+v", sn)
	}
	if sn := w.node(t, "c1"); sn.State != slurm.StateDown {
		t.Errorf("c1 not DOWN: %+v", sn)
	}
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("round 2 while open: %q", got)
	}
	if err := w.r.SaveState(dir); err != nil {
		t.Fatal(err)
	}
	if s, err := ReadStatus(dir); err != nil || s.Groups[0].Breaker == nil || !s.Groups[0].Breaker.Open {
		t.Fatalf("status: %+v %v", s.Groups, err)
	}
	body := scrape(t, w.r)
	for _, want := range []string{
		`slurm_elastic_breaker_open{group="g"} 1`,
		`slurm_elastic_launches_total{group="g",result="failed"} 2`,
		`slurm_elastic_launches_total{group="g",result="ok"} 1`,
		`slurm_elastic_launch_failures_total{class="Config",group="g"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}

	// Re-armed by command.
	st, _ = breaker.Load(dir)
	st.Reset("g", w.clock.Now())
	if err := breaker.Save(dir, st); err != nil {
		t.Fatal(err)
	}
	if got := kinds(w.round(t)); got != "c1:breaker_end c2:breaker_end c3:breaker_end c4:breaker_end" {
		t.Fatalf("after the reset: %q", got)
	}
	for _, n := range []string{"c1", "c2", "c3", "c4"} {
		if sn := w.node(t, n); sn.State != slurm.StateIdle || sn.Has(slurm.FlagDrain) {
			t.Errorf("%s not back: %+v", n, sn)
		}
	}
	if !strings.Contains(scrape(t, w.r), `slurm_elastic_breaker_open{group="g"} 0`) {
		t.Error("metric still open")
	}

	// One failure, then a node launched later registers: count reset.
	st, _ = breaker.Load(dir)
	st.Failure("g", "c1", "Transient", "x", w.clock.Now().Add(-time.Minute), 2, 0)
	breaker.Save(dir, st)
	locks := w.locks.Load()
	w.round(t)
	if w.locks.Load() != locks {
		t.Fatal("took the lock with nothing to write")
	}
	w.launch(t, "c3")
	w.up("c3", slurm.StateIdle)
	w.round(t)
	if st, _ = breaker.Load(dir); st.Get("g").Failures != 0 || w.locks.Load() == locks {
		t.Fatalf("success not counted (or not under the lock): %+v", st.Get("g"))
	}
}

// TestRoundBreakerTimeout: the daemon re-arms a breaker open longer than
// breaker.reset and logs it as an event.
func TestRoundBreakerTimeout(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.cfg.Breaker.Threshold = 1
	w.cfg.Breaker.Reset = 10 * time.Minute
	r, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now, StateDir: w.cfg.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	w.r = r
	st := breaker.New()
	st.Failure("g", "c1", "Config", "x", w.clock.Now(), 1, 0)
	breaker.Save(w.cfg.StateDir, st)
	if got := kinds(w.round(t)); got != "c1:breaker c2:breaker" {
		t.Fatalf("open: %q", got)
	}
	w.clock.Add(11 * time.Minute)
	if got := kinds(w.round(t)); got != "c1:breaker_end c2:breaker_end" {
		t.Fatalf("after breaker_reset: %q", got)
	}
	if st, _ := breaker.Load(w.cfg.StateDir); st.IsOpen("g") || st.Get("g").RearmedBy != "timeout" {
		t.Fatalf("%+v", st.Get("g"))
	}
	var found bool
	for _, e := range w.r.Events.Events() {
		found = found || (e.Kind == KindBreakerEnd && e.Node == "" && e.Group == "g")
	}
	if !found {
		t.Fatalf("no re-arm event: %+v", w.r.Events.Events())
	}
}

func scrape(t *testing.T, r *Reconciler) string {
	t.Helper()
	srv := httptest.NewServer(r.Metrics.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
