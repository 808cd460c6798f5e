package podman

import (
	"fmt"
	"strings"
)

// usage is what one node container reserves on its host.
type usage struct {
	cpus  float64
	memMB int64
}

// room is one host's capacity (0 = unlimited) and current load.
type room struct {
	name     string
	maxNodes int
	cpus     float64
	memMB    int64

	nodes   int
	usedCPU float64
	usedMem int64
}

const cpuEpsilon = 1e-9

// fits reports whether n fits on r, and the fraction of r's tightest
// limited dimension that stays free after placing it (1 if unlimited).
func (r room) fits(n usage) (float64, bool) {
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
	return free, true
}

// pick returns the index of the host with the most free room after placing
// n (ties: fewer nodes, then config order), or -1 if none fits.
func pick(rooms []room, n usage) int {
	best, bestFree := -1, -1.0
	for i, r := range rooms {
		free, ok := r.fits(n)
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

// describe says why hosts are full, for the capacity error.
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
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "; ")
}
