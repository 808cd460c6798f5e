package slurmfake

import "github.com/slurm-elastic/slurm-elastic/internal/slurm"

// Put adds n or replaces the node of that name with it, as slurmctld would
// after a state change the fake does not model (a job allocating the node,
// a node registering, a node removed from slurm.conf: see Delete). Not a
// call: no latency, no fault.
func (f *Fake) Put(n slurm.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := clone(&n)
	f.nodes[n.Name] = &c
}

// Delete forgets the named node. Not a call.
func (f *Fake) Delete(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nodes, name)
}
