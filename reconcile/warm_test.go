package reconcile

import (
	"context"
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

// TestWarmImages: a pool with warm.images powers up the named images
// short of their count first (Action.Image), the rest default; warm nodes
// count for the image of their instance or, powering up, of their active
// feature; the pool's total decides how many.
func TestWarmImages(t *testing.T) {
	down := func(name string) Entry {
		n := node("IDLE", "POWERED_DOWN")
		n.Name = name
		return Entry{Name: name, Group: "g", Node: n}
	}
	idleIn := func(name, img string) Entry {
		n := node("IDLE")
		n.Name = name
		in := inst(runtime.StateRunning, time.Hour)
		in.Name, in.Image = name, img
		return Entry{Name: name, Group: "g", Node: n, Inst: in}
	}
	booting := func(name string, active ...string) Entry {
		n := node("IDLE", "POWERING_UP")
		n.Name, n.ActiveFeatures = name, active
		return Entry{Name: name, Group: "g", Node: n}
	}
	marked := map[string]int{"marked": 1}
	tests := []struct {
		name    string
		w       conf.WarmConf
		entries []Entry
		want    string // node:image ...
	}{
		{"cold: the named image first, then the default", conf.WarmConf{Idle: 2, Images: marked},
			[]Entry{down("c1"), down("c2"), down("c3")}, "c1:marked c2:"},
		{"two named images", conf.WarmConf{Idle: 2, Images: map[string]int{"marked": 1, "other": 1}},
			[]Entry{down("c1"), down("c2"), down("c3")}, "c1:marked c2:other"},
		{"a named count of 2", conf.WarmConf{Idle: 3, Images: map[string]int{"marked": 2}},
			[]Entry{down("c1"), down("c2"), down("c3")}, "c1:marked c2:marked c3:"},
		{"a warm marked instance: the default one is missing", conf.WarmConf{Idle: 2, Images: marked},
			[]Entry{idleIn("c1", "marked"), down("c2"), down("c3")}, "c2:"},
		{"a warm default instance: the marked one is missing", conf.WarmConf{Idle: 2, Images: marked},
			[]Entry{idleIn("c1", ""), down("c2"), down("c3")}, "c2:marked"},
		{"powering up with the feature active counts as marked", conf.WarmConf{Idle: 2, Images: marked},
			[]Entry{booting("c1", "static", "marked"), down("c2"), down("c3")}, "c2:"},
		{"powering up with no image feature counts as default", conf.WarmConf{Idle: 2, Images: marked},
			[]Entry{booting("c1"), down("c2"), down("c3")}, "c2:marked"},
		{"the total is there in another image: nothing more", conf.WarmConf{Idle: 1, Images: marked},
			[]Entry{idleIn("c1", "other"), down("c2")}, ""},
		{"max bounds the named image too", conf.WarmConf{Idle: 2, Max: 2, Images: map[string]int{"marked": 2}},
			[]Entry{idleIn("c1", "other"), down("c2"), down("c3")}, "c2:marked"},
		{"a busy marked node does not count", conf.WarmConf{Idle: 1, Images: marked},
			[]Entry{{Name: "c1", Group: "g", Node: withReason(node("ALLOCATED"), ""), Inst: &runtime.Instance{Name: "c1", Image: "marked", State: runtime.StateRunning}}, down("c2")}, "c2:marked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range Warm(t0, map[string]conf.WarmConf{"g": tc.w}, tc.entries, nil) {
				got = append(got, a.Node+":"+a.Image)
				if a.Image != "" && !strings.Contains(a.Saw, "image "+a.Image+": ") {
					t.Errorf("%s: saw %q does not name the image", a.Node, a.Saw)
				}
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Fatalf("warmed %q, want %q", s, tc.want)
			}
		})
	}
}

// imgWorld is a world whose group g has the images marked and other and
// the warm pool w.
func imgWorld(t *testing.T, w conf.WarmConf, sc slurm.Client) *world {
	t.Helper()
	wd := newWorld(t, "c[1-4]", "c1", "c2", "c3", "c4")
	wd.cfg.Groups[0].Images = []conf.Image{{Name: "marked", Image: "img-marked"}, {Name: "other", Image: "img-other"}}
	wd.cfg.Groups[0].Warm = w
	if sc == nil {
		sc = wd.sc
	}
	r, err := New(Deps{Config: wd.cfg, Runtimes: map[string]runtime.Runtime{"fake": wd.rt}, Slurm: sc, Now: wd.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	wd.r = r
	return wd
}

// TestRoundWarmImages: `warm: {idle: 2, images: {marked: 1}}`: the first
// round sets c1's active features to marked, then powers c1 and c2 up (in
// that order: the resume hook reads the features); nothing while they
// boot; when the marked node takes a job, the next round warms a
// replacement in marked.
func TestRoundWarmImages(t *testing.T) {
	w := imgWorld(t, conf.WarmConf{Idle: 2, Images: map[string]int{"marked": 1}}, nil)
	var calls []string
	w.sc.SetFault(func(op string, names []string, u slurm.NodeUpdate) error {
		if op == "features" || op == "update" {
			calls = append(calls, fmt.Sprintf("%s %v %s", op, names, u.State))
		}
		return nil
	})
	if got := kinds(w.round(t)); got != "c1:warm c2:warm" {
		t.Fatalf("round 1: %q", got)
	}
	if got := strings.Join(calls, "; "); got != "features [c1] ; update [c1 c2] POWER_UP" {
		t.Fatalf("Slurm calls %q: want c1's features set before the power up", got)
	}
	if a := w.sc.ActiveFeatures("c1"); strings.Join(a, ",") != "marked" {
		t.Fatalf("c1 active features %v, want marked", a)
	}
	if a := w.sc.ActiveFeatures("c2"); a != nil {
		t.Fatalf("c2 active features %v, want none set (default image)", a)
	}
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("while booting: %q", got)
	}
	// They come up (the resume hook boots c1 in marked); c1 takes a job.
	if r := w.rt.Launch(context.Background(), []runtime.NodeSpec{{Name: "c1", Group: "g", Image: "marked", Template: runtime.Template{Image: "img-marked"}}})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	w.launch(t, "c2")
	w.up("c1", slurm.StateIdle)
	w.up("c2", slurm.StateIdle)
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("pool full: %q", got)
	}
	w.up("c1", slurm.StateAllocated)
	calls = nil
	if got := kinds(w.round(t)); got != "c3:warm" {
		t.Fatalf("after the marked node took a job: %q", got)
	}
	if a := w.sc.ActiveFeatures("c3"); strings.Join(a, ",") != "marked" {
		t.Fatalf("c3 active features %v, want marked (the replacement)", a)
	}
	if n := w.r.Metrics.ActionCount(KindWarm, "ok"); n != 3 {
		t.Fatalf("warm actions counted %d, want 3", n)
	}
}

// noFeatures is a Slurm client that cannot set active features.
type noFeatures struct{ slurm.Client }

// TestRoundWarmImagesNoFeatureSetter: a Slurm client without
// SetActiveFeatures warms the default image (logged): the node is
// powered up all the same, with no feature set.
func TestRoundWarmImagesNoFeatureSetter(t *testing.T) {
	w := imgWorld(t, conf.WarmConf{Idle: 1, Images: map[string]int{"marked": 1}}, nil)
	r, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: noFeatures{w.sc}, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.r = r
	if got := kinds(w.round(t)); got != "c1:warm" {
		t.Fatalf("round 1: %q", got)
	}
	if !w.node(t, "c1").Has(slurm.FlagPoweringUp) {
		t.Fatalf("c1 not powering up: %+v", w.node(t, "c1"))
	}
	if a := w.sc.ActiveFeatures("c1"); a != nil || w.sc.Calls("features") != 0 {
		t.Fatalf("active features set without a FeatureSetter: %v", a)
	}
}

// TestRoundWarmImagesFeatureFailure: a failed feature update fails the
// action and leaves the node powered down (no default-image power up
// that Slurm would take for marked).
func TestRoundWarmImagesFeatureFailure(t *testing.T) {
	w := imgWorld(t, conf.WarmConf{Idle: 1, Images: map[string]int{"marked": 1}}, nil)
	w.sc.SetFault(func(op string, _ []string, _ slurm.NodeUpdate) error {
		if op == "features" {
			return fmt.Errorf("slurmctld says no")
		}
		return nil
	})
	if _, err := w.r.Round(context.Background()); err == nil || !strings.Contains(err.Error(), "set active features to image marked") {
		t.Fatalf("round: %v", err)
	}
	if n := w.node(t, "c1"); n.Has(slurm.FlagPoweringUp) || !n.Has(slurm.FlagPoweredDown) {
		t.Fatalf("c1 powered up though its features could not be set: %+v", n)
	}
}
