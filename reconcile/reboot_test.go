package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

func (w *world) instance(t *testing.T, n string) runtime.Instance {
	t.Helper()
	for _, in := range w.rt.Instances() {
		if in.Name == n {
			return in
		}
	}
	t.Fatalf("node %s has no instance", n)
	return runtime.Instance{}
}

// TestRebootRecreates: `scontrol reboot c1` as slurmctld plays it
// (slurmfake): nothing while the reboot is only requested or the old
// container still runs; once RebootProgram stopped it (exited), one round
// launches a fresh instance of the group's image and addresses the node;
// the rounds after that (the new slurmd registering, or registered) do
// nothing, and the node is never failed over as dead.
func TestRebootRecreates(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.launch(t, "c1", "c2")
	w.up("c1", slurm.StateIdle)
	w.up("c2", slurm.StateIdle)
	old := w.instance(t, "c1")
	if err := w.sc.Reboot(context.Background(), []string{"c1"}, slurm.RebootOptions{}); err != nil {
		t.Fatal(err)
	}
	if acts := w.round(t); len(acts) != 0 {
		t.Fatalf("reboot only requested: %s", kinds(acts))
	}
	w.sc.Issue("c1")
	if n := w.node(t, "c1"); !n.Has(slurm.FlagRebootIssued) || n.State != slurm.StateDown {
		t.Fatalf("fake did not issue the reboot: %+v", n)
	}
	if acts := w.round(t); len(acts) != 0 {
		t.Fatalf("old container still running: %s", kinds(acts))
	}
	w.rt.SetState("c1", runtime.StateExited) // RebootProgram stopped it
	acts := w.round(t)
	if kinds(acts) != "c1:reboot" {
		t.Fatalf("want c1:reboot, got %q", kinds(acts))
	}
	fresh := w.instance(t, "c1")
	if fresh.ID == old.ID || fresh.State != runtime.StateRunning {
		t.Fatalf("no fresh instance: old %+v new %+v", old, fresh)
	}
	n := w.node(t, "c1")
	if n.Addr != fresh.Addr || n.Addr == "" || n.Hostname != "c1" {
		t.Fatalf("node not addressed: %+v, instance addr %q", n, fresh.Addr)
	}
	if !n.Has(slurm.FlagRebootIssued) || n.Reason != "reboot requested : reboot issued" {
		t.Fatalf("Slurm's reboot state or reason changed by the reconciler: %+v", n)
	}
	ev := w.r.Events.Events()
	if len(ev) != 1 || ev[0].Kind != KindReboot || ev[0].Error != "" {
		t.Fatalf("events %+v", ev)
	}
	// The new slurmd has not registered yet: nothing.
	if acts := w.round(t); len(acts) != 0 {
		t.Fatalf("fresh instance registering: %s", kinds(acts))
	}
	// Registered: Slurm returns it to service.
	w.up("c1", slurm.StateIdle)
	if acts := w.round(t); len(acts) != 0 {
		t.Fatalf("after the reboot: %s", kinds(acts))
	}
	if got := w.instance(t, "c1"); got.ID != fresh.ID {
		t.Fatalf("instance replaced again: %+v", got)
	}
	if w.instance(t, "c2").ID == "" {
		t.Fatal("c2 lost its instance")
	}
}

// TestRebootLaunchFails: a failed launch leaves the node REBOOT_ISSUED and
// is an error event; the next round launches again.
func TestRebootLaunchFails(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.launch(t, "c1")
	w.up("c1", slurm.StateDown, slurm.FlagRebootIssued)
	w.rt.SetState("c1", runtime.StateExited)
	w.rt.SetFault(func(op, node string) error {
		if op == runtimefake.OpLaunch {
			return runtime.Errorf(runtime.ClassCapacity, "no host with room")
		}
		return nil
	})
	acts, err := w.r.Round(context.Background())
	if kinds(acts) != "c1:reboot" || err == nil || !strings.Contains(err.Error(), "no host with room") {
		t.Fatalf("acts %q err %v", kinds(acts), err)
	}
	if n := w.node(t, "c1"); !n.Has(slurm.FlagRebootIssued) || n.State != slurm.StateDown {
		t.Fatalf("node changed by a failed reboot: %+v", n)
	}
	w.rt.SetFault(nil)
	if acts := w.round(t); kinds(acts) != "c1:reboot" {
		t.Fatalf("retry: %q", kinds(acts))
	}
	if in := w.instance(t, "c1"); in.State != runtime.StateRunning {
		t.Fatalf("instance %+v", in)
	}
}

// TestRebootAddressRefused: Slurm not taking the new address removes the
// new instance again (no node Slurm cannot reach is left).
func TestRebootAddressRefused(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	w.up("c1", slurm.StateDown, slurm.FlagRebootIssued)
	w.sc.SetFault(func(op string, names []string, u slurm.NodeUpdate) error {
		if op == "update" && u.Addr != "" {
			return errors.New("connection refused")
		}
		return nil
	})
	acts, err := w.r.Round(context.Background())
	if kinds(acts) != "c1:reboot" || err == nil {
		t.Fatalf("acts %q err %v", kinds(acts), err)
	}
	if w.hasInstance("c1") {
		t.Fatal("instance left behind after Slurm refused its address")
	}
}

// TestRebootNotOurs: a rebooting node the config does not know, and one
// held, are left alone.
func TestRebootNotOurs(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2", "x1")
	w.up("x1", slurm.StateDown, slurm.FlagRebootIssued)
	w.launch(t, "c2")
	w.rt.SetState("c2", runtime.StateExited)
	w.up("c2", slurm.StateDown, slurm.FlagRebootIssued)
	w.cfg.Daemon.Hold = []string{"c2"}
	if err := w.r.configure(w.r.d, w.r.stamp); err != nil {
		t.Fatal(err)
	}
	if acts := w.round(t); len(acts) != 0 {
		t.Fatalf("acted on a node not ours: %s", kinds(acts))
	}
}
