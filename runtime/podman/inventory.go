package podman

import (
	"context"
	"fmt"
	"time"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// nodeLock serialises launches and terminations of one node in this process.
type nodeLock struct {
	ch   chan struct{}
	refs int
}

// lockNode waits (honouring ctx) until no other call works on node and
// returns the unlock function.
func (p *Podman) lockNode(ctx context.Context, node string) (func(), error) {
	p.mu.Lock()
	l := p.locks[node]
	if l == nil {
		l = &nodeLock{ch: make(chan struct{}, 1)}
		p.locks[node] = l
	}
	l.refs++
	p.mu.Unlock()
	drop := func() {
		p.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(p.locks, node)
		}
		p.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; drop() }, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
}

// ensureLoaded lists every host whose inventory is older than since (never
// listed when since is zero), so placement sees what runs there. It returns
// one error per host (nil: loaded); a host that does not answer is cooled
// down (coolDown).
func (p *Podman) ensureLoaded(ctx context.Context, since time.Time) []error {
	errs := make([]error, len(p.hosts))
	forEach(len(p.hosts), func(i int) {
		h := p.hosts[i]
		h.loadMu.Lock()
		defer h.loadMu.Unlock()
		p.mu.Lock()
		at := p.loadedAt[i]
		p.mu.Unlock()
		if !at.IsZero() && !at.Before(since) {
			return
		}
		t := time.Now()
		cs, err := p.listHost(ctx, h, "")
		if err != nil {
			errs[i] = err
			if ctx.Err() == nil && isConnLevel(err) {
				p.coolDown(i, err)
			}
			return
		}
		p.setInventoryAt(i, cs, t)
	})
	return errs
}

// setInventory replaces host i's inventory with what a list call returned,
// keeping reservations of launches still in flight.
func (p *Podman) setInventory(i int, cs []ctr) { p.setInventoryAt(i, cs, time.Now()) }

// setInventoryAt is setInventory for a list call that started at at: the
// changes this process made since then win over the list.
func (p *Podman) setInventoryAt(i int, cs []ctr, at time.Time) {
	inv := make(map[string]usage, len(cs))
	for _, c := range cs {
		if counts(c.state) {
			inv[c.node] = c.u
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for node, c := range p.changes {
		if c.at.Before(at) {
			continue
		}
		if c.present && c.host == i {
			inv[node] = c.u
		} else {
			delete(inv, node)
		}
	}
	for node, r := range p.inflight {
		if r.host == i {
			inv[node] = r.u
		} else {
			delete(inv, node) // listed before its old container was removed
		}
	}
	p.inv[i] = inv
	if at.After(p.loadedAt[i]) {
		p.loadedAt[i] = at
	}
	// Changes older than every host's last list are in every inventory.
	oldest := p.loadedAt[0]
	for _, t := range p.loadedAt {
		if t.Before(oldest) {
			oldest = t
		}
	}
	for node, c := range p.changes {
		if c.at.Before(oldest) {
			delete(p.changes, node)
		}
	}
}

// change records what this process did to node's container, so that a list
// call that was in flight meanwhile does not undo it. Caller holds p.mu.
func (p *Podman) change(node string, host int, u usage, present bool) {
	p.changes[node] = nodeChange{host: host, u: u, present: present, at: time.Now()}
}

// rooms returns every host's capacity, load and availability at now.
// Caller holds p.mu.
func (p *Podman) rooms(now time.Time) []room {
	rs := make([]room, len(p.hosts))
	for i, h := range p.hosts {
		r := room{name: h.Name, maxNodes: h.MaxNodes, cpus: h.CPUs, memMB: h.MemoryMB, gpus: h.GPUs, usedGPU: map[string]bool{}}
		for _, u := range p.inv[i] {
			r.nodes++
			r.usedCPU += u.cpus
			r.usedMem += u.memMB
			for _, g := range u.gpus {
				r.usedGPU[g] = true
			}
		}
		if c := p.cool[i]; now.Before(c.until) {
			r.out, r.why = true, fmt.Sprintf("cooling down until %s after: %s", c.until.Format(time.TimeOnly), c.why)
		}
		rs[i] = r
	}
	return rs
}

// coolDown takes host i out of placement for the host cooldown after the
// host-scoped failure err. Does not block.
func (p *Podman) coolDown(i int, err error) {
	if p.hostCooldown <= 0 {
		return
	}
	until := time.Now().Add(p.hostCooldown)
	p.mu.Lock()
	p.cool[i] = cooling{until: until, why: err.Error()}
	p.mu.Unlock()
	p.log.Warn("podman host taken out of placement for the host cooldown", "host", p.hosts[i].Name,
		"until", until.Format(time.RFC3339), "error", err)
}

// reserve picks the host for node n, and the node's GPUs there, and
// reserves them until commit or release. Hosts in skip (failed this
// launch), cooling down or not answering are not used. When no host has
// room it lists the hosts again once (if the inventory predates this
// launch) before it gives up with ClassCapacity.
func (p *Podman) reserve(ctx context.Context, n runtime.NodeSpec, start time.Time, skip map[int]error) (int, []string, error) {
	down := p.ensureLoaded(ctx, time.Time{})
	want, gpus := need(n), n.Template.GPUs
	for attempt := 0; ; attempt++ {
		p.mu.Lock()
		for i := range p.inv {
			delete(p.inv[i], n.Name)
		}
		rs := p.rooms(time.Now())
		for i := range rs {
			switch {
			case skip[i] != nil:
				rs[i].out, rs[i].why = true, "failed for this node: "+skip[i].Error()
			case down[i] != nil:
				rs[i].out, rs[i].why = true, "not listed: "+down[i].Error()
			}
		}
		best := pick(rs, want, gpus)
		if best >= 0 {
			u := want
			u.gpus = rs[best].freeGPUs()[:gpus]
			p.inv[best][n.Name] = u
			p.inflight[n.Name] = reservation{host: best, u: u}
			p.mu.Unlock()
			p.log.Debug("placed node", "node", n.Name, "host", rs[best].name, "gpus", u.gpus, "load", describe(rs))
			return best, u.gpus, nil
		}
		stale := false
		for _, at := range p.loadedAt {
			stale = stale || at.Before(start)
		}
		p.mu.Unlock()
		if attempt > 0 || !stale {
			return -1, nil, runtime.Errorf(runtime.ClassCapacity, "node %s: no podman host has room for cpus %g, memory %d MB, gpus %d (%s)",
				n.Name, want.cpus, want.memMB, gpus, describe(rs))
		}
		down = p.ensureLoaded(ctx, start)
	}
}

// commit turns node's reservation into a placed container.
func (p *Podman) commit(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.inflight[node]; ok {
		delete(p.inflight, node)
		p.change(node, r.host, r.u, true)
	}
}

// release drops node's reservation after a failed launch.
func (p *Podman) release(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.inflight[node]; ok {
		delete(p.inv[r.host], node)
		delete(p.inflight, node)
		p.change(node, r.host, r.u, false)
	}
}

// observe records that node runs on host i.
func (p *Podman) observe(i int, node string, u usage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inv[i][node] = u
	p.change(node, i, u, true)
}

// unobserve records that node no longer has a container on host i.
func (p *Podman) unobserve(i int, node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inv[i], node)
	p.change(node, i, usage{}, false)
}

// forget records that node has no container anywhere.
func (p *Podman) forget(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.inv {
		delete(p.inv[i], node)
	}
	p.change(node, -1, usage{}, false)
}
