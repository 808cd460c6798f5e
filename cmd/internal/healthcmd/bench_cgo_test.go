//go:build cgo

package healthcmd

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/nodehealth"
	"github.com/slurm-elastic/slurm-elastic/nodehealth/gpu"
	"github.com/slurm-elastic/slurm-elastic/nodehealth/gpu/gpufake"
)

// eventMock is a dgxa100 mock with healthy answers to every polled query
// and an event set whose Wait blocks like NVML's: until an event arrives
// on events or its timeout passes.
func eventMock(events <-chan nvml.EventData) *dgxa100.Server {
	s := gpufake.Healthy()
	for _, d := range s.Devices {
		dev := d.(*dgxa100.Device)
		dev.RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS }
	}
	s.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		return &mock.EventSet{
			WaitFunc: func(ms uint32) (nvml.EventData, nvml.Return) {
				select {
				case e := <-events:
					return e, nvml.SUCCESS
				case <-time.After(time.Duration(ms) * time.Millisecond):
					return nvml.EventData{}, nvml.ERROR_TIMEOUT
				}
			},
			FreeFunc: func() nvml.Return { return nvml.SUCCESS },
		}, nvml.SUCCESS
	}
	return s
}

// BenchmarkXidToDrain is the event-driven fault->DRAIN latency (docs/
// benchmarks.md 4a): a daemon (Runner.Run, interval 10s, every host check,
// the polled GPU check and the Xid check on a dgxa100 mock) is idle
// between rounds; the mock's event set delivers Xid 79 on GPU 3; the time
// until the drain update reaches Slurm (the in-memory fake) is one op.
// The path is the real one from EventSet.Wait on: WatchXid, the Xid table,
// the notification, an immediate round, the policy and the update. Each op
// starts a fresh daemon (the Xid finding is sticky), outside the timer.
func BenchmarkXidToDrain(b *testing.B) {
	h := benchHealth()
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		events := make(chan nvml.EventData, 1)
		srv := eventMock(events)
		f := slurmfake.New("n1")
		drained := make(chan struct{}, 1)
		rounds := make(chan struct{}, 16)
		f.SetFault(func(op string, _ []string, u slurm.NodeUpdate) error {
			switch {
			case op == "update" && u.State == slurm.SetDrain:
				drained <- struct{}{}
			case op == "nodes":
				select {
				case rounds <- struct{}{}:
				default:
				}
			}
			return nil
		})
		r := &nodehealth.Runner{Node: "n1", Slurm: up{f}, Interval: 10 * time.Second,
			Policy: nodehealth.Policy{DrainAfter: 2, UndrainAfter: 3, PerCheck: map[string]int{}}}
		checks, xids := Checks(h, r.NodeInfo, gpu.NewNVMLFrom(srv), true)
		r.Checks = checks
		r.Policy.PerCheck["xid"] = xids.DrainAfter()
		ctx, cancel := context.WithCancel(context.Background())
		xids.Start(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		<-rounds                          // the first round has asked Slurm,
		time.Sleep(50 * time.Millisecond) // finished its checks and gone idle
		b.StartTimer()
		t0 := time.Now()
		events <- nvml.EventData{Device: srv.Devices[3], EventType: nvml.EventTypeXidCriticalError, EventData: 79}
		select {
		case <-drained:
		case <-time.After(10 * time.Second):
			b.Fatal("Xid 79 did not drain the node within 10s")
		}
		total += time.Since(t0)
		b.StopTimer()
		cancel()
		<-done
		if n, _ := f.Node("n1"); !slices.Contains(n.Flags, slurm.FlagDrain) || n.Reason != "slurm-elastic-health: xid: gpu3: Xid 79: GPU has fallen off the bus (power-cycle)" {
			b.Fatalf("node after the Xid: %+v", n)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/drain")
}
