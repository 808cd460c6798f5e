// confirm: the third phase. Under the locks of the nodes acted on Slurm is
// re-read and only the decisions Decide still takes on the fresh view are
// kept.

package reconcile

import (
	"context"
	"fmt"
	"slices"
	"time"
)

func (r *Reconciler) decide(now time.Time, v *view) []Action {
	entries := v.entries
	var acts []Action
	for i := range entries {
		if a, ok := Decide(now, r.policy, entries[i]); ok {
			acts = append(acts, a)
		}
	}
	if len(r.warm) > 0 {
		busy := make(map[string]bool, len(acts))
		for _, a := range acts {
			busy[a.Node] = true
		}
		acts = append(acts, Warm(now, r.warm, entries, busy)...)
	}
	if groups := r.reimageGroups(); groups != nil && len(v.jobs) > 0 {
		busy := make(map[string]bool, len(acts))
		for _, a := range acts {
			busy[a.Node] = true
		}
		acts = append(acts, Reimage(now, ReimagePolicy{After: r.d.Config.Daemon.ReimageAfter, HoldPrefix: r.policy.HoldPrefix}, groups, entries, v.jobs, busy)...)
	}
	return acts
}

// confirm takes the locks of the acts' nodes (a node a power hook holds is
// put off to a later round), re-reads Slurm and the runtimes (a hook that
// held a node's lock has launched or failed it by now) and keeps the
// actions Decide still takes on the fresh view, with the timers, cooldowns
// and breakers of the round. v becomes the fresh view. When the config
// file changed since it was loaded (hooks may be launching nodes of groups
// or hosts this daemon does not know yet), every action is withdrawn: the
// next round reloads first. The caller calls unlock when done acting.
// Blocks on the locks and one read of each side.
func (r *Reconciler) confirm(ctx context.Context, v *view, acts []Action) ([]Action, func(), error) {
	unlock := func() {}
	if r.d.LockNodes != nil {
		u, missed, err := r.d.LockNodes(ctx, names(acts))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: take the node locks: %w", ErrSkipped, err)
		}
		unlock = u
		if len(missed) > 0 {
			acts = slices.DeleteFunc(acts, func(a Action) bool {
				err, busy := missed[a.Node]
				if busy {
					r.d.Log.Info("decision put off: a power hook works on the node (its lock is held)", "node", a.Node, "group", a.Group, "kind", string(a.Kind), "error", err)
				}
				return busy
			})
		}
	}
	if why := r.configChanged(); why != "" {
		for _, a := range acts {
			r.d.Log.Info("decision withdrawn: the config file changed since the daemon loaded it; reloading before the next round",
				"node", a.Node, "group", a.Group, "kind", a.Kind, "saw", a.Saw, "config", r.d.Config.File, "change", why)
		}
		return nil, unlock, nil
	}
	nodes, err := r.d.Slurm.Nodes(ctx)
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("%w: slurm: nodes: %w", ErrSkipped, err)
	}
	insts, partial, err := r.list(ctx)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	fresh := r.join(nodes, insts, partial)
	for i := range fresh.entries {
		e := &fresh.entries[i]
		if j, ok := v.index[e.Name]; ok {
			old := &v.entries[j]
			e.CoolingUntil, e.BreakerOpen = old.CoolingUntil, old.BreakerOpen
			// The timer only holds for the node's power-up as the round
			// saw it: no instance then, none now.
			if old.Inst == nil && e.Inst == nil {
				e.PoweringUpSince = old.PoweringUpSince
			}
		}
	}
	fresh.jobs = v.jobs // read once a round
	*v = *fresh
	still := map[string]Action{}
	for _, b := range r.decide(r.d.Now(), v) {
		still[b.Node] = b
	}
	kept := acts[:0]
	for _, a := range acts {
		if b, ok := still[a.Node]; ok && b.Kind == a.Kind {
			kept = append(kept, b)
			continue
		}
		r.d.Log.Info("decision withdrawn: Slurm or the runtime changed meanwhile", "node", a.Node, "group", a.Group, "kind", a.Kind, "saw", a.Saw)
	}
	return kept, unlock, nil
}
