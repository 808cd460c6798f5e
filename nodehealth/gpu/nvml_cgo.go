//go:build cgo

package gpu

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVML is the Source backed by the NVIDIA driver's libnvml (loaded with
// dlopen on Init). Safe for concurrent use.
type NVML struct {
	Lib nvml.Interface

	mu     sync.Mutex
	inited bool
}

// NewNVML returns the NVML Source for this machine. Does not load NVML
// yet (Init does).
func NewNVML() Source { return &NVML{Lib: nvml.New()} }

// NewNVMLFrom wraps lib, e.g. a go-nvml mock (dgxa100) in tests.
func NewNVMLFrom(lib nvml.Interface) *NVML { return &NVML{Lib: lib} }

// conv maps an NVML return code to nil or an error wrapping this
// package's sentinels.
func conv(ret nvml.Return) error {
	switch ret {
	case nvml.SUCCESS:
		return nil
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return fmt.Errorf("%w (%v)", ErrNoLibrary, ret)
	case nvml.ERROR_GPU_IS_LOST:
		return fmt.Errorf("%w (%v)", ErrGPULost, ret)
	case nvml.ERROR_NOT_SUPPORTED:
		return fmt.Errorf("%w (%v)", ErrNotSupported, ret)
	}
	return ret
}

// Init implements Source. Idempotent; retried on each call until it
// succeeds (the driver may load after the daemon).
func (n *NVML) Init() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.inited {
		return nil
	}
	if err := conv(n.Lib.Init()); err != nil {
		return fmt.Errorf("nvml init: %w", err)
	}
	n.inited = true
	return nil
}

// Count implements Source.
func (n *NVML) Count() (int, error) {
	c, ret := n.Lib.DeviceGetCount()
	if err := conv(ret); err != nil {
		return 0, fmt.Errorf("nvml device count: %w", err)
	}
	return c, nil
}

// Sample implements Source. Queries the GPU does not support are left
// nil; GPU lost on any query ends the sample with Err.
func (n *NVML) Sample(i int) Sample {
	s := Sample{Index: i}
	dev, ret := n.Lib.DeviceGetHandleByIndex(i)
	if err := conv(ret); err != nil {
		s.Err = fmt.Errorf("handle: %w", err)
		return s
	}
	// read reports whether the value is usable; a lost GPU or an
	// unexpected error ends the sample.
	read := func(what string, ret nvml.Return) bool {
		err := conv(ret)
		switch {
		case err == nil:
			return true
		case errors.Is(err, ErrNotSupported), ret == nvml.ERROR_INVALID_ARGUMENT:
			return false
		}
		if s.Err == nil {
			s.Err = fmt.Errorf("%s: %w", what, err)
		}
		return false
	}
	var r nvml.Return
	if s.Name, r = dev.GetName(); !read("name", r) && s.Err != nil {
		return s
	}
	if s.UUID, r = dev.GetUUID(); !read("uuid", r) && s.Err != nil {
		return s
	}
	if v, r := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC); read("ecc", r) {
		s.UncorrectedECC = &v
	}
	if v, r := dev.GetRetiredPagesPendingStatus(); read("retired pages", r) {
		b := v == nvml.FEATURE_ENABLED
		s.RetiredPending = &b
	}
	if _, _, pending, failure, r := dev.GetRemappedRows(); read("remapped rows", r) {
		s.RemapPending, s.RemapFailure = &pending, &failure
	}
	if v, r := dev.GetTemperature(nvml.TEMPERATURE_GPU); read("temperature", r) {
		s.TempC = &v
	}
	if v, r := dev.GetTemperatureThreshold(nvml.TEMPERATURE_THRESHOLD_SLOWDOWN); read("slowdown threshold", r) {
		s.SlowdownC = &v
	}
	if v, r := dev.GetCurrentClocksEventReasons(); read("clocks event reasons", r) {
		s.Throttle = &v
	}
	if v, r := dev.GetCurrPcieLinkGeneration(); read("pcie generation", r) {
		s.PCIeGen = &v
	}
	if v, r := dev.GetMaxPcieLinkGeneration(); read("pcie max generation", r) {
		s.PCIeGenMax = &v
	}
	if v, r := dev.GetCurrPcieLinkWidth(); read("pcie width", r) {
		s.PCIeWidth = &v
	}
	if v, r := dev.GetMaxPcieLinkWidth(); read("pcie max width", r) {
		s.PCIeWidthMax = &v
	}
	for l := range nvml.NVLINK_MAX_LINKS {
		st, r := dev.GetNvLinkState(l)
		if !read("nvlink state", r) {
			break
		}
		s.NVLinkUp = append(s.NVLinkUp, st == nvml.FEATURE_ENABLED)
	}
	if s.Err != nil {
		// Partial data from a failing GPU must not look healthy.
		return Sample{Index: i, Name: s.Name, UUID: s.UUID, Err: s.Err}
	}
	return s
}

// waitMs bounds one EventSet.Wait, so WatchXid notices ctx within it.
const waitMs = 500

// WatchXid implements Source. Blocks until ctx is done.
func (n *NVML) WatchXid(ctx context.Context, fn func(XidEvent)) error {
	set, ret := n.Lib.EventSetCreate()
	if err := conv(ret); err != nil {
		return fmt.Errorf("nvml event set: %w", err)
	}
	defer set.Free()
	count, err := n.Count()
	if err != nil {
		return err
	}
	registered := 0
	for i := range count {
		dev, ret := n.Lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			continue // the polled check reports it
		}
		ret = dev.RegisterEvents(nvml.EventTypeXidCriticalError|nvml.EventTypeDoubleBitEccError, set)
		if ret == nvml.ERROR_NOT_SUPPORTED {
			ret = dev.RegisterEvents(nvml.EventTypeXidCriticalError, set)
		}
		if ret == nvml.SUCCESS {
			registered++
		}
	}
	if registered == 0 && count > 0 {
		return fmt.Errorf("nvml register events: %w", ErrNotSupported)
	}
	for ctx.Err() == nil {
		data, ret := set.Wait(waitMs)
		switch ret {
		case nvml.SUCCESS:
		case nvml.ERROR_TIMEOUT:
			continue
		default:
			if err := conv(ret); errors.Is(err, ErrGPULost) {
				fn(XidEvent{Index: -1, Xid: 79})
				continue
			}
			return fmt.Errorf("nvml event wait: %w", conv(ret))
		}
		e := XidEvent{Index: -1, Xid: data.EventData}
		if data.Device != nil {
			if idx, r := data.Device.GetIndex(); r == nvml.SUCCESS {
				e.Index = idx
			}
			if uuid, r := data.Device.GetUUID(); r == nvml.SUCCESS {
				e.UUID = uuid
			}
		}
		if data.EventType&nvml.EventTypeDoubleBitEccError != 0 {
			e.DoubleBitECC = true
		}
		fn(e)
	}
	return nil
}
