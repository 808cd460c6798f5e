//go:build cgo

package healthcmd

import (
	"context"
	"slices"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/nodehealth"
	"github.com/slurm-elastic/slurm-elastic/nodehealth/gpu"
)

// TestXidDrainUndrainAfterGPUReset wires the checks as the daemon does: an
// Xid that calls for a GPU reset drains the node at once; the GPU falls
// off the bus and comes back (the reset); the Xid finding clears and, after
// undrain_after clean rounds, the node is back in service.
func TestXidDrainUndrainAfterGPUReset(t *testing.T) {
	events := make(chan nvml.EventData, 1)
	srv := eventMock(events)
	f := slurmfake.New("n1")
	h := conf.Default().Health
	h.Memory, h.CPUs.Expected = conf.HealthMemory{}, -1
	h.GPU.Expected = 8
	r := &nodehealth.Runner{Node: "n1", Slurm: up{f}, Policy: nodehealth.Policy{DrainAfter: 2, UndrainAfter: 2, PerCheck: map[string]int{}}}
	checks, xids := Checks(h, r.NodeInfo, gpu.NewNVMLFrom(srv), true)
	r.Checks = checks
	r.Policy.PerCheck["xid"] = xids.DrainAfter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	xids.Start(ctx)
	// round runs one round and wants op.
	round := func(want nodehealth.Op) {
		t.Helper()
		fs, d, err := r.Round(ctx)
		if err != nil || d.Op != want {
			t.Fatalf("round: %s (%s), want %s; err %v\n%v", d.Op, d.Why, want, err, fs)
		}
	}
	drained := func() bool {
		n, _ := f.Node("n1")
		return slices.Contains(n.Flags, slurm.FlagDrain)
	}
	round(nodehealth.OpNone)
	events <- nvml.EventData{Device: srv.Devices[3], EventType: nvml.EventTypeXidCriticalError, EventData: 48}
	<-xids.Notify()
	round(nodehealth.OpDrain)
	if n, _ := f.Node("n1"); !drained() || n.Reason != "slurm-elastic-health: xid: gpu3: Xid 48: double-bit ECC error (reset)" {
		t.Fatalf("after Xid 48: %+v", n)
	}
	orig := srv.DeviceGetHandleByIndexFunc
	srv.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if i == 3 {
			return nil, nvml.ERROR_GPU_IS_LOST
		}
		return orig(i)
	}
	round(nodehealth.OpNone) // being reset: lost
	srv.DeviceGetHandleByIndexFunc = orig
	round(nodehealth.OpNone) // back: the Xid clears, clean 1 of 2
	if !drained() {
		t.Fatal("undrained before undrain_after clean rounds")
	}
	// The checks of a round run concurrently: the Xid check sees the reset
	// in the same round or the next, so undrain_after (2) clean rounds
	// end one or two rounds later.
	for i := 0; drained(); i++ {
		if i == 2 {
			t.Fatal("still drained 3 rounds after the GPU reset")
		}
		if _, _, err := r.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
