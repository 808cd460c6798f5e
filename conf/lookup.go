package conf

import (
	"slices"
	"sync"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
)

// nodeIndex is the expanded node list of every group and a node -> group
// map. It remembers the Nodes expressions it was built from, so a lookup
// after Groups changed rebuilds it instead of answering stale.
type nodeIndex struct {
	exprs   []string   // Groups[i].Nodes at build time
	nodes   [][]string // expanded Groups[i].Nodes; nil when it does not expand
	errs    []error    // expansion error of Groups[i].Nodes
	byNode  map[string]int
	byGroup map[string]int // group name -> first index
}

// indexMu guards Config.index of every Config: lookups are rare enough per
// process (one hook, one config) that one mutex costs nothing measurable.
var indexMu sync.Mutex

func buildIndex(groups []Group) *nodeIndex {
	ix := &nodeIndex{
		exprs:   make([]string, len(groups)),
		nodes:   make([][]string, len(groups)),
		errs:    make([]error, len(groups)),
		byNode:  make(map[string]int),
		byGroup: make(map[string]int, len(groups)),
	}
	for i := range groups {
		g := &groups[i]
		ix.exprs[i] = g.Nodes
		if _, dup := ix.byGroup[g.Name]; !dup {
			ix.byGroup[g.Name] = i
		}
		names, err := hostlist.Expand(g.Nodes)
		if err != nil {
			ix.errs[i] = err
			continue
		}
		ix.nodes[i] = names
		for _, n := range names {
			if _, dup := ix.byNode[n]; !dup {
				ix.byNode[n] = i // first group wins; Validate reports overlaps
			}
		}
	}
	return ix
}

func (ix *nodeIndex) current(groups []Group) bool {
	if ix == nil || len(ix.exprs) != len(groups) {
		return false
	}
	for i := range groups {
		if ix.exprs[i] != groups[i].Nodes {
			return false
		}
	}
	return true
}

// nodeIndex returns the current index, building it when absent or stale.
func (c *Config) nodeIndex() *nodeIndex {
	indexMu.Lock()
	defer indexMu.Unlock()
	if !c.index.current(c.Groups) {
		c.index = buildIndex(c.Groups)
	}
	return c.index
}

// GroupOf returns the group whose nodes expression contains node. The
// first call builds an index of all nodes (Validate builds it too); later
// calls are a map lookup, also for 10,000 nodes. On an invalid config a
// node listed in two groups maps to the first. Safe for concurrent use;
// never blocks on I/O; idempotent. Do not change c.Groups while other
// goroutines call it.
func (c *Config) GroupOf(node string) (*Group, bool) {
	ix := c.nodeIndex()
	i, ok := ix.byNode[node]
	if !ok {
		return nil, false
	}
	return &c.Groups[i], true
}

// Group returns the group named name. Safe for concurrent use; idempotent.
func (c *Config) Group(name string) (*Group, bool) {
	ix := c.nodeIndex()
	i, ok := ix.byGroup[name]
	if !ok {
		return nil, false
	}
	return &c.Groups[i], true
}

// GroupNodes returns the node names of g in hostlist order, a fresh slice
// the caller may keep. g is normally a pointer from GroupOf, Group or
// &c.Groups[i]; any other Group is expanded on the spot. It returns nil
// when g.Nodes is not a valid hostlist (Validate reports that). Safe for
// concurrent use; idempotent.
func (c *Config) GroupNodes(g *Group) []string {
	ix := c.nodeIndex()
	for i := range c.Groups {
		if &c.Groups[i] == g {
			return slices.Clone(ix.nodes[i])
		}
	}
	names, err := hostlist.Expand(g.Nodes)
	if err != nil {
		return nil
	}
	return names
}
