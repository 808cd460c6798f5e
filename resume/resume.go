// Package resume powers Slurm cloud nodes up (ResumeProgram) and cleans up
// after nodes that missed ResumeTimeout (ResumeFailProgram).
package resume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Reason codes beside the runtime failure classes.
const (
	CodeUnknownNode   = "UnknownNode"
	CodeSlurm         = "SlurmUpdate"
	CodeResumeTimeout = "ResumeTimeout"
)

// Deps are what a run uses. Runtimes maps a group's runtime name to its
// implementation.
type Deps struct {
	Config   *conf.Config
	Runtimes map[string]runtime.Runtime
	Slurm    slurm.Client
	Log      *slog.Logger
	// Breaker, when set, is the breaker state (internal/breaker) the run
	// consults and updates in memory: open groups are not launched,
	// failures and launches are counted. The caller holds power.lock and
	// saves it afterwards. nil = no breaker, no counts.
	Breaker *breaker.State
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
	for _, n := range names {
		g, ok := d.Config.GroupOf(n)
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

// slurmRetry is the pacing for Slurm updates: every error but an unknown
// node is worth another try.
var slurmRetry = pool.Options{
	Attempts: 3,
	Backoff:  200 * time.Millisecond,
	Retry:    func(err error) bool { return !errors.Is(err, slurm.ErrNodeNotFound) },
}

// Resume launches an instance for every node, tells Slurm each started
// node's address, and sets each node that cannot be started DOWN with a
// `slurm-elastic: (Code:<class>) <why>` reason so Slurm requeues its jobs at
// once instead of waiting for ResumeTimeout. jobs (from SLURM_RESUME_FILE)
// may be nil; it only adds context to the log.
//
// Resume blocks until every node is running and addressed or has failed,
// or ctx ends (nodes not done by then are failed the same way). It is
// idempotent: a node whose instance already runs is re-addressed, never
// launched twice. The error joins one error per failed node.
func Resume(ctx context.Context, d Deps, names []string, jobs *ResumeFile) error {
	start := time.Now()
	if jobs != nil {
		for _, j := range jobs.Jobs {
			d.Log.Info("job waits for nodes", "job", j.JobID, "nodes", j.Nodes, "partition", j.Partition, "features", j.Features)
		}
	}
	targets, unknown := Resolve(d, names)
	var errs []error
	for n, why := range unknown {
		d.Log.Error("cannot resume node: marking it DOWN", "node", n, "error", why)
		errs = append(errs, errors.New(why))
		markDown(ctx, d, n, CodeUnknownNode, why)
	}
	targets, errs = refuseOpen(ctx, d, targets, errs)

	opts := PoolOptions(d.Config.Resume)
	retry := opts.Retry
	opts.Retry = func(err error) bool {
		// address already retried Slurm and removed the instance: launching
		// it again would only repeat that.
		var ae *addrError
		return !errors.As(err, &ae) && retry(err)
	}
	results := pool.Run(ctx, len(targets), opts, func(ctx context.Context, i int) error {
		t := targets[i]
		spec := runtime.NodeSpec{Name: t.Name, Group: t.Group.Name, Template: t.Group.Template}
		r := t.Runtime.Launch(ctx, []runtime.NodeSpec{spec})[0]
		if r.Err != nil {
			return r.Err
		}
		return address(ctx, d, t, r.Instance)
	})

	launched := 0
	brokenGroups := map[string]error{}
	for i, err := range results {
		t := targets[i]
		if err == nil {
			launched++
			if d.Breaker != nil {
				d.Breaker.CountLaunch(t.Group.Name, true, "")
			}
			continue
		}
		if runtime.ClassOf(err) == runtime.ClassConfig {
			if _, seen := brokenGroups[t.Group.Name]; !seen {
				brokenGroups[t.Group.Name] = err
			}
		}
		errs = append(errs, err) // runtime and address errors name the node
		code := string(runtime.ClassOf(err))
		var ae *addrError
		if errors.As(err, &ae) {
			code = CodeSlurm
		}
		d.Log.Error("resume failed: marking node DOWN so its jobs are requeued", "node", t.Name, "group", t.Group.Name, "class", code, "error", err)
		if d.Breaker != nil {
			d.Breaker.CountLaunch(t.Group.Name, false, code)
		}
		if code != string(runtime.ClassCapacity) && failure(d, t.Group.Name, t.Name, code, err.Error()) {
			// The breaker is open: the node says so (and how to re-arm),
			// and is powered down at once rather than kept for the admin.
			markDown(context.WithoutCancel(ctx), d, t.Name, breaker.Code,
				breaker.Message(t.Group.Name, d.Breaker.Get(t.Group.Name), d.Config.Daemon.BreakerReset))
			continue
		}
		markDown(context.WithoutCancel(ctx), d, t.Name, code, err.Error())
	}
	for g, err := range brokenGroups {
		code, msg := string(runtime.ClassConfig), fmt.Sprintf("group %s cannot start nodes: %v", g, err)
		if d.Breaker != nil && d.Breaker.IsOpen(g) {
			code, msg = breaker.Code, breaker.Message(g, d.Breaker.Get(g), d.Config.Daemon.BreakerReset)
		}
		downIdleSiblings(ctx, d, g, names, code, msg)
	}
	d.Log.Info("resume done", "nodes", len(names), "launched", launched, "failed", len(names)-launched, "duration", time.Since(start).String())
	return errors.Join(errs...)
}

// refuseOpen re-arms the breakers whose daemon.breaker_reset is over,
// then takes the targets of groups whose breaker is open out of the run:
// each is set DOWN with the BreakerOpen reason and powered down (Slurm
// requeues its jobs at once and the node leaves POWERING_UP), and nothing
// is launched for it. It returns the targets left to launch.
func refuseOpen(ctx context.Context, d Deps, targets []Target, errs []error) ([]Target, []error) {
	if d.Breaker == nil {
		return targets, errs
	}
	dc := d.Config.Daemon
	for _, g := range d.Breaker.Expire(time.Now(), dc.BreakerReset, dc.BreakerThreshold) {
		d.Log.Warn("circuit breaker re-armed after daemon.breaker_reset (half-open: one more failure opens it again)",
			"group", g, "breaker_reset", dc.BreakerReset.String())
	}
	kept := targets[:0:0]
	refused := map[string][]string{}
	for _, t := range targets {
		if !d.Breaker.IsOpen(t.Group.Name) {
			kept = append(kept, t)
			continue
		}
		refused[t.Group.Name] = append(refused[t.Group.Name], t.Name)
	}
	for g, ns := range refused {
		b := d.Breaker.Get(g)
		msg := breaker.Message(g, b, dc.BreakerReset)
		d.Log.Error("circuit breaker open: nodes not launched, set DOWN so their jobs go elsewhere",
			"group", g, "nodes", ns, "failures", b.Failures, "opened_at", b.OpenedAt.UTC().Format(time.RFC3339), "last_failure", b.LastFailure,
			"rearm", "slurm-elastic breaker reset "+g)
		d.Breaker.CountRefused(g, len(ns))
		for _, n := range ns {
			errs = append(errs, fmt.Errorf("node %s: group %s: circuit breaker open, not launched", n, g))
			markDown(context.WithoutCancel(ctx), d, n, breaker.Code, msg)
		}
	}
	return kept, errs
}

// failure records a bootstrap failure of node in group in the breaker,
// says so loudly when it opens the breaker, and reports whether the
// breaker is open.
func failure(d Deps, group, node, class, msg string) (open bool) {
	if d.Breaker == nil {
		return false
	}
	dc := d.Config.Daemon
	if d.Breaker.Failure(group, node, class, msg, time.Now(), dc.BreakerThreshold, dc.BreakerReset) {
		b := d.Breaker.Get(group)
		d.Log.Error("circuit breaker opened: the group's launches are stopped until it is re-armed",
			"group", group, "failures", b.Failures, "last_failure", b.LastFailure, "breaker_reset", dc.BreakerReset.String(),
			"rearm", "slurm-elastic breaker reset "+group)
	}
	return d.Breaker.IsOpen(group)
}

// addrError marks a node that started but whose address Slurm did not take.
type addrError struct {
	node string
	err  error
}

func (e *addrError) Error() string { return "node " + e.node + ": set NodeAddr: " + e.err.Error() }
func (e *addrError) Unwrap() error { return e.err }

// address tells Slurm where a started node is. When Slurm does not take
// it, the instance is removed again: a node Slurm cannot reach is a leak.
func address(ctx context.Context, d Deps, t Target, inst runtime.Instance) error {
	u := slurm.NodeUpdate{Addr: inst.Addr, Hostname: t.Name}
	if u.Addr == "" {
		u.Addr = t.Name
	}
	err := pool.Run(ctx, 1, slurmRetry, func(ctx context.Context, _ int) error {
		return d.Slurm.Update(ctx, []string{t.Name}, u)
	})[0]
	if err == nil {
		d.Log.Info("node launched and addressed", "node", t.Name, "group", t.Group.Name, "host", inst.Host, "addr", u.Addr, "instance", inst.ID)
		return nil
	}
	d.Log.Error("Slurm did not take the node's address: removing its instance", "node", t.Name, "addr", u.Addr, "error", err)
	cctx := context.WithoutCancel(ctx)
	if r := t.Runtime.Terminate(cctx, []string{t.Name})[0]; r.Err != nil {
		d.Log.Error("remove instance after failed addressing", "node", t.Name, "error", r.Err)
		err = errors.Join(err, r.Err)
	}
	return &addrError{node: t.Name, err: err}
}

// markDown sets one node DOWN with an owned reason, which makes Slurm
// requeue its jobs at once. For failures that may pass (Transient,
// Capacity, SlurmUpdate) the node is then powered down as well: in Slurm
// 23.11+ that ends POWERING_UP at once and returns the node to the pool
// (IDLE~, the reason kept as a record) after SuspendTimeout, so a later job
// tries again. Config and unknown-node failures stay DOWN — retrying cannot
// help until an admin acts. Failures to update are logged: the node then
// falls back to Slurm's own ResumeTimeout handling.
func markDown(ctx context.Context, d Deps, node, code, msg string) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	reason := slurm.Reason(code, msg)
	update := func(u slurm.NodeUpdate) error {
		return pool.Run(ctx, 1, slurmRetry, func(ctx context.Context, _ int) error {
			return d.Slurm.Update(ctx, []string{node}, u)
		})[0]
	}
	if err := update(slurm.NodeUpdate{State: slurm.SetDown, Reason: reason}); err != nil {
		d.Log.Error("could not set node DOWN; Slurm will fail it after ResumeTimeout", "node", node, "reason", reason, "error", err)
		return
	}
	if !retryable(code) {
		d.Log.Info("node set DOWN until an admin resumes it", "node", node, "reason", reason)
		return
	}
	if err := update(slurm.NodeUpdate{State: slurm.SetPowerDownForce}); err != nil {
		d.Log.Error("node set DOWN but not powered down; it returns after ResumeTimeout", "node", node, "reason", reason, "error", err)
		return
	}
	d.Log.Info("node set DOWN and powered down: it returns to the pool after SuspendTimeout", "node", node, "reason", reason)
}

// retryable reports whether a failure of this code may pass by itself.
func retryable(code string) bool {
	switch code {
	case string(runtime.ClassTransient), string(runtime.ClassCapacity), CodeSlurm, breaker.Code:
		return true
	}
	return false
}

// downIdleSiblings handles a group whose template cannot start (a Config
// failure): every other node of the group that is powered down and idle
// would fail the same way, and each failure costs the job a requeue and
// Slurm's requeue delay. They are set DOWN with the same Config reason so
// Slurm places jobs on other groups at once. Nodes that run or are being
// resumed are left alone. Best effort: failures are logged.
func downIdleSiblings(ctx context.Context, d Deps, group string, resumed []string, code, msg string) {
	g, ok := d.Config.Group(group)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	nodes, err := d.Slurm.Nodes(ctx, d.Config.GroupNodes(g)...)
	if err != nil && len(nodes) == 0 {
		d.Log.Warn("cannot list the broken group's nodes to take them out of scheduling", "group", group, "error", err)
		return
	}
	skip := make(map[string]bool, len(resumed))
	for _, n := range resumed {
		skip[n] = true
	}
	var idle []string
	for _, n := range nodes {
		if !skip[n.Name] && n.Has(slurm.FlagPoweredDown) && n.State == slurm.StateIdle && !n.Has(slurm.FlagPoweringUp) {
			idle = append(idle, n.Name)
		}
	}
	if len(idle) == 0 {
		return
	}
	reason := slurm.Reason(code, msg)
	if err := d.Slurm.Update(ctx, idle, slurm.NodeUpdate{State: slurm.SetDown, Reason: reason}); err != nil {
		d.Log.Error("could not take the broken group's idle nodes out of scheduling", "group", group, "nodes", len(idle), "error", err)
		return
	}
	d.Log.Warn("group template cannot start: its idle powered-down nodes set DOWN so jobs go elsewhere", "group", group, "nodes", idle, "reason", reason)
}
