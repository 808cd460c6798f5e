package reconcile

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

func imgGroup() *conf.Group {
	return &conf.Group{Name: "g", Nodes: "c[1-3]", Partition: "p", Template: conf.Template{Image: "img", Features: []string{"avx2"}},
		Images: []conf.Image{{Name: "marked", Image: "img-marked"}, {Name: "other", Image: "img-other"}}}
}

// idleIn is an entry of group g up and idle in Slurm with a running
// instance of image img ("" = the default).
func idleIn(name, img string) Entry {
	return Entry{Name: name, Group: "g", Node: &slurm.Node{Name: name, State: slurm.StateIdle, Flags: []string{slurm.FlagCloud}},
		Inst: &runtime.Instance{Name: name, Group: "g", State: runtime.StateRunning, Image: img}}
}

func pendingJob(id, features string, nodes int, age time.Duration, now time.Time) slurm.PendingJob {
	return slurm.PendingJob{ID: id, Partitions: []string{"p"}, Features: features, Reason: "Resources", MinNodes: nodes, Submit: now.Add(-age)}
}

func reimageKinds(acts []Action) string {
	var s []string
	for _, a := range acts {
		s = append(s, a.Node+":"+string(a.Kind)+":"+a.Image+":"+a.Job)
	}
	return strings.Join(s, " ")
}

// TestReimageDecide: the rules of Reimage, each case one world.
func TestReimageDecide(t *testing.T) {
	now := time.Now()
	p := ReimagePolicy{After: 10 * time.Second, HoldPrefix: "hold:"}
	groups := map[string]*conf.Group{"g": imgGroup()}
	old := time.Minute
	for _, tc := range []struct {
		name    string
		entries []Entry
		jobs    []slurm.PendingJob
		busy    map[string]bool
		want    string
	}{
		{"one node for a one-node job", []Entry{idleIn("c1", ""), idleIn("c2", "")},
			[]slurm.PendingJob{pendingJob("5", "marked", 1, old, now)}, nil, "c1:reimage:marked:5"},
		{"with static features and an OR", []Entry{idleIn("c1", ""), idleIn("c2", "")},
			[]slurm.PendingJob{pendingJob("5", "marked&avx2|other", 1, old, now)}, nil, "c1:reimage:marked:5"},
		{"two nodes for a two-node job", []Entry{idleIn("c1", ""), idleIn("c2", ""), idleIn("c3", "")},
			[]slurm.PendingJob{pendingJob("5", "marked", 2, old, now)}, nil, "c1:reimage:marked:5 c2:reimage:marked:5"},
		{"job too young (reimage_after)", []Entry{idleIn("c1", "")},
			[]slurm.PendingJob{pendingJob("5", "marked", 1, 5*time.Second, now)}, nil, ""},
		{"pending for Priority, not Resources", []Entry{idleIn("c1", "")},
			[]slurm.PendingJob{func() slurm.PendingJob { j := pendingJob("5", "marked", 1, old, now); j.Reason = "Priority"; return j }()}, nil, ""},
		{"no image feature", []Entry{idleIn("c1", "marked")},
			[]slurm.PendingJob{pendingJob("5", "avx2", 1, old, now)}, nil, ""},
		{"another partition", []Entry{idleIn("c1", "")},
			[]slurm.PendingJob{func() slurm.PendingJob {
				j := pendingJob("5", "marked", 1, old, now)
				j.Partitions = []string{"q"}
				return j
			}()}, nil, ""},
		{"a free powered-down node: Slurm takes it", []Entry{idleIn("c1", ""),
			{Name: "c2", Group: "g", Node: &slurm.Node{Name: "c2", State: slurm.StateIdle, Flags: []string{slurm.FlagCloud, slurm.FlagPoweredDown}}}},
			[]slurm.PendingJob{pendingJob("5", "marked", 1, old, now)}, nil, ""},
		{"a node already in the image counts", []Entry{idleIn("c1", ""), idleIn("c2", "marked")},
			[]slurm.PendingJob{pendingJob("5", "marked", 1, old, now)}, nil, ""},
		{"a node being re-imaged into it counts", []Entry{idleIn("c1", ""), func() Entry {
			e := idleIn("c2", "")
			e.Node.State, e.Node.Flags = slurm.StateDown, []string{slurm.FlagCloud, slurm.FlagRebootIssued}
			e.Node.Reason = reimageReason("marked", "5") + " : reboot issued"
			return e
		}()}, []slurm.PendingJob{pendingJob("5", "marked", 1, old, now)}, nil, ""},
		{"a node being re-imaged is not picked again", []Entry{func() Entry {
			e := idleIn("c1", "")
			e.Node.Flags = []string{slurm.FlagCloud, slurm.FlagDrain, slurm.FlagRebootRequested}
			e.Node.Reason = reimageReason("other", "4")
			return e
		}(), idleIn("c2", "")}, []slurm.PendingJob{pendingJob("5", "marked", 1, old, now)}, nil, "c2:reimage:marked:5"},
		{"a node another pending job's image is kept", []Entry{idleIn("c1", "other"), idleIn("c2", "")},
			[]slurm.PendingJob{pendingJob("5", "marked", 1, old, now), func() slurm.PendingJob {
				j := pendingJob("6", "other", 1, old, now)
				j.Reason = "Priority"
				return j
			}()}, nil, "c2:reimage:marked:5"},
		{"too few candidates: nothing in vain", []Entry{idleIn("c1", ""), idleIn("c2", "")},
			[]slurm.PendingJob{pendingJob("5", "marked", 3, old, now)}, nil, ""},
		{"-w and -x narrow the nodes", []Entry{idleIn("c1", ""), idleIn("c2", ""), idleIn("c3", "")},
			[]slurm.PendingJob{func() slurm.PendingJob {
				j := pendingJob("5", "marked", 1, old, now)
				j.ReqNodes, j.ExcNodes = "c[2-3]", "c2"
				return j
			}()}, nil, "c3:reimage:marked:5"},
		{"drained, held, completing, reason, busy or not running: not candidates", []Entry{
			func() Entry { e := idleIn("c1", ""); e.Node.Flags = append(e.Node.Flags, slurm.FlagDrain); return e }(),
			func() Entry { e := idleIn("c2", ""); e.Held = true; return e }(),
			func() Entry { e := idleIn("c3", ""); e.Node.Reason = "admin"; return e }(),
			func() Entry { e := idleIn("c4", ""); e.Inst.State = runtime.StateExited; return e }(),
			func() Entry {
				e := idleIn("c5", "")
				e.Node.Flags = append(e.Node.Flags, slurm.FlagCompleting)
				return e
			}(),
			idleIn("c6", ""),
		}, []slurm.PendingJob{pendingJob("5", "marked", 1, old, now)}, map[string]bool{"c6": true}, ""},
		{"a failed re-image into the image stops more", []Entry{func() Entry {
			e := idleIn("c1", "")
			e.Node.State, e.Inst.State = slurm.StateDown, runtime.StateExited
			e.Node.Reason = reimageReason("marked", "4") + " : reboot issued : reboot timed out"
			return e
		}(), idleIn("c2", "")}, []slurm.PendingJob{pendingJob("5", "marked", 1, old, now)}, nil, ""},
		{"a failed re-image into another image does not", []Entry{func() Entry {
			e := idleIn("c1", "")
			e.Node.State, e.Inst.State = slurm.StateDown, runtime.StateExited
			e.Node.Reason = reimageReason("other", "4") + " : reboot issued : reboot timed out"
			return e
		}(), idleIn("c2", "")}, []slurm.PendingJob{pendingJob("5", "marked", 1, old, now)}, nil, "c2:reimage:marked:5"},
		{"two jobs share no node", []Entry{idleIn("c1", ""), idleIn("c2", "")},
			[]slurm.PendingJob{pendingJob("7", "marked", 1, old, now), pendingJob("5", "marked", 1, old, now)}, nil,
			"c1:reimage:marked:5 c2:reimage:marked:7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := reimageKinds(Reimage(now, p, groups, tc.entries, tc.jobs, tc.busy))
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReimageTarget(t *testing.T) {
	for r, want := range map[string]string{
		reimageReason("marked", "12"):                           "marked",
		reimageReason("a.b_1", "12_3") + " : reboot issued":     "a.b_1",
		"slurm-elastic: (Code:DeadNode) image marked for job 1": "",
		"reboot requested : reboot issued":                      "",
		"image marked for job 1":                                "",
	} {
		if got, ok := ReimageTarget(r); got != want || ok != (want != "") {
			t.Errorf("ReimageTarget(%q) = %q, %v; want %q", r, got, ok, want)
		}
	}
}

// imageWorld is a world whose group g (partition p) has the images of
// imgGroup, c1 and c2 up and idle in the default image.
func imageWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, "c[1-2]", "c1", "c2")
	g := imgGroup()
	w.cfg.Groups[0].Partition, w.cfg.Groups[0].Images = g.Partition, g.Images
	w.r.d.Rebooter = w.sc
	if err := w.r.configure(w.r.d, w.r.stamp); err != nil {
		t.Fatal(err)
	}
	w.launch(t, "c1", "c2")
	w.up("c1", slurm.StateIdle)
	w.up("c2", slurm.StateIdle)
	return w
}

// TestReimageRound: a -C marked job pending while c1 and c2 are idle in
// the default image: one round asks Slurm (slurmfake) to reboot c1 ASAP
// with the Reimage reason (drained, REBOOT_REQUESTED); the next rounds do
// nothing more; once Slurm issued the reboot and RebootProgram stopped the
// container, the reboot round sets c1's active features to marked and
// launches the fresh instance from the marked image; c2 is never touched.
func TestReimageRound(t *testing.T) {
	w := imageWorld(t)
	w.sc.SetPendingJobs(pendingJob("5", "marked", 1, time.Minute, w.clock.Now()))
	acts := w.round(t)
	if got := reimageKinds(acts); got != "c1:reimage:marked:5" {
		t.Fatalf("round 1: %q", got)
	}
	n := w.node(t, "c1")
	if !n.Has(slurm.FlagRebootRequested) || !n.Has(slurm.FlagDrain) || n.Reason != reimageReason("marked", "5") {
		t.Fatalf("c1 not rebooting ASAP with our reason: %+v", n)
	}
	if acts := w.round(t); len(acts) != 0 {
		t.Fatalf("re-imaged again: %s", kinds(acts))
	}
	w.sc.Issue("c1")
	if acts := w.round(t); len(acts) != 0 {
		t.Fatalf("old container still running: %s", kinds(acts))
	}
	if f := w.sc.ActiveFeatures("c1"); f != nil {
		t.Fatalf("active features set before the old container stopped: %v", f)
	}
	w.rt.SetState("c1", runtime.StateExited)
	if acts := w.round(t); kinds(acts) != "c1:reboot" {
		t.Fatalf("want c1:reboot, got %q", kinds(acts))
	}
	if f := w.sc.ActiveFeatures("c1"); !slices.Equal(f, []string{"marked"}) {
		t.Fatalf("c1 active features %v, want [marked]", f)
	}
	in := w.instance(t, "c1")
	if in.State != runtime.StateRunning || in.Image != "marked" {
		t.Fatalf("c1's fresh instance %+v, want running in image marked", in)
	}
	if in := w.instance(t, "c2"); in.Image != "" {
		t.Fatalf("c2 changed: %+v", in)
	}
	var saw []Kind
	for _, e := range w.r.Events.Events() {
		saw = append(saw, e.Kind)
		if e.Error != "" {
			t.Errorf("event %+v", e)
		}
	}
	if !slices.Equal(saw, []Kind{KindReimage, KindReboot}) {
		t.Fatalf("events %v", saw)
	}
}

// TestReimageOff: daemon.reimage false: the job is left to Slurm.
func TestReimageOff(t *testing.T) {
	w := imageWorld(t)
	w.cfg.Daemon.Reimage = false
	w.sc.SetPendingJobs(pendingJob("5", "marked", 1, time.Minute, w.clock.Now()))
	if acts := w.round(t); len(acts) != 0 {
		t.Fatalf("re-imaged with daemon.reimage off: %s", kinds(acts))
	}
	if w.sc.Calls("jobs") != 0 {
		t.Fatal("jobs listed with re-imaging off")
	}
}

// TestReimageNoRebooter: without a reboot client (no scontrol beside a
// REST client: the daemon warns at start) nothing is decided, and the
// actuator itself refuses, named.
func TestReimageNoRebooter(t *testing.T) {
	w := imageWorld(t)
	w.r.d.Rebooter = nil
	w.sc.SetPendingJobs(pendingJob("5", "marked", 1, time.Minute, w.clock.Now()))
	if acts := w.round(t); len(acts) != 0 {
		t.Fatalf("decided without a reboot client: %s", kinds(acts))
	}
	errs := w.r.act(context.Background(), &view{}, []Action{{Kind: KindReimage, Node: "c1", Group: "g", Image: "marked", Job: "5"}})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "reboot client") {
		t.Fatalf("errors %v", errs)
	}
	if n := w.node(t, "c1"); n.Has(slurm.FlagRebootRequested) || n.Has(slurm.FlagDrain) {
		t.Fatalf("c1 changed: %+v", n)
	}
}
