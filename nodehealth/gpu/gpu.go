// Package gpu checks NVIDIA GPUs through NVML: device count, lost GPUs,
// Xid events (event-driven, mapped to actions by a table), uncorrected
// ECC, retired pages and row-remap failures, temperature and HW-slowdown
// throttling, NVLink links going down.
//
// The checks here are plain Go and read NVML through Source. The NVML
// Source (nvml_cgo.go) needs cgo; built without cgo, NewNVML returns a
// Source whose Init fails with ErrNoLibrary, so everything else builds and
// a node configured with GPUs reports that failure.
package gpu

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/slurm-elastic/slurm-elastic/nodehealth"
)

// Errors a Source returns (wrapped).
var (
	// ErrNoLibrary: NVML cannot be loaded (no driver, or built without cgo).
	ErrNoLibrary = errors.New("NVML library not found")
	// ErrGPULost: the GPU fell off the bus (NVML_ERROR_GPU_IS_LOST).
	ErrGPULost = errors.New("GPU is lost")
	// ErrNotSupported: the call is not supported on this GPU or driver.
	ErrNotSupported = errors.New("not supported")
)

// Throttle-reason bits (nvmlClocksEventReason*).
const (
	ThrottleHWSlowdown   uint64 = 0x8
	ThrottleSWThermal    uint64 = 0x20
	ThrottleHWThermal    uint64 = 0x40
	ThrottleHWPowerBrake uint64 = 0x80
)

// Sample is one polled look at one GPU. Pointer fields are nil when the
// GPU does not support the query.
type Sample struct {
	Index int
	UUID  string
	Name  string
	// Err: the device could not be opened or read (wraps ErrGPULost when
	// the GPU fell off the bus); the other fields are then unset.
	Err            error
	UncorrectedECC *uint64 // volatile, total
	RetiredPending *bool   // retired pages pending a reset
	RemapFailure   *bool   // row remapping failed
	RemapPending   *bool   // row remap pending a reset
	TempC          *uint32
	SlowdownC      *uint32 // NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
	Throttle       *uint64 // current clocks event reasons
	// NVLinkUp lists the state of each link NVML reports (true = up);
	// nil when NVLink is not supported.
	NVLinkUp []bool
	// PCIe link: current and maximum (of this GPU in this system)
	// generation and width; nil when not supported.
	PCIeGen, PCIeGenMax     *int
	PCIeWidth, PCIeWidthMax *int
}

// ThrottleGPUIdle is the clocks-event bit of an idle GPU
// (nvmlClocksEventReasonGpuIdle): its PCIe link may legitimately run at a
// lower generation to save power.
const ThrottleGPUIdle uint64 = 0x1

// pendingReset reports whether s shows a state only a GPU reset clears:
// retired pages or a row remap pending, or uncorrected volatile ECC
// errors (the volatile counters restart at a reset).
func (s Sample) pendingReset() bool {
	return (s.RetiredPending != nil && *s.RetiredPending) || (s.RemapPending != nil && *s.RemapPending) ||
		(s.UncorrectedECC != nil && *s.UncorrectedECC > 0)
}

// XidEvent is one critical error reported by NVML's event set.
type XidEvent struct {
	Index int    // GPU index, -1 when unknown
	UUID  string // "" when unknown
	Xid   uint64
	// DoubleBitECC: the event was a double-bit ECC error, not an Xid.
	DoubleBitECC bool
}

// Source is what the checks need from NVML. Implementations are safe for
// concurrent use between Sample calls and one WatchXid.
type Source interface {
	// Init loads and initialises NVML; ErrNoLibrary when it is absent.
	// Idempotent.
	Init() error
	// Count returns the number of GPUs NVML sees. Blocks on NVML.
	Count() (int, error)
	// Sample reads GPU i. Blocks on NVML.
	Sample(i int) Sample
	// WatchXid registers every GPU for Xid and double-bit ECC events and
	// calls fn for each until ctx is done. Returns ErrNotSupported when
	// events are unavailable. Blocks until ctx is done.
	WatchXid(ctx context.Context, fn func(XidEvent)) error
}

// DefaultXidActions is NVIDIA's Xid catalog bucketed into actions
// (docs/health.md); config overrides entries.
func DefaultXidActions() map[uint64]nodehealth.Action {
	t := map[uint64]nodehealth.Action{}
	set := func(a nodehealth.Action, xids ...uint64) {
		for _, x := range xids {
			t[x] = a
		}
	}
	set(nodehealth.ActionNone, 13, 31, 43, 45, 94)
	set(nodehealth.ActionWatch, 92)
	set(nodehealth.ActionReset, 46, 62, 63, 109, 110, 119, 120, 136, 140, 142, 143, 155, 156, 158, 48, 64, 95)
	set(nodehealth.ActionDrain, 54, 151)
	set(nodehealth.ActionReboot, 74, 144, 145, 146, 147, 148, 149, 150)
	set(nodehealth.ActionPowerCycle, 79, 160)
	return t
}

// XidMeaning is a short description of well-known Xids for messages.
var XidMeaning = map[uint64]string{
	13: "graphics engine exception (application)", 31: "GPU memory page fault (application)",
	43: "GPU stopped processing (application)", 45: "preemptive cleanup after another error",
	46: "GPU stopped processing", 48: "double-bit ECC error", 54: "auxiliary power not connected",
	62: "internal micro-controller halt", 63: "row remap / page retirement event",
	64: "row remap failure", 74: "NVLink error", 79: "GPU has fallen off the bus",
	92: "high single-bit ECC error rate", 94: "contained ECC error", 95: "uncontained ECC error",
	109: "context switch timeout", 119: "GSP RPC timeout", 120: "GSP error", 151: "key rotation error",
	160: "channel retirement",
}

// Devices is the polled GPU check ("gpu").
type Devices struct {
	Source Source
	// Expected returns the number of GPUs the node must have (from config
	// or Slurm's Gres); 0 = none configured.
	Expected func() int
	// MaxTemperatureC: 0 = the GPU's slowdown threshold.
	MaxTemperatureC uint32
	// PCIeAction is the action of a degraded PCIe link (narrower than
	// its maximum width, or a lower generation while the GPU is busy);
	// "" = ActionWatch (reported, never drains).
	PCIeAction nodehealth.Action
	// OnReset is called (from Run) when a GPU shows it was reset: its
	// handle is read again after the GPU was lost, the UUID at its index changed,
	// or a state only a reset clears (pending retired pages or row
	// remap, uncorrected volatile ECC) has cleared. The Xid check clears
	// its reset findings for that GPU (Xids.Reset). nil = ignored.
	OnReset func(index int, uuid, why string)

	mu       sync.Mutex
	baseline map[string][]bool // NVLink states first seen, by UUID
	last     map[int]gpuSeen   // by index: what the previous round saw
}

// gpuSeen is what one round saw of one GPU.
type gpuSeen struct {
	uuid    string
	lost    bool // fallen off the bus (ErrGPULost): only a reset brings it back
	pending bool // Sample.pendingReset
}

// Name implements nodehealth.Check.
func (*Devices) Name() string { return "gpu" }

// Run implements nodehealth.Check. Blocks on NVML (calls are not
// interruptible: the Runner abandons a check that overruns).
func (d *Devices) Run(ctx context.Context) []nodehealth.Finding {
	want := 0
	if d.Expected != nil {
		want = d.Expected()
	}
	if err := d.Source.Init(); err != nil {
		if errors.Is(err, ErrNoLibrary) && want == 0 {
			return []nodehealth.Finding{nodehealth.OKf("gpu", "no NVML and no GPUs configured: nothing to check")}
		}
		if errors.Is(err, ErrNoLibrary) {
			return []nodehealth.Finding{nodehealth.Failf("gpu", nodehealth.ActionDrain, "%d GPUs configured but %v", want, err)}
		}
		return []nodehealth.Finding{nodehealth.Unknownf("gpu", "NVML init: %v", err)}
	}
	n, err := d.Source.Count()
	if err != nil {
		return []nodehealth.Finding{nodehealth.Unknownf("gpu", "count GPUs: %v", err)}
	}
	var out []nodehealth.Finding
	if want > 0 && n < want {
		out = append(out, nodehealth.Failf("gpu", nodehealth.ActionDrain, "%d GPUs visible, %d configured", n, want))
	} else if want > 0 && n > want {
		out = append(out, nodehealth.Failf("gpu", nodehealth.ActionWatch, "%d GPUs visible, only %d configured", n, want))
	} else {
		out = append(out, nodehealth.OKf("gpu", "%d GPUs visible", n))
	}
	for i := range n {
		if ctx.Err() != nil {
			out = append(out, nodehealth.Unknownf("gpu", "interrupted after %d GPUs: %v", i, ctx.Err()))
			break
		}
		smp := d.Source.Sample(i)
		d.noteReset(smp)
		out = append(out, d.evaluate(smp)...)
	}
	return out
}

// noteReset compares s with the previous round's view of the same GPU
// and calls OnReset when the GPU shows it was reset.
func (d *Devices) noteReset(s Sample) {
	lost := errors.Is(s.Err, ErrGPULost)
	if s.Err != nil && !lost {
		return // an NVML error says nothing about a reset: keep the last view
	}
	cur := gpuSeen{uuid: s.UUID, lost: lost, pending: !lost && s.pendingReset()}
	d.mu.Lock()
	if d.last == nil {
		d.last = map[int]gpuSeen{}
	}
	prev, ok := d.last[s.Index]
	d.last[s.Index] = cur
	d.mu.Unlock()
	if !ok || cur.lost || d.OnReset == nil {
		return
	}
	why := ""
	switch {
	case prev.lost:
		why = "GPU readable again (handle re-acquired)"
	case prev.uuid != "" && cur.uuid != "" && prev.uuid != cur.uuid:
		why = "another GPU (UUID " + cur.uuid + ") at this index"
	case prev.pending && !cur.pending:
		why = "reset-pending state cleared"
	default:
		return
	}
	uuid := cur.uuid
	if uuid == "" {
		uuid = prev.uuid
	}
	d.OnReset(s.Index, uuid, why)
}

func (d *Devices) evaluate(s Sample) []nodehealth.Finding {
	c := fmt.Sprintf("gpu%d", s.Index)
	if s.Err != nil {
		if errors.Is(s.Err, ErrGPULost) {
			return []nodehealth.Finding{nodehealth.Failf(c, nodehealth.ActionPowerCycle, "GPU lost (fallen off the bus): %v", s.Err)}
		}
		return []nodehealth.Finding{nodehealth.Unknownf(c, "read: %v", s.Err)}
	}
	var bad []nodehealth.Finding
	if s.UncorrectedECC != nil && *s.UncorrectedECC > 0 {
		bad = append(bad, nodehealth.Failf(c, nodehealth.ActionReset, "%d uncorrected ECC errors (volatile)", *s.UncorrectedECC))
	}
	if s.RemapFailure != nil && *s.RemapFailure {
		bad = append(bad, nodehealth.Failf(c, nodehealth.ActionReset, "row remapping failed"))
	}
	if s.RetiredPending != nil && *s.RetiredPending {
		bad = append(bad, nodehealth.Failf(c, nodehealth.ActionReset, "retired pages pending a GPU reset"))
	}
	if s.RemapPending != nil && *s.RemapPending {
		bad = append(bad, nodehealth.Failf(c, nodehealth.ActionReset, "row remap pending a GPU reset"))
	}
	limit := d.MaxTemperatureC
	if limit == 0 && s.SlowdownC != nil {
		limit = *s.SlowdownC
	}
	if s.TempC != nil && limit > 0 && *s.TempC >= limit {
		bad = append(bad, nodehealth.Failf(c, nodehealth.ActionDrain, "temperature %d C >= %d C", *s.TempC, limit))
	}
	if s.Throttle != nil {
		var why []string
		for _, r := range []struct {
			bit  uint64
			name string
		}{{ThrottleHWSlowdown, "HW slowdown"}, {ThrottleHWThermal, "HW thermal slowdown"}, {ThrottleHWPowerBrake, "HW power brake"}} {
			if *s.Throttle&r.bit != 0 {
				why = append(why, r.name)
			}
		}
		if len(why) > 0 {
			bad = append(bad, nodehealth.Failf(c, nodehealth.ActionDrain, "clocks throttled: %s", strings.Join(why, ", ")))
		}
	}
	if s.NVLinkUp != nil {
		d.mu.Lock()
		if d.baseline == nil {
			d.baseline = map[string][]bool{}
		}
		base, ok := d.baseline[s.UUID]
		if !ok {
			// Links that were never up (not cabled) are not failures.
			base = slices.Clone(s.NVLinkUp)
			d.baseline[s.UUID] = base
		}
		d.mu.Unlock()
		var down []string
		for l, up := range s.NVLinkUp {
			if !up && l < len(base) && base[l] {
				down = append(down, fmt.Sprint(l))
			}
		}
		if len(down) > 0 {
			bad = append(bad, nodehealth.Failf(c, nodehealth.ActionReset, "NVLink down: link %s", strings.Join(down, ",")))
		}
	}
	bad = append(bad, d.pcie(c, s)...)
	if len(bad) > 0 {
		return bad
	}
	return []nodehealth.Finding{nodehealth.OKf(c, "%s ok", s.Name)}
}

// pcie reports a degraded PCIe link: narrower than the maximum this GPU
// and system support (a bad riser or slot; never a power-saving state), or
// a lower generation while the GPU is busy (an idle GPU may drop to a
// lower generation to save power, so an idle or unknown state is no
// finding).
func (d *Devices) pcie(c string, s Sample) []nodehealth.Finding {
	a := d.PCIeAction
	if a == "" {
		a = nodehealth.ActionWatch
	}
	var why []string
	if s.PCIeWidth != nil && s.PCIeWidthMax != nil && *s.PCIeWidth > 0 && *s.PCIeWidth < *s.PCIeWidthMax {
		why = append(why, fmt.Sprintf("width x%d of x%d", *s.PCIeWidth, *s.PCIeWidthMax))
	}
	busy := s.Throttle != nil && *s.Throttle&ThrottleGPUIdle == 0
	if busy && s.PCIeGen != nil && s.PCIeGenMax != nil && *s.PCIeGen > 0 && *s.PCIeGen < *s.PCIeGenMax {
		why = append(why, fmt.Sprintf("gen %d of %d while busy", *s.PCIeGen, *s.PCIeGenMax))
	}
	if len(why) == 0 {
		return nil
	}
	return []nodehealth.Finding{nodehealth.Failf(c, a, "PCIe link degraded: %s", strings.Join(why, ", "))}
}

// stickyXid is a draining Xid finding kept until it is cleared.
type stickyXid struct {
	f     nodehealth.Finding
	index int    // -1 when unknown
	uuid  string // "" when unknown
}

// Xids is the event-driven Xid check ("xid"): Start watches NVML's event
// set; every Xid is mapped through the action table; a draining Xid stays
// failed until the GPU is reset (action reset, see Reset) or the daemon
// restarts (drain, reboot, power-cycle: the node is rebooted or replaced),
// an Xid that only warns is reported once. It drains after one occurrence.
type Xids struct {
	Source  Source
	Actions map[uint64]nodehealth.Action // DefaultXidActions() with overrides

	mu      sync.Mutex
	sticky  map[string]stickyXid // component+message -> finding
	once    []nodehealth.Finding
	status  error // why events are not watched, nil when they are
	started bool
	notify  chan struct{}
}

// NewXids returns the check with the default table overridden by
// overrides.
func NewXids(src Source, overrides map[uint64]nodehealth.Action) *Xids {
	t := DefaultXidActions()
	maps.Copy(t, overrides)
	return &Xids{Source: src, Actions: t, sticky: map[string]stickyXid{}, notify: make(chan struct{}, 1)}
}

// Name implements nodehealth.Check.
func (*Xids) Name() string { return "xid" }

// DrainAfter implements nodehealth.DrainAfterer: one fatal Xid is enough.
func (*Xids) DrainAfter() int { return 1 }

// Notify implements nodehealth.Notifier.
func (x *Xids) Notify() <-chan struct{} { return x.notify }

// Start begins watching events in a goroutine until ctx is done. Without
// NVML or event support it records why and Run reports it. Does not
// block; call once.
func (x *Xids) Start(ctx context.Context) {
	x.mu.Lock()
	x.started = true
	x.mu.Unlock()
	if err := x.Source.Init(); err != nil {
		x.setStatus(err)
		return
	}
	go func() {
		err := x.Source.WatchXid(ctx, x.record)
		if ctx.Err() == nil {
			x.setStatus(fmt.Errorf("event watch ended: %w", err))
		}
	}()
}

func (x *Xids) setStatus(err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.status = err
}

// record turns one event into a finding. Safe for concurrent use.
func (x *Xids) record(e XidEvent) {
	c := "gpu"
	if e.Index >= 0 {
		c = fmt.Sprintf("gpu%d", e.Index)
	}
	var f nodehealth.Finding
	if e.DoubleBitECC {
		f = nodehealth.Failf(c, nodehealth.ActionReset, "double-bit ECC error event")
	} else {
		a, ok := x.Actions[e.Xid]
		if !ok {
			a = nodehealth.ActionWatch // unknown Xid: report, do not drain
		}
		what := XidMeaning[e.Xid]
		if what == "" {
			what = "see NVIDIA's Xid catalog"
		}
		if a == nodehealth.ActionNone {
			f = nodehealth.OKf(c, "Xid %d (%s): ignored", e.Xid, what)
		} else {
			f = nodehealth.Failf(c, a, "Xid %d: %s", e.Xid, what)
		}
	}
	x.mu.Lock()
	if f.Drains() {
		x.sticky[c+"/"+f.Message] = stickyXid{f: f, index: e.Index, uuid: e.UUID}
	} else {
		x.once = append(x.once, f)
	}
	x.mu.Unlock()
	select {
	case x.notify <- struct{}{}:
	default:
	}
}

// Reset clears the sticky findings with action reset of the GPU at index
// (or with uuid, when the event knew it): the GPU was reset (see
// Devices.OnReset), so what only a reset repairs is repaired; each cleared
// finding is reported once as OK. Findings that call for a drain, reboot or
// power-cycle stay. Never blocks; safe for concurrent use; idempotent.
func (x *Xids) Reset(index int, uuid, why string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, st := range x.sticky {
		same := (st.uuid != "" && st.uuid == uuid) || (st.uuid == "" && st.index >= 0 && st.index == index)
		if !same || st.f.Action != nodehealth.ActionReset {
			continue
		}
		delete(x.sticky, k)
		x.once = append(x.once, nodehealth.OKf(st.f.Component, "cleared after a GPU reset (%s): %s", why, st.f.Message))
	}
}

// Run implements nodehealth.Check: the Xids seen so far. Never blocks.
func (x *Xids) Run(context.Context) []nodehealth.Finding {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []nodehealth.Finding
	for _, st := range x.sticky {
		out = append(out, st.f)
	}
	out = append(out, x.once...)
	x.once = nil
	switch {
	case !x.started:
		out = append(out, nodehealth.Unknownf("xid", "event watch not started"))
	case errors.Is(x.status, ErrNoLibrary):
		out = append(out, nodehealth.OKf("xid", "no NVML: no Xid events to watch"))
	case x.status != nil:
		out = append(out, nodehealth.Unknownf("xid", "Xid events not watched: %v", x.status))
	case len(out) == 0:
		out = append(out, nodehealth.OKf("xid", "no Xid events"))
	}
	slices.SortFunc(out, func(a, b nodehealth.Finding) int {
		return strings.Compare(a.Component+a.Message, b.Component+b.Message)
	})
	return out
}
