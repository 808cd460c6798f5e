package nodehealth

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
)

var xid79 = []Finding{Failf("gpu3", ActionReboot, "Xid 79: GPU has fallen off the bus")}

// rebootRunner is newRunner for a check "xid" failing with xid79 in every
// round, K=1, reboot asked for actions; n1 is up and idle.
func rebootRunner(t *testing.T, actions ...Action) (*Runner, *scripted, func() slurm.Node) {
	t.Helper()
	c := &scripted{name: "xid", rounds: [][]Finding{xid79}}
	r, f := newRunner(t, c)
	r.Policy.DrainAfter = 1
	if len(actions) > 0 {
		r.Policy.Reboot = map[Action]bool{}
		for _, a := range actions {
			r.Policy.Reboot[a] = true
		}
	}
	r.Rebooter = f
	f.Put(slurm.Node{Name: "n1", State: slurm.StateIdle, Flags: []string{slurm.FlagCloud}})
	return r, c, func() slurm.Node { n, _ := f.Node("n1"); return n }
}

func round(t *testing.T, r *Runner) Decision {
	t.Helper()
	_, d, err := r.Round(context.Background())
	if err != nil {
		t.Fatalf("round: %v", err)
	}
	return d
}

// TestRunnerRequestsReboot: with reboot_actions [reboot], an Xid whose
// action is reboot asks Slurm for `scontrol reboot ASAP` with our reason
// (Slurm drains the node); nothing more while the reboot is pending;
// after it, the same fault found again with no job in between (our reason
// still ends "reboot issued") drains the node instead of rebooting it
// again; once a job ran (Slurm cleared the reason) a new fault reboots.
func TestRunnerRequestsReboot(t *testing.T) {
	r, c, n1 := rebootRunner(t, ActionReboot)
	f := r.Rebooter.(interface{ Calls(string) int })
	if d := round(t, r); d.Op != OpReboot {
		t.Fatalf("decision %+v, want reboot", d)
	}
	n := n1()
	if !n.Has(slurm.FlagRebootRequested) || !n.Has(slurm.FlagDrain) || !strings.HasPrefix(n.Reason, "slurm-elastic-health: xid: gpu3: Xid 79") {
		t.Fatalf("after the reboot request: %+v", n)
	}
	if f.Calls("reboot") != 1 || f.Calls("update") != 0 {
		t.Fatalf("%d reboot and %d update calls, want 1 and 0", f.Calls("reboot"), f.Calls("update"))
	}
	// Pending: requested, then issued.
	if d := round(t, r); d.Op != OpNone {
		t.Fatalf("reboot requested: %+v", d)
	}
	r.Rebooter.(interface{ Issue(...string) }).Issue("n1")
	r.Refresh = 1 // read the node every round
	if d := round(t, r); d.Op != OpNone || n1().State != slurm.StateDown {
		t.Fatalf("reboot issued: %+v %+v", d, n1())
	}
	// The fault clears meanwhile: the pending reboot is not undone.
	c.rounds = [][]Finding{ok}
	for range 3 {
		if d := round(t, r); d.Op != OpNone {
			t.Fatalf("reboot issued, check clear: %+v", d)
		}
	}
	if f.Calls("reboot") != 1 || f.Calls("update") != 0 {
		t.Fatalf("acted on a rebooting node: %d reboot, %d update calls", f.Calls("reboot"), f.Calls("update"))
	}

	// The fresh node: Slurm undrained it (ASAP), the reason stays until a
	// job is allocated. A fresh daemon finds the fault again.
	after := slurm.Node{Name: "n1", State: slurm.StateIdle, Flags: []string{slurm.FlagCloud}, Reason: n.Reason + " : " + RebootIssued}
	r2, _, _ := rebootRunner(t, ActionReboot)
	r2.Slurm.(poweredOn).Put(after)
	d := round(t, r2)
	got, _ := r2.Slurm.(poweredOn).Node("n1")
	if d.Op != OpDrain || !got.Has(slurm.FlagDrain) || !strings.Contains(got.Reason, "not cleared by a reboot") {
		t.Fatalf("fault after our reboot: %+v, node %+v (want a drain)", d, got)
	}
	if c := r2.Slurm.(poweredOn).Calls("reboot"); c != 0 {
		t.Fatalf("rebooted again: %d calls", c)
	}

	// A job ran since (reason cleared): a new fault reboots again.
	r3, _, n3 := rebootRunner(t, ActionReboot)
	if d := round(t, r3); d.Op != OpReboot || !n3().Has(slurm.FlagRebootRequested) {
		t.Fatalf("fault after a job: %+v %+v", d, n3())
	}
}

// TestRunnerRebootOff: without reboot_actions (the default), or for an
// action not listed, or with no client that can ask for a reboot, the
// node is drained as before.
func TestRunnerRebootOff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		actions []Action
		noRb    bool
	}{
		{"default: off", nil, false},
		{"action not listed", []Action{ActionReset}, false},
		{"no rebooter", []Action{ActionReboot}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _, n1 := rebootRunner(t, tc.actions...)
			if tc.noRb {
				r.Rebooter = nil
			}
			d := round(t, r)
			n := n1()
			if d.Op != OpDrain || !n.Has(slurm.FlagDrain) || n.Has(slurm.FlagRebootRequested) {
				t.Fatalf("decision %+v node %+v, want a drain", d, n)
			}
		})
	}
}

// TestRunnerRebootOnReset: reset in reboot_actions reboots for a finding
// whose action is reset; a drain-action finding still drains.
func TestRunnerRebootOnReset(t *testing.T) {
	r, c, n1 := rebootRunner(t, ActionReset)
	c.rounds = [][]Finding{{Failf("gpu0", ActionReset, "Xid 48: double-bit ECC error")}}
	if d := round(t, r); d.Op != OpReboot || !n1().Has(slurm.FlagRebootRequested) {
		t.Fatalf("reset: %+v %+v", d, n1())
	}
	r2, c2, n2 := rebootRunner(t, ActionReset, ActionReboot)
	c2.rounds = [][]Finding{fail}
	if d := round(t, r2); d.Op != OpDrain || slices.Contains(n2().Flags, slurm.FlagRebootRequested) {
		t.Fatalf("drain action: %+v %+v", d, n2())
	}
}
