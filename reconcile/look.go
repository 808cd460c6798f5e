// look: one round's first phase. It lists Slurm's nodes and every runtime's
// instances, joins them by node name and tracks the timers and the
// breaker state the decisions need.

package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// look reads both views and joins them.
func (r *Reconciler) look(ctx context.Context) (*view, error) {
	nodes, err := r.d.Slurm.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: slurm: nodes: %w", ErrSkipped, err)
	}
	v := &view{entries: make([]Entry, len(r.names)), index: make(map[string]int, len(r.names)), rtOf: map[string]string{}}
	for i, n := range r.names {
		g, _ := r.inv.GroupOf(n)
		v.entries[i] = Entry{Name: n, Group: g.Name, Held: r.held[n]}
		v.index[n] = i
	}
	r.join(v, nodes)
	for _, name := range slices.Sorted(maps.Keys(r.d.Runtimes)) {
		insts, err := r.d.Runtimes[name].List(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: runtime %s: list: %w", ErrSkipped, name, err)
		}
		for i := range insts {
			in := &insts[i]
			idx, ok := v.index[in.Name]
			if !ok {
				idx = len(v.entries)
				v.entries = append(v.entries, Entry{Name: in.Name})
				v.index[in.Name] = idx
			}
			if v.entries[idx].Inst != nil {
				r.d.Log.Warn("two instances carry one node name; acting on the first", "node", in.Name,
					"first", v.entries[idx].Inst.ID, "second", in.ID)
				continue
			}
			v.entries[idx].Inst = in
			v.rtOf[in.Name] = name
		}
	}
	return v, nil
}

// join sets each group node's Slurm view.
func (r *Reconciler) join(v *view, nodes []slurm.Node) {
	for i := range nodes {
		if idx, ok := v.index[nodes[i].Name]; ok && v.entries[idx].Group != "" {
			v.entries[idx].Node = &nodes[i]
		}
	}
}

// trackPoweringUp keeps, per node, when it was first seen POWERING_UP.
func (r *Reconciler) trackPoweringUp(v *view, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool)
	for i := range v.entries {
		e := &v.entries[i]
		if e.Node == nil || !e.Node.Has(slurm.FlagPoweringUp) {
			continue
		}
		seen[e.Name] = true
		t, ok := r.since[e.Name]
		if !ok {
			t = now
			r.since[e.Name] = now
		}
		e.PoweringUpSince = t
	}
	for n := range r.since {
		if !seen[n] {
			delete(r.since, n)
		}
	}
}

// trackCooldowns starts a group's capacity cooldown when one of its nodes
// is out of service after a Capacity-class launch failure, ends the cooldowns that
// are over, and sets each entry's CoolingUntil.
func (r *Reconciler) trackCooldowns(v *view, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for g, until := range r.cooling {
		if !now.Before(until) {
			delete(r.cooling, g)
			r.d.Log.Info("capacity cooldown over: the group's nodes are re-enabled", "group", g)
		}
	}
	if r.policy.CapacityCooldown > 0 {
		for i := range v.entries {
			e := &v.entries[i]
			if e.Group == "" || e.Node == nil || reason.Parse(e.Node.Reason).Family != reason.CapacityFailure || !outOfService(e.Node) {
				continue
			}
			if _, ok := r.cooling[e.Group]; !ok {
				until := now.Add(r.policy.CapacityCooldown)
				r.cooling[e.Group] = until
				r.d.Log.Warn("capacity cooldown started: the group's idle nodes are drained so Slurm places jobs elsewhere",
					"group", e.Group, "node", e.Name, "saw", e.Node.Reason, "until", until.UTC().Format(time.RFC3339))
			}
		}
	}
	for i := range v.entries {
		v.entries[i].CoolingUntil = r.cooling[v.entries[i].Group]
	}
}

// trackBreakers reads the breaker state the hooks keep, re-arms the
// breakers whose breaker.reset is over, counts a success for each
// group with failures where a node launched after the last failure is up
// in Slurm (registered) with a running instance, and sets each entry's
// BreakerOpen. Changes are written under Deps.Lock (the hooks' lock),
// re-read first so no hook update is lost. An unreadable state is logged
// and treated as all closed.
func (r *Reconciler) trackBreakers(ctx context.Context, v *view, now time.Time) {
	if r.d.StateDir == "" {
		return
	}
	bc := r.d.Config.Breaker
	st, err := breaker.Load(r.d.StateDir)
	if errors.Is(err, breaker.ErrCorrupt) {
		// The next write under the lock moves it aside (LoadForUpdate).
		r.d.Log.Error("breaker state corrupt: circuit breakers read as closed", "error", err)
	} else if err != nil {
		r.d.Log.Error("breaker state unreadable: circuit breakers ignored this round", "error", err)
		return
	}
	succ := map[string]string{} // group -> node that came up
	for i := range v.entries {
		e := &v.entries[i]
		b := st.Get(e.Group)
		if e.Group == "" || b.Open || b.Failures == 0 || succ[e.Group] != "" || !cameUp(e, b.LastFailureAt) {
			continue
		}
		succ[e.Group] = e.Name
	}
	expire := false
	for _, g := range st.Groups {
		expire = expire || (g.Open && bc.Reset > 0 && !now.Before(g.OpenedAt.Add(bc.Reset)))
	}
	if len(succ) > 0 || expire {
		if err := r.updateBreakers(ctx, now, succ, &st); err != nil {
			r.d.Log.Warn("cannot update the breaker state this round", "error", err)
		}
	}
	r.mu.Lock()
	r.breaker = st
	r.mu.Unlock()
	for i := range v.entries {
		v.entries[i].BreakerOpen = st.IsOpen(v.entries[i].Group)
	}
}

// updateBreakers applies re-arms and successes to the breaker file under
// the state lock (Deps.Lock) and sets *st to what it wrote.
func (r *Reconciler) updateBreakers(ctx context.Context, now time.Time, succ map[string]string, st **breaker.State) error {
	bc := r.d.Config.Breaker
	if r.d.Lock != nil {
		unlock, err := r.d.Lock(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	fresh, err := breaker.LoadForUpdate(r.d.StateDir, r.d.Log)
	if err != nil {
		return err
	}
	for _, g := range fresh.Expire(now, bc.Reset, bc.Threshold) {
		r.d.Log.Warn("circuit breaker re-armed after breaker.reset (half-open: one more failure opens it again)",
			"group", g, "breaker_reset", bc.Reset.String())
		r.Events.Add(Event{Time: now, Group: g, Kind: KindBreakerEnd, Saw: "breaker open for " + bc.Reset.String(), Did: "re-armed (half-open)"})
	}
	for _, g := range slices.Sorted(maps.Keys(succ)) {
		if b := fresh.Get(g); fresh.Success(g) {
			r.d.Log.Info("circuit breaker count reset: a node of the group came up", "group", g, "node", succ[g], "failures_were", b.Failures)
		}
	}
	if err := breaker.Save(r.d.StateDir, fresh); err != nil {
		return err
	}
	*st = fresh
	return nil
}

// cameUp reports whether e's node is up in Slurm (registered) with a
// running instance created after since.
func cameUp(e *Entry, since time.Time) bool {
	n, in := e.Node, e.Inst
	return n != nil && in != nil && in.State == runtime.StateRunning && in.Created.After(since) &&
		(n.State == slurm.StateIdle || n.State == slurm.StateAllocated || n.State == slurm.StateMixed) &&
		!n.Has(slurm.FlagPoweringUp) && !n.Has(slurm.FlagPoweringDown) && !n.Has(slurm.FlagPoweredDown)
}
