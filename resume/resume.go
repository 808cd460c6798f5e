// Package resume powers Slurm cloud nodes up (ResumeProgram) and cleans up
// after nodes that missed ResumeTimeout (ResumeFailProgram).
package resume

import (
	"context"
	"errors"
	"fmt"
	"time"

	"maps"
	"slices"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelog"
	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/power"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Resume launches an instance for every node, tells Slurm each started
// node's address, and sets each node that cannot be started DOWN with a
// `slurm-elastic: (Code:<class>) <why>` reason so Slurm requeues its jobs at
// once instead of waiting for ResumeTimeout. jobs (from SLURM_RESUME_FILE)
// may be nil; it adds context to the log and says which image each node
// boots: the group image its job's -C names (ImageFor), else the group's
// default (pickImages).
//
// Resume blocks until every node is running and addressed or has failed,
// within d.Budget: launches end at its Work (or when ctx is cancelled, a
// signal); the breaker record, the removal of what launches cut short
// left, and the marks (every failed node in one Slurm call per reason)
// end at its End. A node whose launch never started or was cut short by
// that end is not a launch failure: the breaker does not count it, and it
// is failed with (Code:Interrupted), powered down so it returns to the
// pool. Resume is idempotent: a node whose instance already runs is
// re-addressed, never launched twice. The error joins one error per
// failed node.
func Resume(ctx context.Context, d power.Deps, names []string, jobs *ResumeFile) error {
	start := time.Now()
	wctx, cancel := d.Budget.WorkContext(ctx)
	defer cancel()
	if jobs != nil {
		byJob := map[int64]string{}
		for _, j := range jobs.Jobs {
			d.Log.Info("job waits for nodes", "job", j.JobID, "nodes", j.Nodes, "partition", j.Partition, "features", j.Features)
			byJob[j.JobID] = j.Nodes
		}
		power.Record(d, power.JobRecords(start, byJob)...)
	}
	targets, unknown := power.Resolve(d, names)
	images := pickImages(wctx, d, targets, jobs)
	var errs []error
	var early []power.Failure
	for _, n := range slices.Sorted(maps.Keys(unknown)) {
		d.Log.Error("cannot resume node: marking it DOWN", "node", n, "error", unknown[n])
		errs = append(errs, errors.New(unknown[n]))
		early = append(early, power.Failure{Node: n, Code: reason.UnknownNode, Msg: unknown[n]})
	}
	targets, errs, early = gate(wctx, d, targets, errs, early)
	// Nodes that will not be launched are failed before the launches, so
	// their jobs are requeued at once.
	power.FailAll(wctx, d.Log, d.Slurm, early)

	opts := power.PoolOptions(d.Config.Resume)
	retry := opts.Retry
	opts.Retry = func(err error) bool {
		// address already retried Slurm and removed the instance: launching
		// it again would only repeat that.
		var ae *addrError
		return !errors.As(err, &ae) && retry(err)
	}
	logged := make([]bool, len(targets)) // a failed instance's log was saved
	// attempted: a launch of the node was tried; cut: its last try ended
	// with the run (deadline, signal), so it says nothing about the
	// runtime. Each index is written by one worker only.
	attempted, cut := make([]bool, len(targets)), make([]bool, len(targets))
	results := pool.Run(wctx, len(targets), opts, func(ctx context.Context, i int) error {
		attempted[i] = true
		t := targets[i]
		spec := runtime.NodeSpec{Name: t.Name, Group: t.Group.Name, Image: images[t.Name], Template: t.Group.Template.Runtime()}
		spec.Template.Image, _ = t.Group.ImageRef(spec.Image)
		r := t.Runtime.Launch(ctx, []runtime.NodeSpec{spec})[0]
		err := r.Err
		if err == nil && r.Instance.Image != spec.Image {
			// Already running (an earlier resume): kept, not re-imaged.
			d.Log.Warn("node already runs another image than its job asks for: kept as it is", "node", t.Name, "group", t.Group.Name,
				"image", imageLabel(r.Instance.Image), "wanted", imageLabel(spec.Image))
		}
		if err != nil && r.Log != nil && power.SaveLog(d, t.Name, "launch failed: "+err.Error(), *r.Log) {
			logged[i] = true
		}
		if err == nil {
			launched := time.Now()
			if err = address(ctx, d, t, r.Instance); err == nil {
				power.Up(d, t.Name, r.Instance.Host, r.Instance.ID, r.Instance.Addr, launched)
			}
		}
		cut[i] = power.Interrupted(ctx, err)
		return err
	})

	// What follows the work has the rest of the budget, even after a
	// signal: record, mark every failed node in one batch, clean up.
	fctx, fcancel := d.Budget.FinishContext(ctx)
	defer fcancel()
	var (
		outs      []breaker.Outcome
		outTarget []int // outs[k] is the outcome of targets[outTarget[k]]
		stopped   []power.Target
		fails     []power.Failure
	)
	launched := 0
	cause := interruption(wctx, d)
	for i, err := range results {
		t := targets[i]
		switch {
		case err == nil:
			launched++
			outs, outTarget = append(outs, breaker.Outcome{Group: t.Group.Name, Node: t.Name, Launch: true}), append(outTarget, i)
		case !attempted[i] || cut[i]:
			// Not a launch failure: never counted by the breaker.
			msg := "not launched: " + cause + " before its launch started"
			if attempted[i] {
				msg = "launch cut short: " + cause + "; what it started is removed"
				stopped = append(stopped, t)
			}
			errs = append(errs, fmt.Errorf("node %s: %s: %w", t.Name, msg, err))
			d.Log.Error("resume interrupted: marking node DOWN so its jobs are requeued (not counted as a launch failure)",
				"node", t.Name, "group", t.Group.Name, "attempted", attempted[i], "reason", msg, "error", err)
			fails = append(fails, power.Failure{Node: t.Name, Code: reason.Interrupted, Msg: msg})
		default:
			code := reason.Code(runtime.ClassOf(err))
			var ae *addrError
			if errors.As(err, &ae) {
				code = reason.SlurmUpdate
			}
			outTarget = append(outTarget, i)
			outs = append(outs, breaker.Outcome{Group: t.Group.Name, Node: t.Name, Launch: true,
				Class: string(code), Msg: err.Error(), Bootstrap: code != reason.Capacity})
		}
	}
	// One record after the launches.
	verdicts, bs := record(fctx, d, outs)
	brokenGroups := map[string]error{}
	for k, i := range outTarget {
		t, err := targets[i], results[i]
		if err == nil {
			continue
		}
		// Only a problem of the template breaks the group: a host-scoped
		// one (one host lacks the image or a device, or is unreachable)
		// leaves the siblings to the other hosts.
		// A group image other than the default failing says nothing about
		// the group's other images: the group is not taken out.
		if runtime.ClassOf(err) == runtime.ClassConfig && runtime.HostOf(err) == "" && images[t.Name] == "" {
			if _, seen := brokenGroups[t.Group.Name]; !seen {
				brokenGroups[t.Group.Name] = err
			}
		}
		errs = append(errs, err) // runtime and address errors name the node
		code := reason.Code(outs[k].Class)
		d.Log.Error("resume failed: marking node DOWN so its jobs are requeued", "node", t.Name, "group", t.Group.Name, "class", string(code), "error", err)
		if v := verdicts[k]; v.Open {
			// The breaker is open: the node says so (and how to re-arm),
			// and is powered down at once rather than kept for the admin.
			fails = append(fails, power.Failure{Node: t.Name, Code: reason.BreakerOpen, Msg: breaker.Message(t.Group.Name, v.Breaker, d.Config.Breaker.Reset)})
			continue
		}
		msg := err.Error()
		if logged[i] {
			msg = reason.WithHint(code, msg, nodelog.Hint(t.Name))
		}
		fails = append(fails, power.Failure{Node: t.Name, Code: code, Msg: msg})
	}
	// Every failed node in one batch, while what interrupted launches left
	// is removed.
	done := make(chan struct{})
	go func() {
		defer close(done)
		remove(fctx, d, stopped)
	}()
	power.FailAll(fctx, d.Log, d.Slurm, fails)
	<-done
	for g, err := range brokenGroups {
		code, msg := reason.Config, fmt.Sprintf("group %s cannot start nodes: %v", g, err)
		if bs != nil && bs.IsOpen(g) {
			code, msg = reason.BreakerOpen, breaker.Message(g, bs.Get(g), d.Config.Breaker.Reset)
		}
		downIdleSiblings(fctx, d, g, names, code, msg)
	}
	d.Log.Info("resume done", "nodes", len(names), "launched", launched, "failed", len(names)-launched, "duration", time.Since(start).String())
	return errors.Join(errs...)
}

// pickImages returns the image name each target boots ("" = its group's
// default): the image its job's feature expression asks for (ImageFor).
// A node whose job names no image, or that no job waits for (warm pool,
// `scontrol power up`), boots the image its active features in Slurm
// name, so that what the node reports at registration is what Slurm
// already holds and a later `-C` job Slurm places there because of them
// gets that image (the warm pool sets them before its POWER_UP; a job
// without `-C` may take such a node meanwhile); with none (Slurm resets
// them to the static ones at every power down) it boots the default.
// What cannot be mapped boots the default and is logged. It blocks for
// one Slurm call when a group of the targets has images; a failed call
// is logged and those nodes boot what their jobs ask for.
func pickImages(ctx context.Context, d power.Deps, targets []power.Target, jobs *ResumeFile) map[string]string {
	out := make(map[string]string, len(targets))
	byNode, jobOf, bad := nodeFeatures(jobs)
	for _, b := range bad {
		d.Log.Warn("resume file: cannot read a job's nodes: they boot their group's default image", "error", b)
	}
	active := activeImages(ctx, d, targets)
	for _, t := range targets {
		if len(t.Group.Images) == 0 {
			continue
		}
		feats, ok := byNode[t.Name]
		name, why := ImageFor(feats, t.Group)
		if why != "" {
			d.Log.Warn("cannot map the job's features to one of the group's images: the node boots the default image",
				"node", t.Name, "group", t.Group.Name, "job", jobOf[t.Name], "features", feats, "why", why)
		}
		if name == "" && active[t.Name] != "" {
			name = active[t.Name]
			d.Log.Info("node boots the image its active features name", "node", t.Name, "group", t.Group.Name, "image", name, "job", jobOf[t.Name])
		}
		if name != "" {
			out[t.Name] = name
		}
		d.Log.Info("node image", "node", t.Name, "group", t.Group.Name, "image", imageLabel(name), "job", jobOf[t.Name], "with_job", ok, "features", feats)
	}
	return out
}

// activeImages returns, for each target of a group with images, the one
// image name among its active features in Slurm; nodes with none are
// left out. Two or more image names active (Slurm takes every
// available feature as active for a node that registers with none) name
// no image: left out, logged. It blocks for one Slurm call (none when no
// target needs it); a failed call is logged and leaves every node out.
func activeImages(ctx context.Context, d power.Deps, targets []power.Target) map[string]string {
	groupOf := map[string]*conf.Group{}
	for _, t := range targets {
		if len(t.Group.Images) > 0 {
			groupOf[t.Name] = t.Group
		}
	}
	if len(groupOf) == 0 {
		return nil
	}
	nodes, err := d.Slurm.Nodes(ctx, slices.Sorted(maps.Keys(groupOf))...)
	if err != nil {
		d.Log.Warn("cannot read the nodes' active features in Slurm: each boots what its job asks for, else the default image", "error", err)
		return nil
	}
	out := map[string]string{}
	for _, n := range nodes {
		g := groupOf[n.Name]
		if g == nil {
			continue
		}
		var names []string
		for _, f := range n.ActiveFeatures {
			if _, ok := g.ImageRef(f); ok && f != "" {
				names = append(names, f)
			}
		}
		switch len(names) {
		case 0:
		case 1:
			out[n.Name] = names[0]
		default:
			d.Log.Warn("node has several image features active: they name no image to boot", "node", n.Name, "active", n.ActiveFeatures)
		}
	}
	return out
}

// imageLabel is how logs name an image: its name, or "(default)".
func imageLabel(name string) string {
	if name == "" {
		return "(default)"
	}
	return name
}

// interruption says why launches of a run ended early: ctx (the run's
// work context) was cancelled (a signal), or its deadline passed.
func interruption(ctx context.Context, d power.Deps) string {
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return "the resume hook was stopped (signal)"
	}
	return fmt.Sprintf("the resume hook ran out of time (resume.timeout %s)", d.Config.Resume.Timeout)
}

// remove removes the instances of targets whose launches were cut short
// (a launch may have created one), bounded by ctx. A failure is logged:
// the reconciler removes what is left as an orphan. It blocks until done
// or ctx ends and is idempotent.
func remove(ctx context.Context, d power.Deps, targets []power.Target) {
	errs := pool.Run(ctx, len(targets), power.PoolOptions(d.Config.Resume), func(ctx context.Context, i int) error {
		return targets[i].Runtime.Terminate(ctx, []string{targets[i].Name})[0].Err
	})
	for i, err := range errs {
		if err != nil {
			d.Log.Error("cannot remove what an interrupted launch left; the reconciler will remove it as an orphan", "node", targets[i].Name, "group", targets[i].Group.Name, "error", err)
		}
	}
}

// gate asks the breaker once which targets may launch: it re-arms the
// breakers whose breaker.reset is over, then takes the targets of groups
// whose breaker is open out of the run: each is added to fails with the
// BreakerOpen reason (DOWN, powered down: Slurm requeues its jobs at once
// and the node leaves POWERING_UP), and nothing is launched for it. It
// returns the targets left to launch. The breaker state is read and
// written under the state lock, waited for while ctx allows; without it
// the run goes on without the breaker (logged).
func gate(ctx context.Context, d power.Deps, targets []power.Target, errs []error, fails []power.Failure) ([]power.Target, []error, []power.Failure) {
	if d.Breaker == nil {
		return targets, errs, fails
	}
	p := power.BreakerPolicy(d.Config)
	want := map[string]int{}
	for _, t := range targets {
		want[t.Group.Name]++
	}
	var gt breaker.Gate
	if _, err := d.Breaker.Update(ctx, func(s *breaker.State) { gt = s.Admit(time.Now(), p, want) }); err != nil {
		d.Log.Error("breaker state not had: launching without the circuit breaker", "error", err)
		return targets, errs, fails
	}
	for _, g := range gt.Rearmed {
		d.Log.Warn("circuit breaker re-armed after breaker.reset (half-open: one more failure opens it again)",
			"group", g, "breaker_reset", p.Reset.String())
	}
	kept := targets[:0:0]
	refused := map[string][]string{}
	for _, t := range targets {
		if _, no := gt.Refused[t.Group.Name]; !no {
			kept = append(kept, t)
			continue
		}
		refused[t.Group.Name] = append(refused[t.Group.Name], t.Name)
	}
	for _, g := range slices.Sorted(maps.Keys(refused)) {
		ns, b := refused[g], gt.Refused[g]
		d.Log.Error("circuit breaker open: nodes not launched, set DOWN so their jobs go elsewhere",
			"group", g, "nodes", ns, "failures", b.Failures, "opened_at", b.OpenedAt.UTC().Format(time.RFC3339), "last_failure", b.LastFailure,
			"rearm", "slurm-elastic breaker reset "+g)
		msg := breaker.Message(g, b, p.Reset)
		for _, n := range ns {
			errs = append(errs, fmt.Errorf("node %s: group %s: circuit breaker open, not launched", n, g))
			fails = append(fails, power.Failure{Node: n, Code: reason.BreakerOpen, Msg: msg})
		}
	}
	return kept, errs, fails
}

// record is the one record after a run: it records outs in the breaker
// (when there is one) under the state lock, waited for while ctx allows,
// says so loudly for each breaker it opens, and returns one verdict per
// outcome (all closed without a breaker) and the state recorded into (nil
// without one).
func record(ctx context.Context, d power.Deps, outs []breaker.Outcome) ([]breaker.Verdict, *breaker.State) {
	vs := make([]breaker.Verdict, len(outs))
	if d.Breaker == nil || len(outs) == 0 {
		return vs, nil
	}
	p := power.BreakerPolicy(d.Config)
	st, err := d.Breaker.Update(ctx, func(s *breaker.State) { vs = s.Record(time.Now(), p, outs) })
	if err != nil {
		d.Log.Error("cannot record the run in the breaker state and launch counts", "error", err)
	}
	for i, v := range vs {
		if v.Opened {
			d.Log.Error("circuit breaker opened: the group's launches are stopped until it is re-armed",
				"group", outs[i].Group, "failures", v.Breaker.Failures, "last_failure", v.Breaker.LastFailure, "breaker_reset", p.Reset.String(),
				"rearm", "slurm-elastic breaker reset "+outs[i].Group)
		}
	}
	return vs, st
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
func address(ctx context.Context, d power.Deps, t power.Target, inst runtime.Instance) error {
	u := slurm.NodeUpdate{Addr: inst.Addr, Hostname: t.Name}
	if u.Addr == "" {
		u.Addr = t.Name
	}
	err := slurm.UpdateEach(ctx, d.Slurm, []string{t.Name}, u)[t.Name]
	if err == nil {
		d.Log.Info("node launched and addressed", "node", t.Name, "group", t.Group.Name, "host", inst.Host, "addr", u.Addr, "instance", inst.ID)
		return nil
	}
	d.Log.Error("Slurm did not take the node's address: removing its instance", "node", t.Name, "addr", u.Addr, "error", err)
	power.Gone(d, t.Name)
	cctx, cancel := d.Budget.FinishContext(ctx) // bounded, even after the run's deadline
	defer cancel()
	if r := t.Runtime.Terminate(cctx, []string{t.Name})[0]; r.Err != nil {
		d.Log.Error("remove instance after failed addressing", "node", t.Name, "error", r.Err)
		err = errors.Join(err, r.Err)
	}
	return &addrError{node: t.Name, err: err}
}

// downIdleSiblings handles a group whose template cannot start (a Config
// failure): every other node of the group that is powered down and idle
// would fail the same way, and each failure costs the job a requeue and
// Slurm's requeue delay. They are set DOWN with the same Config reason so
// Slurm places jobs on other groups at once. Nodes that run or are being
// resumed are left alone. Best effort: failures are logged.
func downIdleSiblings(ctx context.Context, d power.Deps, group string, resumed []string, code reason.Code, msg string) {
	inv := d.Config.Inventory()
	g, ok := inv.Group(group)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second) // ctx: the run's finish, detached already
	defer cancel()
	nodes, err := d.Slurm.Nodes(ctx, inv.GroupNodes(g)...)
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
	why := reason.Format(code, msg)
	if err := d.Slurm.Update(ctx, idle, slurm.NodeUpdate{State: slurm.SetDown, Reason: why}); err != nil {
		d.Log.Error("could not take the broken group's idle nodes out of scheduling", "group", group, "nodes", len(idle), "error", err)
		return
	}
	d.Log.Warn("group template cannot start: its idle powered-down nodes set DOWN so jobs go elsewhere", "group", group, "nodes", idle, "reason", why)
}
