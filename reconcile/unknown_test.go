package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// launchIn launches node n with group label g, as hooks reading another
// config would.
func (w *world) launchIn(t testing.TB, g, n string) {
	t.Helper()
	if r := w.rt.Launch(context.Background(), []runtime.NodeSpec{{Name: n, Group: g, Template: runtime.Template{Image: "img"}}})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
}

// Issue 11, defect 1: the daemon runs with a config that lacks group big;
// the hooks, reading the new file, launched big1 for a job. big1's
// instance is unknown to the daemon: reported once (kind unknown: the
// log, an event, the status and a metric), never removed, whatever Slurm
// says and however old it is.
func TestUnknownGroupInstanceIsReportedNotRemoved(t *testing.T) {
	for _, st := range []struct {
		state string
		flags []string
	}{
		{slurm.StateIdle, []string{slurm.FlagPoweredDown, slurm.FlagPoweringUp}},
		{slurm.StateAllocated, nil},
		{slurm.StateIdle, []string{slurm.FlagPoweredDown}},
		{"", nil}, // Slurm does not list big1 (hidden powered down)
	} {
		t.Run(st.state+strings.Join(st.flags, "+"), func(t *testing.T) {
			w := newWorld(t, "cpu[1-2]", "cpu1", "cpu2", "big1")
			w.launchIn(t, "big", "big1")
			if st.state == "" {
				w.sc.Delete("big1")
			} else {
				w.up("big1", st.state, st.flags...)
			}
			w.clock.Add(time.Hour) // far past orphan_grace
			if got := kinds(w.round(t)); got != "big1:unknown" {
				t.Fatalf("round 1: %q", got)
			}
			if got := kinds(w.round(t)); got != "" {
				t.Fatalf("round 2 (reported once): %q", got)
			}
			if !w.hasInstance("big1") {
				t.Fatal("big1's instance removed")
			}
			if n := w.rt.Stats().Terminated; n != 0 {
				t.Fatalf("%d instances terminated", n)
			}
			if st.state != "" {
				if n := w.node(t, "big1"); n.State != st.state || n.Reason != "" {
					t.Fatalf("big1 touched in Slurm: %+v", n)
				}
			}
			ev := w.r.Events.Events()
			if len(ev) != 1 || ev[0].Kind != KindUnknown || !strings.Contains(ev[0].Saw, `group "big" is not in the daemon's config`) {
				t.Fatalf("events: %+v", ev)
			}
			var row *NodeStatus
			for _, n := range w.r.Status().Nodes {
				if n.Name == "big1" {
					row = &n
				}
			}
			if row == nil || row.Kind != string(KindUnknown) || row.Group != "big" || !strings.HasPrefix(row.Slurm, "(unknown: ") {
				t.Fatalf("status row: %+v", row)
			}
			if v := gauge(t, w.r.Metrics.unknown.WithLabelValues("big")); v != 1 {
				t.Fatalf("slurm_elastic_unknown_instances{group=big} = %v", v)
			}
		})
	}
}

// An instance whose group label names another configured group than the
// config's for its node, or on a host the config does not list, is
// unknown too; a known one is not.
func TestUnknownByGroupOrHost(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	r := w.r
	r.hosts = map[string]map[string]bool{"fake": {"h1": true}}
	e := Entry{Name: "c1", Group: "g", Inst: &runtime.Instance{Name: "c1", Group: "g", Host: "h1"}}
	if why := r.unknown(&e, "fake"); why != "" {
		t.Fatalf("known instance unknown: %s", why)
	}
	e.Inst.Host = "h2"
	if why := r.unknown(&e, "fake"); !strings.Contains(why, `host "h2"`) {
		t.Fatalf("host h2: %q", why)
	}
	e.Inst.Host, e.Inst.Group = "h1", "other"
	if why := r.unknown(&e, "fake"); !strings.Contains(why, `group "other"`) {
		t.Fatalf("group other: %q", why)
	}
}

// gauge reads a gauge's value.
func gauge(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var d dto.Metric
	if err := g.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetGauge().GetValue()
}
