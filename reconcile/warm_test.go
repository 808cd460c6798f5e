package reconcile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/reason"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

func TestWarm(t *testing.T) {
	idleDown := func() *slurm.Node { return node("IDLE", "POWERED_DOWN") }
	up := func(st string, flags ...string) *slurm.Node { return node(st, flags...) }
	running := inst(runtime.StateRunning, time.Hour)
	group := func(nodes ...*slurm.Node) []Entry {
		var es []Entry
		for i, n := range nodes {
			name := fmt.Sprintf("c%d", i+1)
			if n != nil {
				n.Name = name
			}
			e := Entry{Name: name, Group: "g", Node: n}
			if n != nil && !n.Has(slurm.FlagPoweredDown) && !n.Has(slurm.FlagPoweringUp) {
				e.Inst = running
			}
			es = append(es, e)
		}
		return es
	}
	tests := []struct {
		name    string
		w       conf.WarmConf
		entries []Entry
		busy    map[string]bool
		want    string
	}{
		{"cold group: two powered up", conf.WarmConf{Idle: 2}, group(idleDown(), idleDown(), idleDown()), nil, "c1 c2"},
		{"one idle already: one more", conf.WarmConf{Idle: 2}, group(up("IDLE"), idleDown(), idleDown()), nil, "c2"},
		{"powering up counts as warm", conf.WarmConf{Idle: 2}, group(up("IDLE", "POWERING_UP"), up("IDLE"), idleDown()), nil, ""},
		{"busy nodes are not idle", conf.WarmConf{Idle: 1}, group(up("ALLOCATED"), up("MIXED"), idleDown()), nil, "c3"},
		{"max caps powered-up nodes", conf.WarmConf{Idle: 2, Max: 3}, group(up("ALLOCATED"), up("ALLOCATED"), idleDown(), idleDown()), nil, "c3"},
		{"at max: none", conf.WarmConf{Idle: 1, Max: 2}, group(up("ALLOCATED"), up("ALLOCATED"), idleDown()), nil, ""},
		{"drained idle is not warm; drained down is no candidate", conf.WarmConf{Idle: 1},
			group(up("IDLE", "DRAIN"), withReason(node("IDLE", "POWERED_DOWN", "DRAIN"), "x"), idleDown()), nil, "c3"},
		{"a node with any reason is no candidate", conf.WarmConf{Idle: 1},
			group(withReason(idleDown(), reason.Format(reason.Capacity, "stockout")), withReason(node("DOWN", "POWERED_DOWN"), "admin")), nil, ""},
		{"a node with an action this round is no candidate", conf.WarmConf{Idle: 1}, group(idleDown(), idleDown()), map[string]bool{"c1": true}, "c2"},
		{"powering down is neither warm nor a candidate", conf.WarmConf{Idle: 1}, group(up("IDLE", "POWERED_DOWN", "POWERING_DOWN"), idleDown()), nil, "c2"},
		{"no warm pool", conf.WarmConf{}, group(idleDown()), nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range Warm(t0, map[string]conf.WarmConf{"g": tc.w}, tc.entries, tc.busy) {
				if a.Kind != KindWarm || a.Group != "g" || !strings.Contains(a.Saw, "warm.idle") {
					t.Fatalf("%+v", a)
				}
				got = append(got, a.Node)
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Fatalf("warmed %q, want %q", s, tc.want)
			}
		})
	}
	// An open breaker or a cooldown: nothing warmed.
	es := group(idleDown(), idleDown())
	es[0].BreakerOpen, es[1].CoolingUntil = true, t0.Add(time.Minute)
	if a := Warm(t0, map[string]conf.WarmConf{"g": {Idle: 2}}, es, nil); len(a) != 0 {
		t.Fatalf("warmed %+v", a)
	}
}

// TestRoundWarm: rounds keep warm.idle nodes powered up: POWER_UP for the
// missing ones, nothing while they boot, one more when a warm node takes a
// job, never above max.
func TestRoundWarm(t *testing.T) {
	w := newWorld(t, "c[1-4]", "c1", "c2", "c3", "c4")
	w.cfg.Groups[0].Warm = conf.WarmConf{Idle: 2, Max: 3}
	r, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.r = r
	if got := kinds(w.round(t)); got != "c1:warm c2:warm" {
		t.Fatalf("round 1: %q", got)
	}
	for _, n := range []string{"c1", "c2"} {
		if sn := w.node(t, n); !sn.Has(slurm.FlagPoweringUp) {
			t.Fatalf("%s not powering up: %+v", n, sn)
		}
	}
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("while booting: %q", got)
	}
	// They come up (what ResumeProgram and slurmd do); c1 takes a job.
	w.launch(t, "c1", "c2")
	w.up("c1", slurm.StateAllocated)
	w.up("c2", slurm.StateIdle)
	if got := kinds(w.round(t)); got != "c3:warm" {
		t.Fatalf("after c1 took a job: %q", got)
	}
	w.launch(t, "c3")
	w.up("c3", slurm.StateAllocated)
	// c1, c2, c3 powered up = max 3: c4 stays down though one idle is missing.
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("at max: %q", got)
	}
	if n := w.r.Metrics.ActionCount(KindWarm, "ok"); n != 3 {
		t.Fatalf("warm actions counted %d, want 3", n)
	}
}
