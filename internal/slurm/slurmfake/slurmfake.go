// Package slurmfake is an in-memory fake of slurmctld's node API for unit
// tests and large simulations. It keeps real node state, applies updates the
// way slurmctld does for the states slurm-elastic uses, and can say no.
package slurmfake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
)

// Fake is a fake slurm.Client. The zero value is not usable; use New.
type Fake struct {
	mu      sync.Mutex
	nodes   map[string]*slurm.Node
	fault   func(op string, names []string, u slurm.NodeUpdate) error
	latency time.Duration
	calls   map[string]int
	pending []slurm.PendingJob  // SetPendingJobs
	active  map[string][]string // node -> SetActiveFeatures
}

var _ slurm.Client = (*Fake)(nil)

// New returns a fake controller knowing the given nodes, each CLOUD and
// IDLE+POWERED_DOWN, as slurmctld starts them.
func New(names ...string) *Fake {
	f := &Fake{nodes: make(map[string]*slurm.Node, len(names)), calls: map[string]int{}}
	for _, n := range names {
		f.nodes[n] = &slurm.Node{Name: n, State: slurm.StateIdle, Flags: []string{slurm.FlagCloud, slurm.FlagPoweredDown}, Addr: n, Hostname: n}
	}
	return f
}

// SetFault makes every call consult fn first; a non-nil error fails the
// call. op is "nodes", "update" or "ping"; u is the update ("update" only).
func (f *Fake) SetFault(fn func(op string, names []string, u slurm.NodeUpdate) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// SetLatency makes every call take d (honouring ctx).
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// Calls returns how many calls of op were made.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Node returns a copy of one node's state.
func (f *Fake) Node(name string) (slurm.Node, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[name]
	if !ok {
		return slurm.Node{}, false
	}
	return clone(n), true
}

func (f *Fake) enter(ctx context.Context, op string, names []string, u slurm.NodeUpdate) error {
	f.mu.Lock()
	f.calls[op]++
	lat, fault := f.latency, f.fault
	f.mu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if fault != nil {
		if err := fault(op, names, u); err != nil {
			return fmt.Errorf("fake slurmctld %s: %w", op, err)
		}
	}
	return nil
}

// Nodes implements slurm.Client.
func (f *Fake) Nodes(ctx context.Context, names ...string) ([]slurm.Node, error) {
	if err := f.enter(ctx, "nodes", names, slurm.NodeUpdate{}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(names) == 0 {
		out := make([]slurm.Node, 0, len(f.nodes))
		for _, n := range f.nodes {
			out = append(out, clone(n))
		}
		slices.SortFunc(out, func(a, b slurm.Node) int { return cmp.Compare(a.Name, b.Name) })
		return out, nil
	}
	out := make([]slurm.Node, 0, len(names))
	var errs []error
	for _, name := range names {
		n, ok := f.nodes[name]
		if !ok {
			errs = append(errs, fmt.Errorf("node %s: %w", name, slurm.ErrNodeNotFound))
			continue
		}
		out = append(out, clone(n))
	}
	return out, errors.Join(errs...)
}

// Update implements slurm.Client. Like slurmctld it rejects the whole call
// when a name is unknown, and DOWN or DRAIN without a reason.
func (f *Fake) Update(ctx context.Context, names []string, u slurm.NodeUpdate) error {
	if len(names) == 0 {
		return errors.New("update: no node names")
	}
	if (u.State == slurm.SetDown || u.State == slurm.SetDrain) && u.Reason == "" {
		return fmt.Errorf("update %v: state %s needs a reason", names, u.State)
	}
	if err := f.enter(ctx, "update", names, u); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, name := range names {
		if _, ok := f.nodes[name]; !ok {
			return fmt.Errorf("update node %s: %w", name, slurm.ErrNodeNotFound)
		}
	}
	for _, name := range names {
		n := f.nodes[name]
		if u.Addr != "" {
			n.Addr = u.Addr
		}
		if u.Hostname != "" {
			n.Hostname = u.Hostname
		}
		if u.Reason != "" {
			n.Reason = u.Reason
		}
		switch u.State {
		case slurm.SetNone:
		case slurm.SetDown:
			n.State = slurm.StateDown
		case slurm.SetDrain:
			n.Flags = add(n.Flags, slurm.FlagDrain)
		case slurm.SetResume, slurm.SetUndrain:
			n.Flags = remove(n.Flags, slurm.FlagDrain)
			if u.State == slurm.SetResume && n.State == slurm.StateDown {
				n.State = slurm.StateIdle
			}
			n.Reason = ""
		case slurm.SetIdle:
			n.State = slurm.StateIdle
		case slurm.SetPowerDown, slurm.SetPowerDownAsap, slurm.SetPowerDownForce:
			// Slurm 24.11 ends POWERING_UP, marks the node IDLE (even when it
			// was DOWN; the reason text stays) and, after SuspendTimeout,
			// POWERED_DOWN. The fake skips the wait.
			n.State = slurm.StateIdle
			n.Flags = add(remove(n.Flags, slurm.FlagPoweringUp), slurm.FlagPoweredDown)
		case slurm.SetPowerUp:
			n.Flags = add(remove(n.Flags, slurm.FlagPoweredDown), slurm.FlagPoweringUp)
		default:
			return fmt.Errorf("update %v: state %q not supported by the fake", names, u.State)
		}
	}
	return nil
}

// Ping implements slurm.Client.
func (f *Fake) Ping(ctx context.Context) error { return f.enter(ctx, "ping", nil, slurm.NodeUpdate{}) }

func clone(n *slurm.Node) slurm.Node {
	c := *n
	c.Flags = slices.Clone(n.Flags)
	c.Features = slices.Clone(n.Features)
	c.ActiveFeatures = slices.Clone(n.ActiveFeatures)
	c.Partitions = slices.Clone(n.Partitions)
	return c
}

func add(flags []string, f string) []string {
	if slices.Contains(flags, f) {
		return flags
	}
	return append(flags, f)
}

func remove(flags []string, f string) []string {
	return slices.DeleteFunc(flags, func(s string) bool { return s == f })
}

// Register does what slurmd's registration does to powered-up nodes: it
// ends POWERING_UP (and POWERED_DOWN), leaving the base state. Unknown
// names are ignored.
func (f *Fake) Register(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, name := range names {
		if n, ok := f.nodes[name]; ok {
			n.Flags = remove(remove(n.Flags, slurm.FlagPoweringUp), slurm.FlagPoweredDown)
		}
	}
}
