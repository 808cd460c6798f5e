package podman

import (
	"fmt"
	"strings"
	"time"
)

// usage is what one node container reserves on its host.
type usage struct {
	cpus  float64
	memMB int64
	gpus  []string // the CDI devices it was given
}

// room is one host's capacity (0 = unlimited), current load and
// availability.
type room struct {
	name     string
	maxNodes int
	cpus     float64
	memMB    int64
	gpus     []string // the host's GPU devices (CDI names), in config order

	nodes   int
	usedCPU float64
	usedMem int64
	usedGPU map[string]bool

	// out: placement skips the host (cooling down after a failure, or
	// not answering); why says so.
	out bool
	why string
}

const cpuEpsilon = 1e-9

// freeGPUs returns the host's GPUs no container holds, in config order.
func (r room) freeGPUs() []string {
	var free []string
	for _, g := range r.gpus {
		if !r.usedGPU[g] {
			free = append(free, g)
		}
	}
	return free
}

// fits reports whether n (needing gpus distinct GPUs) fits on r, and the
// fraction of r's tightest limited dimension that stays free after placing
// it (1 if unlimited).
func (r room) fits(n usage, gpus int) (float64, bool) {
	if r.out {
		return 0, false
	}
	free := 1.0
	if r.maxNodes > 0 {
		left := r.maxNodes - r.nodes - 1
		if left < 0 {
			return 0, false
		}
		free = min(free, float64(left)/float64(r.maxNodes))
	}
	if r.cpus > 0 {
		left := r.cpus - r.usedCPU - n.cpus
		if left < -cpuEpsilon {
			return 0, false
		}
		free = min(free, max(left, 0)/r.cpus)
	}
	if r.memMB > 0 {
		left := r.memMB - r.usedMem - n.memMB
		if left < 0 {
			return 0, false
		}
		free = min(free, float64(left)/float64(r.memMB))
	}
	if gpus > 0 {
		left := len(r.freeGPUs()) - gpus
		if left < 0 {
			return 0, false
		}
		free = min(free, float64(left)/float64(len(r.gpus)))
	}
	return free, true
}

// pick returns the index of the host with the most free room after placing
// n with gpus GPUs (ties: fewer nodes, then config order), or -1 if none
// fits.
func pick(rooms []room, n usage, gpus int) int {
	best, bestFree := -1, -1.0
	for i, r := range rooms {
		free, ok := r.fits(n, gpus)
		if !ok {
			continue
		}
		if best < 0 || free > bestFree+cpuEpsilon ||
			(free > bestFree-cpuEpsilon && r.nodes < rooms[best].nodes) {
			best, bestFree = i, free
		}
	}
	return best
}

// describe says why hosts are full or out, for the capacity error.
func describe(rooms []room) string {
	parts := make([]string, 0, len(rooms))
	for _, r := range rooms {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %d", r.name, r.nodes)
		if r.maxNodes > 0 {
			fmt.Fprintf(&b, "/%d", r.maxNodes)
		}
		b.WriteString(" nodes")
		if r.cpus > 0 {
			fmt.Fprintf(&b, ", cpus %g/%g", r.usedCPU, r.cpus)
		}
		if r.memMB > 0 {
			fmt.Fprintf(&b, ", memory %d/%d MB", r.usedMem, r.memMB)
		}
		if len(r.gpus) > 0 {
			fmt.Fprintf(&b, ", gpus %d/%d", len(r.gpus)-len(r.freeGPUs()), len(r.gpus))
		}
		if r.out {
			b.WriteString(", not used: " + r.why)
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "; ")
}

// cooling is a host taken out of placement after a host-scoped failure.
type cooling struct {
	until time.Time
	why   string
}
