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

func (r *Reconciler) decide(now time.Time, entries []Entry) []Action {
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
	return acts
}

// confirm takes the locks of the acts' nodes (a node a power hook holds is
// put off to a later round), re-reads Slurm and keeps the actions Decide
// still takes on the fresh view (the instances are as listed). The caller
// calls unlock when done acting.
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
	nodes, err := r.d.Slurm.Nodes(ctx)
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("%w: slurm: nodes: %w", ErrSkipped, err)
	}
	for i := range v.entries {
		if v.entries[i].Group != "" {
			v.entries[i].Node = nil
		}
	}
	r.join(v, nodes)
	fresh := map[string]Action{}
	for _, b := range r.decide(r.d.Now(), v.entries) {
		fresh[b.Node] = b
	}
	kept := acts[:0]
	for _, a := range acts {
		if b, ok := fresh[a.Node]; ok && b.Kind == a.Kind {
			kept = append(kept, b)
			continue
		}
		r.d.Log.Info("decision withdrawn: Slurm changed meanwhile", "node", a.Node, "group", a.Group, "kind", a.Kind, "saw", a.Saw)
	}
	return kept, unlock, nil
}
