package conf

import (
	"slices"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
)

// Inventory is every group's expanded node list and the node -> group and
// name -> group maps: built once (by Validate, or NewInventory) and never
// changed after, so it is safe for concurrent use without a lock. The
// hooks resolve nodes with it and the reconciler walks its nodes.
type Inventory struct {
	groups  []Group    // the config's Groups (same backing array)
	exprs   []string   // Groups[i].Nodes when built
	nodes   [][]string // expanded Groups[i].Nodes; nil when it does not expand
	errs    []error    // expansion error of Groups[i].Nodes
	byNode  map[string]int
	byGroup map[string]int // group name -> first index
	order   []string       // every group node once, config order
}

// NewInventory expands every group's nodes expression. On an invalid
// config (Validate reports it) a node listed in two groups maps to the
// first and a group whose expression does not expand has no nodes. It
// does not block on I/O.
func NewInventory(groups []Group) *Inventory {
	inv := &Inventory{
		groups:  groups,
		exprs:   make([]string, len(groups)),
		nodes:   make([][]string, len(groups)),
		errs:    make([]error, len(groups)),
		byNode:  make(map[string]int),
		byGroup: make(map[string]int, len(groups)),
	}
	for i := range groups {
		g := &groups[i]
		inv.exprs[i] = g.Nodes
		if _, dup := inv.byGroup[g.Name]; !dup {
			inv.byGroup[g.Name] = i
		}
		names, err := hostlist.Expand(g.Nodes)
		if err != nil {
			inv.errs[i] = err
			continue
		}
		inv.nodes[i] = names
		for _, n := range names {
			if _, dup := inv.byNode[n]; !dup {
				inv.byNode[n] = i // first group wins; Validate reports overlaps
				inv.order = append(inv.order, n)
			}
		}
	}
	return inv
}

// current reports whether inv was built from groups as they are now.
func (inv *Inventory) current(groups []Group) bool {
	if inv == nil || len(inv.exprs) != len(groups) || (len(groups) > 0 && &inv.groups[0] != &groups[0]) {
		return false
	}
	for i := range groups {
		if inv.exprs[i] != groups[i].Nodes {
			return false
		}
	}
	return true
}

// Inventory returns the inventory Validate built or, when c was never
// validated or its groups changed since, a new one (not stored: c is
// never changed by a lookup). Build it once per run and keep it.
func (c *Config) Inventory() *Inventory {
	if c.inventory.current(c.Groups) {
		return c.inventory
	}
	return NewInventory(c.Groups)
}

// GroupOf returns the group whose nodes expression contains node, a
// pointer into the config's Groups. A map lookup, also for 10,000 nodes.
func (inv *Inventory) GroupOf(node string) (*Group, bool) {
	i, ok := inv.byNode[node]
	if !ok {
		return nil, false
	}
	return &inv.groups[i], true
}

// Group returns the group named name.
func (inv *Inventory) Group(name string) (*Group, bool) {
	i, ok := inv.byGroup[name]
	if !ok {
		return nil, false
	}
	return &inv.groups[i], true
}

// GroupNodes returns the node names of g in hostlist order, a fresh slice
// the caller may keep. g is a pointer from GroupOf, Group or the config's
// &Groups[i]; any other Group is expanded on the spot. It returns nil when
// g.Nodes is not a valid hostlist (Validate reports that).
func (inv *Inventory) GroupNodes(g *Group) []string {
	for i := range inv.groups {
		if &inv.groups[i] == g {
			return slices.Clone(inv.nodes[i])
		}
	}
	names, err := hostlist.Expand(g.Nodes)
	if err != nil {
		return nil
	}
	return names
}

// Nodes returns every group node once, in config order (a node listed in
// two groups under the first), a fresh slice.
func (inv *Inventory) Nodes() []string { return slices.Clone(inv.order) }
