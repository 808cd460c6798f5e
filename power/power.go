// Package power is what the power hooks (resume, resume-fail, suspend)
// share: their dependencies, resolving node names to groups and runtimes,
// the pacing of runtime calls, and failing nodes in Slurm with a logged
// outcome. It imports no command and no other hook.
package power

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Deps are what a hook run uses. Runtimes maps a group's runtime name to
// its implementation.
type Deps struct {
	Config   *conf.Config
	Runtimes map[string]runtime.Runtime
	Slurm    slurm.Client
	Log      *slog.Logger
	// Breaker, when set, is the breaker state (internal/breaker) the run
	// asks once before its launches (Admit) and records into once after
	// (Record), in memory. The caller holds power.lock and saves it
	// afterwards. nil = no breaker, no counts.
	Breaker *breaker.State
}

// BreakerPolicy is the config's breaker section as the breaker takes it.
func BreakerPolicy(c *conf.Config) breaker.Policy {
	return breaker.Policy{Threshold: c.Breaker.Threshold, Reset: c.Breaker.Reset}
}

// Target is one node with its group and runtime resolved.
type Target struct {
	Name    string
	Group   *conf.Group
	Runtime runtime.Runtime
}

// Resolve maps node names to their groups and runtimes. Nodes that belong
// to no group, or whose group's runtime is not configured, come back in
// unknown with the reason why. It does not block and is idempotent.
func Resolve(d Deps, names []string) (targets []Target, unknown map[string]string) {
	unknown = map[string]string{}
	inv := d.Config.Inventory()
	for _, n := range names {
		g, ok := inv.GroupOf(n)
		if !ok {
			unknown[n] = fmt.Sprintf("node %s is in no node group of %s", n, d.Config.File)
			continue
		}
		rt := d.Runtimes[g.Runtime]
		if rt == nil {
			unknown[n] = fmt.Sprintf("node %s: group %s: runtime %q is not available", n, g.Name, g.Runtime)
			continue
		}
		targets = append(targets, Target{Name: n, Group: g, Runtime: rt})
	}
	return targets, unknown
}

// PoolOptions are the pacing for runtime calls from a hook's config:
// transient failures are retried while the run's deadline allows.
func PoolOptions(h conf.HookConf) pool.Options {
	return pool.Options{
		Concurrency: h.Concurrency,
		Rate:        h.Rate,
		// Six tries over about four seconds: enough to ride out API
		// throttling (retries go through the same rate limiter, jittered
		// so throttled calls do not return together) while a host that is
		// really down still fails the node within seconds.
		Attempts:   6,
		Backoff:    250 * time.Millisecond,
		MaxBackoff: 2 * time.Second,
		Jitter:     true,
		Retry:      func(err error) bool { return runtime.ClassOf(err) == runtime.ClassTransient },
	}
}

// Fail fails nodes in Slurm the one way (slurm.Fail: DOWN with the code's
// reason, then POWER_DOWN_FORCE when the registry says the failure may
// pass) and logs the outcome of each node. Nodes not set DOWN fall back to
// Slurm's own ResumeTimeout handling. It blocks for at most
// slurm.FailTimeout and is idempotent.
func Fail(ctx context.Context, log *slog.Logger, c slurm.Client, nodes []string, code reason.Code, msg string) {
	why := reason.Format(code, msg)
	res := slurm.Fail(ctx, c, nodes, code, msg)
	var down, off []string
	for _, n := range slices.Sorted(maps.Keys(res)) {
		f := res[n]
		switch {
		case !f.Down:
			log.Error("could not set node DOWN; Slurm will fail it after ResumeTimeout", "node", n, "reason", why, "error", f.Err)
		case f.Err != nil:
			log.Error("node set DOWN but not powered down; it returns after ResumeTimeout", "node", n, "reason", why, "error", f.Err)
		case f.PoweredDown:
			off = append(off, n)
		default:
			down = append(down, n)
		}
	}
	if len(down) > 0 {
		log.Info("node set DOWN until an admin resumes it", "nodes", hostlist.Compress(down), "reason", why)
	}
	if len(off) > 0 {
		log.Info("node set DOWN and powered down: it returns to the pool after SuspendTimeout", "nodes", hostlist.Compress(off), "reason", why)
	}
}
