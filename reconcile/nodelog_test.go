package reconcile

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/internal/nodelog"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// The reconciler keeps the log of a dead node's exited instance and of an
// unhealthy node's instance before they are removed, and their reasons say
// where to read it; a dead node whose instance is gone has no log to keep
// and no hint.
func TestFailoverKeepsLogs(t *testing.T) {
	w := newWorld(t, "c[1-3]", "c1", "c2", "c3")
	r, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now, StateDir: w.cfg.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	w.r = r
	w.launch(t, "c1", "c2")
	w.up("c1", slurm.StateAllocated)
	w.rt.SetState("c1", runtime.StateExited)
	w.rt.SetLog("c1", "slurmd: fatal: out of memory\n")
	w.up("c2", slurm.StateIdle, slurm.FlagDrain)
	w.sc.Update(context.Background(), []string{"c2"}, slurm.NodeUpdate{State: slurm.SetDrain, Reason: "slurm-elastic-health: gpu0 XID 79"})
	w.rt.SetLog("c2", "kernel: NVRM: Xid 79\n")
	w.up("c3", slurm.StateAllocated) // no instance at all

	if got := kinds(w.round(t)); got != "c1:dead c2:unhealthy c3:dead" {
		t.Fatalf("round: %q", got)
	}
	for n, want := range map[string]string{"c1": "out of memory", "c2": "Xid 79"} {
		files, err := nodelog.Read(w.cfg.StateDir, n)
		if err != nil || !bytes.Contains(files[len(files)-1].Data, []byte(want)) {
			t.Errorf("%s: saved log %v, %v; want it to hold %q", n, files, err, want)
		}
		if r := w.node(t, n).Reason; !strings.HasSuffix(r, "(log: slurm-elastic logs "+n+")") {
			t.Errorf("%s: reason %q does not say where its log is", n, r)
		}
	}
	if sn := w.node(t, "c1"); !reason.Has(sn.Reason, reason.DeadNode) || !sn.Has(slurm.FlagPoweredDown) {
		t.Errorf("c1: %+v, want DeadNode and powered down", sn)
	}
	if sn := w.node(t, "c2"); !reason.Has(sn.Reason, reason.Unhealthy) || !strings.Contains(sn.Reason, "gpu0 XID 79") {
		t.Errorf("c2: %+v, want Unhealthy keeping the health reason", sn)
	}
	if _, err := nodelog.Read(w.cfg.StateDir, "c3"); !errors.Is(err, nodelog.ErrNone) {
		t.Errorf("c3 had no instance, yet: %v", err)
	}
	if sn := w.node(t, "c3"); !reason.Has(sn.Reason, reason.DeadNode) || strings.Contains(sn.Reason, "slurm-elastic logs") {
		t.Errorf("c3: reason %q", sn.Reason)
	}
}
