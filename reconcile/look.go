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

// look reads both views and joins them: Slurm's nodes first, then every
// runtime's instances (so an instance launched in between is young and
// never taken for an orphan).
func (r *Reconciler) look(ctx context.Context) (*view, error) {
	nodes, err := r.d.Slurm.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: slurm: nodes: %w", ErrSkipped, err)
	}
	insts, partial, err := r.list(ctx)
	if err != nil {
		return nil, err
	}
	v := r.join(nodes, insts, partial)
	v.jobs = r.pendingJobs(ctx)
	return v, nil
}

// listed is one instance and the name of the runtime that listed it.
type listed struct {
	rt   string
	inst runtime.Instance
}

// list returns every runtime's instances, runtimes in name order, and the
// runtimes whose listing was partial (some hosts did not answer).
func (r *Reconciler) list(ctx context.Context) ([]listed, map[string]bool, error) {
	var out []listed
	partial := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(r.d.Runtimes)) {
		insts, err := r.d.Runtimes[name].List(ctx)
		var pe *runtime.PartialError
		switch {
		case errors.As(err, &pe):
			// Act on what is known; a node with no listed instance may
			// have one on a host that did not answer (Entry.Unlisted).
			r.d.Log.Warn("runtime hosts not listed: acting on the others' instances; nodes without a listed instance are left alone this round",
				"runtime", name, "hosts", pe.Hosts, "error", err)
			partial[name] = true
		case err != nil:
			return nil, nil, fmt.Errorf("%w: runtime %s: list: %w", ErrSkipped, name, err)
		}
		for _, in := range insts {
			out = append(out, listed{rt: name, inst: in})
		}
	}
	return out, partial, nil
}

// join builds the view: an entry per group node (config order), then one
// per instance whose node is in no group; each with the instance of its
// name, Slurm's node of its name (whether in a group or not) and, for an
// instance the config does not know, why (Entry.Unknown). A group node
// without an instance whose runtime's listing was partial is
// Entry.Unlisted.
func (r *Reconciler) join(nodes []slurm.Node, insts []listed, partial map[string]bool) *view {
	v := &view{entries: make([]Entry, len(r.names), len(r.names)+1), index: make(map[string]int, len(r.names)), rtOf: map[string]string{}}
	for i, n := range r.names {
		g, _ := r.inv.GroupOf(n)
		v.entries[i] = Entry{Name: n, Group: g.Name, Held: r.held[n]}
		v.index[n] = i
	}
	for i := range insts {
		in := &insts[i].inst
		idx, ok := v.index[in.Name]
		if !ok {
			idx = len(v.entries)
			v.entries = append(v.entries, Entry{Name: in.Name})
			v.index[in.Name] = idx
		}
		e := &v.entries[idx]
		if e.Inst != nil {
			r.d.Log.Warn("two instances carry one node name; acting on the first", "node", in.Name,
				"first", e.Inst.ID, "second", in.ID)
			continue
		}
		e.Inst = in
		e.Unknown = r.unknown(e, insts[i].rt)
		v.rtOf[in.Name] = insts[i].rt
	}
	for i := range nodes {
		if idx, ok := v.index[nodes[i].Name]; ok {
			v.entries[idx].Node = &nodes[i]
		}
	}
	for i := range v.entries {
		if g, ok := r.inv.GroupOf(v.entries[i].Name); ok && v.entries[i].Inst == nil && partial[g.Runtime] {
			v.entries[i].Unlisted = true
		}
	}
	return v
}

// unknown says why e's instance (listed by runtime rt) is not of this
// daemon's config, or "" when it is: its node is in no group, its group
// label names another group or one not configured, or its host is not
// among the runtime's configured hosts.
func (r *Reconciler) unknown(e *Entry, rt string) string {
	in := e.Inst
	_, known := r.inv.Group(in.Group)
	switch {
	case in.Group != "" && !known:
		return fmt.Sprintf("group %q is not in the daemon's config", in.Group)
	case e.Group == "":
		return "node is in no group of the daemon's config"
	case in.Group != "" && in.Group != e.Group:
		return fmt.Sprintf("instance of group %q, the daemon's config puts the node in group %q", in.Group, e.Group)
	case in.Host != "" && r.hosts[rt] != nil && !r.hosts[rt][in.Host]:
		return fmt.Sprintf("host %q is not in the daemon's config", in.Host)
	}
	return ""
}

// trackPoweringUp keeps one timer per power-up: from when the node was
// first seen POWERING_UP, restarted when an instance created later is
// seen (a launch of this power-up, or of a newer one than the timer's),
// and dropped once the node is no longer powering up.
func (r *Reconciler) trackPoweringUp(v *view, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool)
	for i := range v.entries {
		e := &v.entries[i]
		if e.Group == "" || e.Node == nil || !e.Node.Has(slurm.FlagPoweringUp) {
			continue
		}
		seen[e.Name] = true
		t, ok := r.powerUps[e.Name]
		if !ok {
			t = powerUp{Since: now}
		}
		if e.Inst != nil && e.Inst.Created.After(t.Since) {
			t.Since = e.Inst.Created
		}
		t.Seen = now
		r.powerUps[e.Name] = t
		e.PoweringUpSince = t.Since
	}
	for n := range r.powerUps {
		if !seen[n] {
			delete(r.powerUps, n)
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

// updateBreakers applies re-arms and successes to the breaker file in one
// read-modify-write under the state lock (breaker.Store.Update with
// Deps.Lock, as the hooks and `breaker reset` do) and sets *st to what it
// wrote.
func (r *Reconciler) updateBreakers(ctx context.Context, now time.Time, succ map[string]string, st **breaker.State) error {
	bc := r.d.Config.Breaker
	store := breaker.Store{Dir: r.d.StateDir, Lock: r.d.Lock, Log: r.d.Log}
	fresh, err := store.Update(ctx, func(fresh *breaker.State) {
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
	})
	if err != nil {
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
