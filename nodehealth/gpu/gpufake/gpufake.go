//go:build cgo

// Package gpufake is test support for the NVML checks: go-nvml's dgxa100
// mock (8 A100s) set up to answer every query the checks make with healthy
// values. It is an outside API's fake (NVML), shared by the tests of
// nodehealth/gpu and cmd/internal/healthcmd; no product code imports it.
package gpufake

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

// Healthy returns a dgxa100 mock whose 8 GPUs answer every polled query of
// the checks with healthy values. Only those funcs are set; events are the
// caller's (RegisterEvents, EventSetCreate).
func Healthy() *dgxa100.Server {
	s := dgxa100.New()
	for _, d := range s.Devices {
		dev := d.(*dgxa100.Device)
		dev.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 0, nvml.SUCCESS }
		dev.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_DISABLED, nvml.SUCCESS }
		dev.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.SUCCESS }
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 45, nvml.SUCCESS }
		dev.GetTemperatureThresholdFunc = func(nvml.TemperatureThresholds) (uint32, nvml.Return) { return 88, nvml.SUCCESS }
		dev.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, nvml.SUCCESS }
		dev.GetNvLinkStateFunc = func(l int) (nvml.EnableState, nvml.Return) {
			if l >= 12 { // A100: 12 links
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return nvml.FEATURE_ENABLED, nvml.SUCCESS
		}
		SetPCIe(dev, 4, 4, 16, 16)
	}
	return s
}

// SetPCIe makes dev report its PCIe link: current and maximum generation
// and width.
func SetPCIe(dev *dgxa100.Device, gen, genMax, width, widthMax int) {
	dev.GetCurrPcieLinkGenerationFunc = func() (int, nvml.Return) { return gen, nvml.SUCCESS }
	dev.GetMaxPcieLinkGenerationFunc = func() (int, nvml.Return) { return genMax, nvml.SUCCESS }
	dev.GetCurrPcieLinkWidthFunc = func() (int, nvml.Return) { return width, nvml.SUCCESS }
	dev.GetMaxPcieLinkWidthFunc = func() (int, nvml.Return) { return widthMax, nvml.SUCCESS }
}
