package resume

import (
	"context"
	"errors"
	"fmt"
	"time"

	"maps"
	"slices"

	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelog"
	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/power"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// ResumeFail handles nodes that did not register within ResumeTimeout
// (ResumeFailProgram): it records what the runtime had for each node,
// removes whatever is left of it, and sets the node DOWN with an owned
// `(Code:ResumeTimeout)` reason that says what was found, so an admin sees
// why without reading logs.
//
// ResumeFail blocks until every node is handled or ctx ends, within
// d.Budget: the lookups and removals end at its Work, the record and the
// marks (one Slurm call per reason) at its End. It is idempotent: a node
// with nothing left is only re-marked.
func ResumeFail(ctx context.Context, d power.Deps, names []string) error {
	start := time.Now()
	fctx, fcancel := d.Budget.FinishContext(ctx)
	defer fcancel()
	ctx, cancel := d.Budget.WorkContext(ctx)
	defer cancel()
	targets, unknown := power.Resolve(d, names)
	var errs []error
	var fails []power.Failure
	for _, n := range slices.Sorted(maps.Keys(unknown)) {
		d.Log.Error("resume-fail for a node slurm-elastic does not manage", "node", n, "error", unknown[n])
		errs = append(errs, errors.New(unknown[n]))
		fails = append(fails, power.Failure{Node: n, Code: reason.UnknownNode, Msg: unknown[n]})
	}

	// One List per runtime says what each node had when it timed out.
	seen := map[string]runtime.Instance{}
	listed := map[runtime.Runtime]bool{}
	for _, t := range targets {
		if listed[t.Runtime] {
			continue
		}
		listed[t.Runtime] = true
		insts, err := t.Runtime.List(ctx)
		if err != nil {
			d.Log.Warn("cannot list instances; removing the nodes' instances anyway", "error", err)
			continue
		}
		for _, in := range insts {
			seen[in.Name] = in
		}
	}

	// A node our resume already set DOWN keeps that reason: it says why
	// (e.g. a missing image) better than "did not register".
	ownDown := map[string]string{}
	if len(targets) > 0 {
		names := make([]string, len(targets))
		for i, t := range targets {
			names[i] = t.Name
		}
		nodes, err := d.Slurm.Nodes(ctx, names...)
		if err != nil {
			d.Log.Warn("cannot read the nodes' reasons", "error", err)
		}
		for _, n := range nodes {
			if n.Has(slurm.StateDown) && reason.Parse(n.Reason).Code != "" {
				ownDown[n.Name] = n.Reason
			}
		}
	}

	// The instance's log is saved (once) before it is removed.
	tried, logged := make([]bool, len(targets)), make([]bool, len(targets))
	results := pool.Run(ctx, len(targets), power.PoolOptions(d.Config.Resume), func(ctx context.Context, i int) error {
		power.Gone(d, targets[i].Name)
		if _, ok := seen[targets[i].Name]; ok && !tried[i] {
			tried[i] = true
			logged[i] = power.KeepLog(ctx, d, targets[i], "did not register within ResumeTimeout")
		}
		return targets[i].Runtime.Terminate(ctx, []string{targets[i].Name})[0].Err
	})
	type timedOut struct {
		t   power.Target
		msg string
	}
	var failed []timedOut
	for i, err := range results {
		t := targets[i]
		found := "no instance was found"
		if in, ok := seen[t.Name]; ok {
			found = fmt.Sprintf("its instance was %s on host %s", in.State, in.Host)
		}
		msg := fmt.Sprintf("node did not register within ResumeTimeout; %s", found)
		if err != nil {
			msg += fmt.Sprintf("; removing it failed: %v", err)
			errs = append(errs, fmt.Errorf("node %s: remove after resume timeout: %w", t.Name, err))
		}
		if logged[i] {
			msg = reason.WithHint(reason.ResumeTimeout, msg, nodelog.Hint(t.Name))
		}
		if r, ok := ownDown[t.Name]; ok && err == nil {
			d.Log.Warn("resume timed out after our resume failed: instance removed, reason kept", "node", t.Name, "group", t.Group.Name, "found", found, "reason", r)
			continue
		}
		d.Log.Warn("resume timed out: instance removed, node set DOWN", "node", t.Name, "group", t.Group.Name, "found", found, "error", err)
		failed = append(failed, timedOut{t, msg})
	}
	// One record after the removals, then every node marked in one batch,
	// both with the rest of the budget.
	outs := make([]breaker.Outcome, len(failed))
	for i, f := range failed {
		outs[i] = breaker.Outcome{Group: f.t.Group.Name, Node: f.t.Name, Class: string(reason.ResumeTimeout), Msg: f.msg, Bootstrap: true}
	}
	verdicts, _ := record(fctx, d, outs)
	for i, v := range verdicts {
		f := failed[i]
		if v.Open {
			fails = append(fails, power.Failure{Node: f.t.Name, Code: reason.BreakerOpen, Msg: breaker.Message(f.t.Group.Name, v.Breaker, d.Config.Breaker.Reset)})
			continue
		}
		fails = append(fails, power.Failure{Node: f.t.Name, Code: reason.ResumeTimeout, Msg: f.msg})
	}
	power.FailAll(fctx, d.Log, d.Slurm, fails)
	d.Log.Info("resume-fail done", "nodes", len(names), "duration", time.Since(start).String())
	return errors.Join(errs...)
}
