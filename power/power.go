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
	// (Record), each a short read-modify-write under the state lock.
	// nil = no breaker, no counts.
	Breaker *breaker.Store
	// Budget is how the run spends its time; the zero Budget sets no bound
	// but ctx's (and FailTimeout for marks).
	Budget Budget
}

// Budget is how a hook run spends its time (resume.timeout, which is less
// than Slurm's ResumeTimeout, after which slurmscriptd kills the hook):
// node locks are waited for until LockBy, work (launches, addresses,
// removals, the breaker gate) ends at Work, and what must follow the work
// (the breaker record, removing what interrupted launches left, marking
// every failed node in Slurm in one batch) ends at End. Nothing of the
// run outlives End.
type Budget struct {
	LockBy, Work, End time.Time
}

// NewBudget splits timeout, counted from start: a quarter of it at most
// for the node locks, and the last quarter, up to slurm.FailTimeout,
// reserved for what follows the work. Pure.
func NewBudget(start time.Time, timeout time.Duration) Budget {
	reserve := min(slurm.FailTimeout, timeout/4)
	return Budget{LockBy: start.Add(timeout / 4), Work: start.Add(timeout - reserve), End: start.Add(timeout)}
}

// WorkContext is ctx ending at b.Work (ctx itself for the zero Budget).
func (b Budget) WorkContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.Work.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, b.Work)
}

// FinishContext is for what follows the work: detached from ctx's
// cancellation (SIGTERM, the work's deadline), ending at b.End
// (slurm.FailTimeout from now for the zero Budget).
func (b Budget) FinishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.End.IsZero() {
		return context.WithTimeout(context.WithoutCancel(ctx), slurm.FailTimeout)
	}
	return context.WithDeadline(context.WithoutCancel(ctx), b.End)
}

// detach is ctx without its cancellation, ending at its deadline or after
// slurm.FailTimeout, whichever comes first.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	end := time.Now().Add(slurm.FailTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
		end = dl
	}
	return context.WithDeadline(context.WithoutCancel(ctx), end)
}

// Interrupted reports whether err, returned by work done under ctx, says
// nothing about the runtime: ctx ended (the run's deadline, a signal)
// before or while the work ran. Such a node was not failed by its
// launch: it is failed with reason.Interrupted and never counted by the
// breaker. It does not block.
func Interrupted(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil
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
// Slurm's own ResumeTimeout handling. It is detached from ctx's
// cancellation, blocks until ctx's deadline or for at most
// slurm.FailTimeout, and is idempotent.
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

// Failure is one node to fail, with its reason code and message.
type Failure struct {
	Node string
	Code reason.Code
	Msg  string
}

// FailAll fails every node of fs the one way (Fail): the nodes that share
// a code and message in one Slurm call, the calls of different reasons at
// once (a few at a time), so marking many nodes costs about one call, not
// one per node. Like Fail it is detached from ctx's cancellation and gives
// up at ctx's deadline (or after slurm.FailTimeout); it blocks until then
// at most and is idempotent.
func FailAll(ctx context.Context, log *slog.Logger, c slurm.Client, fs []Failure) {
	type key struct {
		code reason.Code
		msg  string
	}
	var keys []key
	nodes := map[key][]string{}
	for _, f := range fs {
		k := key{f.Code, f.Msg}
		if _, ok := nodes[k]; !ok {
			keys = append(keys, k)
		}
		nodes[k] = append(nodes[k], f.Node)
	}
	ctx, cancel := detach(ctx)
	defer cancel()
	pool.Run(ctx, len(keys), pool.Options{Concurrency: failCalls}, func(ctx context.Context, i int) error {
		k := keys[i]
		Fail(ctx, log, c, nodes[k], k.code, k.msg)
		return nil
	})
}

// failCalls is how many Fail calls FailAll makes at once.
const failCalls = 8
