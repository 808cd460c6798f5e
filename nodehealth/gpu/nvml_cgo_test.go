//go:build cgo

package gpu

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/slurm-elastic/slurm-elastic/nodehealth"
	"github.com/slurm-elastic/slurm-elastic/nodehealth/gpu/gpufake"
)

// healthyServer returns a dgxa100 mock whose 8 GPUs answer every query
// the checks make with healthy values.
func healthyServer() *dgxa100.Server { return gpufake.Healthy() }

// setPCIe makes dev report its PCIe link (gpufake.SetPCIe).
var setPCIe = gpufake.SetPCIe

func dev(s *dgxa100.Server, i int) *dgxa100.Device { return s.Devices[i].(*dgxa100.Device) }

// failures returns "component:action" for each failing finding.
func failures(fs []nodehealth.Finding) string {
	var out []string
	for _, f := range fs {
		if f.Status == nodehealth.Fail {
			out = append(out, f.Component+":"+string(f.Action))
		}
	}
	return strings.Join(out, " ")
}

func TestDevicesDGXA100(t *testing.T) {
	eight := func() int { return 8 }
	tests := []struct {
		name   string
		inject func(s *dgxa100.Server)
		want   string
	}{
		{"healthy", func(*dgxa100.Server) {}, ""},
		{"lost GPU", func(s *dgxa100.Server) {
			orig := s.DeviceGetHandleByIndexFunc
			s.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
				if i == 3 {
					return nil, nvml.ERROR_GPU_IS_LOST
				}
				return orig(i)
			}
		}, "gpu3:power-cycle"},
		{"GPU lost mid-read", func(s *dgxa100.Server) {
			dev(s, 5).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
		}, "gpu5:power-cycle"},
		{"count mismatch", func(s *dgxa100.Server) {
			s.DeviceGetCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
		}, "gpu:drain"},
		{"uncorrected ECC", func(s *dgxa100.Server) {
			dev(s, 2).GetTotalEccErrorsFunc = func(typ nvml.MemoryErrorType, _ nvml.EccCounterType) (uint64, nvml.Return) {
				if typ == nvml.MEMORY_ERROR_TYPE_UNCORRECTED {
					return 3, nvml.SUCCESS
				}
				return 0, nvml.SUCCESS
			}
		}, "gpu2:reset"},
		{"ECC not supported is no failure", func(s *dgxa100.Server) {
			dev(s, 2).GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) {
				return 0, nvml.ERROR_NOT_SUPPORTED
			}
			dev(s, 2).GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		}, ""},
		{"row remap failure", func(s *dgxa100.Server) {
			dev(s, 1).GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 4, false, true, nvml.SUCCESS }
		}, "gpu1:reset"},
		{"retired pages pending", func(s *dgxa100.Server) {
			dev(s, 6).GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
		}, "gpu6:reset"},
		{"HW slowdown", func(s *dgxa100.Server) {
			dev(s, 4).GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
				return nvml.ClocksThrottleReasonHwSlowdown | nvml.ClocksEventReasonGpuIdle, nvml.SUCCESS
			}
		}, "gpu4:drain"},
		{"SW power cap is no failure", func(s *dgxa100.Server) {
			dev(s, 4).GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return nvml.ClocksEventReasonSwPowerCap, nvml.SUCCESS }
		}, ""},
		{"PCIe link narrower than its maximum", func(s *dgxa100.Server) { setPCIe(dev(s, 2), 4, 4, 8, 16) }, "gpu2:watch"},
		{"PCIe link a generation down while busy", func(s *dgxa100.Server) { setPCIe(dev(s, 2), 3, 4, 16, 16) }, "gpu2:watch"},
		{"PCIe link a generation down while idle is no failure", func(s *dgxa100.Server) {
			setPCIe(dev(s, 2), 1, 4, 16, 16)
			dev(s, 2).GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return nvml.ClocksEventReasonGpuIdle, nvml.SUCCESS }
		}, ""},
		{"PCIe not supported is no failure", func(s *dgxa100.Server) {
			d := dev(s, 2)
			d.GetCurrPcieLinkGenerationFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
			d.GetMaxPcieLinkGenerationFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
			d.GetCurrPcieLinkWidthFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
			d.GetMaxPcieLinkWidthFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		}, ""},
		{"over slowdown temperature", func(s *dgxa100.Server) {
			dev(s, 7).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 90, nvml.SUCCESS }
		}, "gpu7:drain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := healthyServer()
			tc.inject(s)
			c := &Devices{Source: NewNVMLFrom(s), Expected: eight}
			fs := c.Run(context.Background())
			if got := failures(fs); got != tc.want {
				t.Fatalf("failures %q, want %q\n%v", got, tc.want, fs)
			}
			for _, f := range fs {
				if f.Status == nodehealth.Unknown {
					t.Fatalf("unexpected Unknown: %v", f)
				}
			}
		})
	}
}

func TestNVLinkDown(t *testing.T) {
	s := healthyServer()
	c := &Devices{Source: NewNVMLFrom(s), Expected: func() int { return 8 }}
	if got := failures(c.Run(context.Background())); got != "" {
		t.Fatalf("baseline: %s", got)
	}
	dev(s, 0).GetNvLinkStateFunc = func(l int) (nvml.EnableState, nvml.Return) {
		switch {
		case l >= 12:
			return 0, nvml.ERROR_INVALID_ARGUMENT
		case l == 5:
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		return nvml.FEATURE_ENABLED, nvml.SUCCESS
	}
	fs := c.Run(context.Background())
	if got := failures(fs); got != "gpu0:reset" || !strings.Contains(fs[1].Message, "link 5") {
		t.Fatalf("link down: %s %v", got, fs)
	}
}

func TestNoLibrary(t *testing.T) {
	s := healthyServer()
	s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	none := &Devices{Source: NewNVMLFrom(s), Expected: func() int { return 0 }}
	if fs := none.Run(context.Background()); len(fs) != 1 || fs[0].Status != nodehealth.OK {
		t.Fatalf("no NVML, no GPUs configured: %v", fs)
	}
	want := &Devices{Source: NewNVMLFrom(s), Expected: func() int { return 8 }}
	if got := failures(want.Run(context.Background())); got != "gpu:drain" {
		t.Fatalf("no NVML, 8 GPUs configured: %q", got)
	}
}

// eventServer makes the mock's event set deliver the given events, then
// time out until ctx is done.
func eventServer(t *testing.T, events ...nvml.EventData) *dgxa100.Server {
	s, ch := eventServerChan(t, len(events))
	for _, e := range events {
		ch <- e
	}
	return s
}

// eventServerChan returns a mock whose event set delivers what is sent on
// the channel (buffered n).
func eventServerChan(t *testing.T, n int) (*dgxa100.Server, chan<- nvml.EventData) {
	s := healthyServer()
	ch := make(chan nvml.EventData, n)
	s.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		return &mock.EventSet{
			WaitFunc: func(uint32) (nvml.EventData, nvml.Return) {
				select {
				case e := <-ch:
					return e, nvml.SUCCESS
				default:
					return nvml.EventData{}, nvml.ERROR_TIMEOUT
				}
			},
			FreeFunc: func() nvml.Return { return nvml.SUCCESS },
		}, nvml.SUCCESS
	}
	for _, d := range s.Devices {
		d.(*dgxa100.Device).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS }
	}
	return s, ch
}

func TestXidEvents(t *testing.T) {
	s := eventServer(t)
	xid := func(i int, code uint64) nvml.EventData {
		return nvml.EventData{Device: s.Devices[i], EventType: nvml.EventTypeXidCriticalError, EventData: code}
	}
	tests := []struct {
		name      string
		events    []nvml.EventData
		overrides map[uint64]nodehealth.Action
		want      string // failures after the events
	}{
		{"Xid 79 drains and power-cycles", []nvml.EventData{xid(3, 79)}, nil, "gpu3:power-cycle"},
		{"Xid 13 is ignored", []nvml.EventData{xid(1, 13)}, nil, ""},
		{"Xid 48 resets", []nvml.EventData{xid(0, 48)}, nil, "gpu0:reset"},
		{"Xid 92 is watched", []nvml.EventData{xid(0, 92)}, nil, "gpu0:watch"},
		{"override: Xid 13 drains", []nvml.EventData{xid(1, 13)}, map[uint64]nodehealth.Action{13: nodehealth.ActionDrain}, "gpu1:drain"},
		{"double-bit ECC event", []nvml.EventData{{Device: s.Devices[2], EventType: nvml.EventTypeDoubleBitEccError}}, nil, "gpu2:reset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := eventServer(t, tc.events...)
			// The events refer to the devices of the first server; same indices.
			x := NewXids(NewNVMLFrom(s), tc.overrides)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			x.Start(ctx)
			for range len(tc.events) {
				<-x.Notify() // one notification per event at most; wait for the first
				break
			}
			fs := x.Run(ctx)
			if got := failures(fs); got != tc.want {
				t.Fatalf("failures %q, want %q: %v", got, tc.want, fs)
			}
			// A draining Xid is sticky; the others are reported once.
			again := failures(x.Run(ctx))
			if fs := x.Run(ctx); tc.want != "" && strings.HasSuffix(tc.want, ":watch") && again != "" {
				t.Fatalf("watch Xid repeated: %v", fs)
			}
			if tc.want != "" && !strings.HasSuffix(tc.want, ":watch") && again != tc.want {
				t.Fatalf("draining Xid not sticky: %q", again)
			}
		})
	}
}

func TestXidNoLibrary(t *testing.T) {
	s := healthyServer()
	s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	x := NewXids(NewNVMLFrom(s), nil)
	x.Start(context.Background())
	if fs := x.Run(context.Background()); len(fs) != 1 || fs[0].Status != nodehealth.OK {
		t.Fatalf("%v", fs)
	}
}

func TestPCIeAction(t *testing.T) {
	s := healthyServer()
	setPCIe(dev(s, 6), 4, 4, 4, 16)
	c := &Devices{Source: NewNVMLFrom(s), Expected: func() int { return 8 }, PCIeAction: nodehealth.ActionDrain}
	fs := c.Run(context.Background())
	if got := failures(fs); got != "gpu6:drain" {
		t.Fatalf("failures %q, want gpu6:drain: %v", got, fs)
	}
	for _, f := range fs {
		if f.Component == "gpu6" && f.Message != "PCIe link degraded: width x4 of x16" {
			t.Fatalf("message %q", f.Message)
		}
	}
}

// TestXidClearedByGPUReset: a sticky Xid whose action is reset clears when
// the polled check sees that GPU reset (lost, then readable again; or its
// reset-pending state cleared); other GPUs' resets, NVML errors and Xids
// that call for more than a reset leave it.
func TestXidClearedByGPUReset(t *testing.T) {
	lose := func(s *dgxa100.Server, i int) func() {
		orig := s.DeviceGetHandleByIndexFunc
		s.DeviceGetHandleByIndexFunc = func(j int) (nvml.Device, nvml.Return) {
			if j == i {
				return nil, nvml.ERROR_GPU_IS_LOST
			}
			return orig(j)
		}
		return func() { s.DeviceGetHandleByIndexFunc = orig }
	}
	pending := func(s *dgxa100.Server, i int) func() {
		dev(s, i).GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 1, true, false, nvml.SUCCESS }
		return func() {
			dev(s, i).GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 1, false, false, nvml.SUCCESS }
		}
	}
	nvmlError := func(s *dgxa100.Server, i int) func() {
		orig := dev(s, i).GetTemperatureFunc
		dev(s, i).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
		return func() { dev(s, i).GetTemperatureFunc = orig }
	}
	tests := []struct {
		name    string
		gpu     int    // where the Xid happens
		xid     uint64 // its code
		fault   func(s *dgxa100.Server, i int) func()
		on      int    // the GPU the fault and its repair happen on
		want    string // xid failures after the repair
		cleared bool   // an OK "cleared after a GPU reset" finding once
	}{
		{"Xid 48, GPU lost and back", 3, 48, lose, 3, "", true},
		{"Xid 63, remap pending cleared", 3, 63, pending, 3, "", true},
		{"Xid 79 (power-cycle) stays", 3, 79, lose, 3, "gpu3:power-cycle", false},
		{"Xid 54 (drain) stays", 3, 54, pending, 3, "gpu3:drain", false},
		{"another GPU's reset", 3, 62, lose, 5, "gpu3:reset", false},
		{"an NVML error is no reset", 3, 62, nvmlError, 3, "gpu3:reset", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, events := eventServerChan(t, 1)
			src := NewNVMLFrom(s)
			x := NewXids(src, nil)
			d := &Devices{Source: src, Expected: func() int { return 8 }, OnReset: x.Reset}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			x.Start(ctx)
			d.Run(ctx) // the first view of every GPU
			events <- nvml.EventData{Device: s.Devices[tc.gpu], EventType: nvml.EventTypeXidCriticalError, EventData: tc.xid}
			<-x.Notify()
			before := failures(x.Run(ctx))
			repair := tc.fault(s, tc.on)
			d.Run(ctx) // sees the fault (lost, pending, error)
			repair()
			d.Run(ctx) // sees the GPU after the repair
			fs := x.Run(ctx)
			if got := failures(fs); got != tc.want {
				t.Fatalf("after the repair: failures %q, want %q (before: %q)\n%v", got, tc.want, before, fs)
			}
			cleared := slices.ContainsFunc(fs, func(f nodehealth.Finding) bool {
				return f.Status == nodehealth.OK && strings.Contains(f.Message, "cleared after a GPU reset")
			})
			if cleared != tc.cleared {
				t.Fatalf("cleared %v, want %v: %v", cleared, tc.cleared, fs)
			}
			if again := failures(x.Run(ctx)); again != tc.want {
				t.Fatalf("next round: %q, want %q", again, tc.want)
			}
		})
	}
}
