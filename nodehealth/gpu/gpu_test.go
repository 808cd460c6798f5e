package gpu

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/nodehealth"
)

// fakeSource is a Source in plain Go (runs with cgo off too).
type fakeSource struct {
	initErr error
	samples []Sample
	events  []XidEvent
}

func (f *fakeSource) Init() error         { return f.initErr }
func (f *fakeSource) Count() (int, error) { return len(f.samples), nil }
func (f *fakeSource) Sample(i int) Sample { return f.samples[i] }
func (f *fakeSource) WatchXid(ctx context.Context, fn func(XidEvent)) error {
	for _, e := range f.events {
		fn(e)
	}
	<-ctx.Done()
	return nil
}

func ptr[T any](v T) *T { return &v }

func TestDevicesLogic(t *testing.T) {
	ok := func(i int) Sample {
		return Sample{Index: i, UUID: fmt.Sprint("GPU-", i), Name: "A100", UncorrectedECC: ptr[uint64](0),
			TempC: ptr[uint32](40), SlowdownC: ptr[uint32](90), Throttle: ptr[uint64](0)}
	}
	lost := Sample{Index: 1, Err: fmt.Errorf("handle: %w", ErrGPULost)}
	hot := ok(0)
	hot.TempC = ptr[uint32](95)
	for _, tc := range []struct {
		name    string
		src     *fakeSource
		want    int
		failing string
	}{
		{"healthy", &fakeSource{samples: []Sample{ok(0), ok(1)}}, 2, ""},
		{"missing GPU", &fakeSource{samples: []Sample{ok(0)}}, 2, "gpu"},
		{"lost GPU", &fakeSource{samples: []Sample{ok(0), lost}}, 2, "gpu1"},
		{"hot", &fakeSource{samples: []Sample{hot, ok(1)}}, 2, "gpu0"},
		{"no library, none configured", &fakeSource{initErr: ErrNoLibrary}, 0, ""},
		{"no library, GPUs configured", &fakeSource{initErr: ErrNoLibrary}, 2, "gpu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Devices{Source: tc.src, Expected: func() int { return tc.want }}
			var failing string
			for _, f := range d.Run(context.Background()) {
				if f.Drains() {
					failing += f.Component
				}
			}
			if failing != tc.failing {
				t.Fatalf("failing %q, want %q", failing, tc.failing)
			}
		})
	}
}

func TestXidTable(t *testing.T) {
	x := NewXids(&fakeSource{}, map[uint64]nodehealth.Action{79: nodehealth.ActionWatch})
	if x.Actions[79] != nodehealth.ActionWatch || x.Actions[48] != nodehealth.ActionReset || x.Actions[13] != nodehealth.ActionNone {
		t.Fatalf("table: %v", x.Actions)
	}
	for _, fatal := range []uint64{46, 48, 54, 62, 63, 64, 74, 79, 95, 109, 110, 119, 120, 136, 140, 142, 143, 151, 155, 156, 158} {
		if !DefaultXidActions()[fatal].Drains() {
			t.Errorf("Xid %d should drain by default", fatal)
		}
	}
}

func TestNewNVMLWithoutLibraryIsNoLibrary(t *testing.T) {
	// With cgo this loads the real libnvml, absent on the test machines;
	// without cgo it is the stub. Either way: ErrNoLibrary, no crash.
	err := NewNVML().Init()
	if err == nil {
		t.Skip("an NVIDIA driver is present: covered by the device run")
	}
	if !errors.Is(err, ErrNoLibrary) {
		t.Fatalf("Init: %v, want ErrNoLibrary", err)
	}
}
