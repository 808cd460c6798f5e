// Package suspend powers Slurm cloud nodes down (SuspendProgram).
package suspend

import (
	"context"
	"errors"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/power"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Suspend removes every node's instance and resets its NodeAddr and
// NodeHostName to the node name, so the next resume starts from a clean
// slate (Slurm 23.11+ resets them itself; older releases do not).
//
// Nodes that belong to no group are logged and left alone: there is nothing
// of ours to remove. Suspend blocks until every node is handled or ctx
// ends. It is idempotent: an absent instance counts as removed. The error
// joins one error per node that could not be removed; such an instance is
// left for the reconciler to find as an orphan.
func Suspend(ctx context.Context, d power.Deps, names []string) error {
	start := time.Now()
	targets, unknown := power.Resolve(d, names)
	var errs []error
	for n, why := range unknown {
		d.Log.Error("cannot suspend a node slurm-elastic does not manage; leaving it alone", "node", n, "error", why)
		errs = append(errs, errors.New(why))
	}
	results := pool.Run(ctx, len(targets), power.PoolOptions(d.Config.Suspend), func(ctx context.Context, i int) error {
		t := targets[i]
		if r := t.Runtime.Terminate(ctx, []string{t.Name})[0]; r.Err != nil {
			return r.Err
		}
		d.Log.Info("node instance removed", "node", t.Name, "group", t.Group.Name)
		power.Gone(d, t.Name)
		err := slurm.UpdateEach(ctx, d.Slurm, []string{t.Name}, slurm.NodeUpdate{Addr: t.Name, Hostname: t.Name})[t.Name]
		if err != nil {
			// The instance is gone, which is what matters; Slurm keeps a stale
			// address until the next resume sets a new one.
			d.Log.Warn("could not reset NodeAddr/NodeHostName", "node", t.Name, "error", err)
		}
		return nil
	})
	removed := 0
	for i, err := range results {
		if err == nil {
			removed++
			continue
		}
		t := targets[i]
		d.Log.Error("could not remove node instance; the reconciler will remove it as an orphan", "node", t.Name, "group", t.Group.Name, "class", string(runtime.ClassOf(err)), "error", err)
		errs = append(errs, err) // runtime errors name the node
	}
	d.Log.Info("suspend done", "nodes", len(names), "removed", removed, "failed", len(names)-removed, "duration", time.Since(start).String())
	return errors.Join(errs...)
}
