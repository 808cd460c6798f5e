// act: the fourth phase. Every action kind has its actuator in one table
// (actuators); a kind without one is an error, never a silent no-op.

package reconcile

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"errors"

	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelog"
	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// actuator carries out one kind's actions and returns each node's error
// (nil = done) and what it did, for the log and the events.
type actuator struct {
	did string
	run func(r *Reconciler, ctx context.Context, v *view, acts []Action) map[string]error
}

// setState returns an actuator body that sets the nodes to s in one call.
func setState(s slurm.UpdateState) func(r *Reconciler, ctx context.Context, v *view, acts []Action) map[string]error {
	return func(r *Reconciler, ctx context.Context, _ *view, acts []Action) map[string]error {
		return slurm.UpdateEach(ctx, r.d.Slurm, names(acts), slurm.NodeUpdate{State: s})
	}
}

// actuators maps every Kind to what carries it out (a test checks that
// every Kind has one).
var actuators = map[Kind]actuator{
	KindUnknown: {"reported, not touched: not in the daemon's config (reload it, or remove the instance by hand)", func(_ *Reconciler, _ context.Context, _ *view, acts []Action) map[string]error {
		return map[string]error{} // the report is the log line, the event and the metric act and finish keep
	}},
	KindOrphan: {"instance removed", (*Reconciler).terminate},
	KindDead: {"set DOWN (jobs requeued), then POWER_DOWN_FORCE", func(r *Reconciler, ctx context.Context, v *view, acts []Action) map[string]error {
		return r.failKeepingLogs(ctx, v, acts, reason.DeadNode, "instance gone or exited; jobs requeued; powered down for a fresh launch")
	}},
	KindStuck: {"set DOWN, then POWER_DOWN_FORCE", func(r *Reconciler, ctx context.Context, v *view, acts []Action) map[string]error {
		return r.failKeepingLogs(ctx, v, acts, reason.StuckPowerUp, fmt.Sprintf("powering up for over %s with no instance; reset", r.policy.PowerUpLimit))
	}},
	KindUnhealthy:  {"drain reason taken over, then POWER_DOWN", (*Reconciler).replace},
	KindReenable:   {"RESUME: may be launched again", setState(slurm.SetResume)},
	KindCapacity:   {"reason taken over (Code:Cooldown); lifted when the group's cooldown ends", (*Reconciler).coolDown},
	KindCoolDrain:  {"DRAIN (Code:Cooldown) until the cooldown ends", (*Reconciler).coolDrain},
	KindCoolEnd:    {"RESUME: cooldown over, may be launched again", setState(slurm.SetResume)},
	KindBreaker:    {"out of scheduling (Code:BreakerOpen) until the breaker is re-armed", (*Reconciler).breakerHold},
	KindBreakerEnd: {"RESUME: circuit breaker re-armed, may be launched again", setState(slurm.SetResume)},
	KindWarm:       {"POWER_UP: warm pool (a named image's active feature set first)", (*Reconciler).warmUp},
	KindReboot:     {"fresh instance launched (same template and image, or the image a re-image asked for) and addressed: Slurm returns the node when slurmd registers", (*Reconciler).reboot},
	KindReimage:    {"REBOOT ASAP (Code:Reimage): drained at once; the fresh instance boots the job's image", (*Reconciler).reimage},
}

// errNoActuator fails an action whose kind has no actuator.
var errNoActuator = errors.New("no actuator for this action kind: nothing done")

// act carries out acts kind by kind (in Kinds order, then any kind not
// listed there), logs each outcome and keeps it as an event. An action of
// a kind without an actuator fails with errNoActuator.
func (r *Reconciler) act(ctx context.Context, v *view, acts []Action) []error {
	by := map[Kind][]Action{}
	for _, a := range acts {
		by[a.Kind] = append(by[a.Kind], a)
	}
	order := slices.Clone(Kinds)
	for _, k := range slices.Sorted(maps.Keys(by)) {
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	var errs []error
	for _, k := range order {
		list := by[k]
		if len(list) == 0 {
			continue
		}
		did := "nothing"
		res := map[string]error{}
		if ac, ok := actuators[k]; ok {
			did, res = ac.did, ac.run(r, ctx, v, list)
		} else {
			for _, a := range list {
				res[a.Node] = errNoActuator
			}
		}
		for _, a := range list {
			err := res[a.Node]
			ev := Event{Time: r.d.Now(), Node: a.Node, Group: a.Group, Kind: a.Kind, Saw: a.Saw, Did: did}
			if err != nil {
				ev.Did = "failed: " + did
				ev.Error = err.Error()
				errs = append(errs, fmt.Errorf("node %s: %s: %w", a.Node, a.Kind, err))
				r.d.Log.Error("reconcile action failed", "node", a.Node, "group", a.Group, "kind", string(a.Kind), "saw", a.Saw, "did", ev.Did, "error", err)
			} else if a.Kind == KindUnknown {
				r.d.Log.Warn("instance not of the daemon's config: reported, never removed", "node", a.Node, "group", a.Group, "kind", string(a.Kind), "saw", a.Saw, "did", did)
			} else {
				r.d.Log.Info("reconciled", "node", a.Node, "group", a.Group, "kind", string(a.Kind), "saw", a.Saw, "did", did)
			}
			r.Events.Add(ev)
			r.Metrics.action(a.Kind, err == nil)
		}
	}
	return errs
}

func names(acts []Action) []string {
	out := make([]string, len(acts))
	for i, a := range acts {
		out[i] = a.Node
	}
	return out
}

// callOpts paces runtime calls: bounded, transient failures retried once.
func (r *Reconciler) callOpts() pool.Options {
	return pool.Options{
		Concurrency: max(r.d.Config.Daemon.Concurrency, 1),
		Rate:        r.d.Config.Daemon.Rate,
		Attempts:    2,
		Backoff:     250 * time.Millisecond,
		Retry:       func(err error) bool { return runtime.ClassOf(err) == runtime.ClassTransient },
	}
}

// terminate removes the orphans' instances through the runtime that
// listed each.
func (r *Reconciler) terminate(ctx context.Context, v *view, acts []Action) map[string]error {
	errs := pool.Run(ctx, len(acts), r.callOpts(), func(ctx context.Context, i int) error {
		n := acts[i].Node
		return r.d.Runtimes[v.rtOf[n]].Terminate(ctx, []string{n})[0].Err
	})
	out := make(map[string]error, len(acts))
	for i, a := range acts {
		out[a.Node] = errs[i]
	}
	return out
}

// fail fails the nodes the one way (slurm.Fail): DOWN with the code's
// reason (Slurm requeues their jobs at once), then POWER_DOWN_FORCE so
// SuspendProgram removes what is left and the next job launches them
// fresh.
func (r *Reconciler) fail(ctx context.Context, acts []Action, code reason.Code, msg string) map[string]error {
	out := make(map[string]error, len(acts))
	for n, f := range slurm.Fail(ctx, r.d.Slurm, names(acts), code, msg) {
		out[n] = f.Err
	}
	return out
}

// replace takes over an unhealthy node's drain reason (so the drain is
// ours to lift once it is down) and powers it down. The node is idle and
// drained: no job runs there, none is started.
func (r *Reconciler) replace(ctx context.Context, v *view, acts []Action) map[string]error {
	out := make(map[string]error, len(acts))
	errs := pool.Run(ctx, len(acts), pool.Options{Concurrency: 8}, func(ctx context.Context, i int) error {
		n := v.entries[v.index[acts[i].Node]].Node
		why := n.Reason
		if !reason.Has(why, reason.Unhealthy) {
			why = reason.Format(reason.Unhealthy, "replaced: "+strings.TrimSpace(strings.TrimPrefix(why, reason.HealthPrefix)))
		}
		why = r.hintLog(ctx, v, n.Name, why)
		if err := r.d.Slurm.Update(ctx, []string{n.Name}, slurm.NodeUpdate{State: slurm.SetDrain, Reason: why}); err != nil {
			return fmt.Errorf("drain: %w", err)
		}
		if err := r.d.Slurm.Update(ctx, []string{n.Name}, slurm.NodeUpdate{State: slurm.SetPowerDown}); err != nil {
			return fmt.Errorf("power down: %w", err)
		}
		return nil
	})
	for i, a := range acts {
		out[a.Node] = errs[i]
	}
	return out
}

// coolDown keeps each Capacity-failed node DOWN under our Cooldown reason,
// which names the end of its group's cooldown.
func (r *Reconciler) coolDown(ctx context.Context, v *view, acts []Action) map[string]error {
	out := make(map[string]error, len(acts))
	errs := pool.Run(ctx, len(acts), pool.Options{Concurrency: 8}, func(ctx context.Context, i int) error {
		e := v.entries[v.index[acts[i].Node]]
		why := reason.Format(reason.Cooldown, fmt.Sprintf("group %s paused until %s after a capacity failure: %s",
			e.Group, e.CoolingUntil.UTC().Format(time.RFC3339), reason.Parse(e.Node.Reason).Msg))
		return r.d.Slurm.Update(ctx, []string{e.Name}, slurm.NodeUpdate{State: slurm.SetDown, Reason: why})
	})
	for i, a := range acts {
		out[a.Node] = errs[i]
	}
	return out
}

// coolDrain drains idle powered-down nodes of cooling groups, one call per
// group.
func (r *Reconciler) coolDrain(ctx context.Context, v *view, acts []Action) map[string]error {
	byGroup := map[string][]string{}
	for _, a := range acts {
		byGroup[a.Group] = append(byGroup[a.Group], a.Node)
	}
	out := make(map[string]error, len(acts))
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		ns := byGroup[g]
		until := v.entries[v.index[ns[0]]].CoolingUntil
		why := reason.Format(reason.Cooldown, fmt.Sprintf("group %s paused until %s after a capacity failure", g, until.UTC().Format(time.RFC3339)))
		maps.Copy(out, slurm.UpdateEach(ctx, r.d.Slurm, ns, slurm.NodeUpdate{State: slurm.SetDrain, Reason: why}))
	}
	return out
}

// breakerHold takes the nodes of groups whose breaker is open out of
// scheduling with the BreakerOpen reason (how to re-arm it): idle
// powered-down nodes are drained, nodes a hook set DOWN stay DOWN under
// the new reason. One call per group and state.
func (r *Reconciler) breakerHold(ctx context.Context, v *view, acts []Action) map[string]error {
	type key struct {
		group string
		down  bool
	}
	by := map[key][]string{}
	for _, a := range acts {
		n := v.entries[v.index[a.Node]].Node
		k := key{a.Group, n.State == slurm.StateDown}
		by[k] = append(by[k], a.Node)
	}
	r.mu.Lock()
	st := r.breaker
	r.mu.Unlock()
	out := make(map[string]error, len(acts))
	for _, k := range slices.SortedFunc(maps.Keys(by), func(a, b key) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) }) {
		u := slurm.NodeUpdate{State: slurm.SetDrain, Reason: reason.Format(reason.BreakerOpen, breaker.Message(k.group, st.Get(k.group), r.d.Config.Breaker.Reset))}
		if k.down {
			u.State = slurm.SetDown
		}
		maps.Copy(out, slurm.UpdateEach(ctx, r.d.Slurm, by[k], u))
	}
	return out
}

// reboot launches a fresh instance for each node whose reboot Slurm issued
// (KindReboot): the group's template, the image chosen by rebootImage; an
// exited or created instance is replaced by the launch (runtime.Runtime),
// and the node is addressed as the resume hook does. A failed launch
// leaves nothing behind and the node REBOOT_ISSUED: the next round tries
// again, until Slurm's ResumeTimeout sets it DOWN ("reboot timed out").
// A node Slurm does not take the address of has its new instance removed
// again (the next round retries). The breaker does not count these
// launches: a reboot is the admin's, not a power up.
func (r *Reconciler) reboot(ctx context.Context, v *view, acts []Action) map[string]error {
	errs := pool.Run(ctx, len(acts), r.callOpts(), func(ctx context.Context, i int) error {
		e := &v.entries[v.index[acts[i].Node]]
		g, ok := r.inv.Group(e.Group)
		if !ok {
			return fmt.Errorf("group %s is not in the daemon's config", e.Group)
		}
		rt := r.d.Runtimes[g.Runtime]
		if rt == nil {
			return fmt.Errorf("group %s: runtime %q is not available", g.Name, g.Runtime)
		}
		name, setFeatures := rebootTarget(g, e)
		ref, ok := g.ImageRef(name)
		if !ok {
			return fmt.Errorf("group %s: image %q the node ran is no longer in groups[].images; power the node down instead", g.Name, name)
		}
		if setFeatures {
			// A re-image (reimage.go): Slurm's active features must be the
			// new image's before its slurmd registers; the node is DOWN
			// (REBOOT_ISSUED), so no job is placed on it meanwhile.
			fs, ok := r.d.Slurm.(slurm.FeatureSetter)
			if !ok {
				return fmt.Errorf("re-image to %s: the Slurm client cannot set active features", name)
			}
			if err := fs.SetActiveFeatures(ctx, e.Name, []string{name}); err != nil {
				return fmt.Errorf("re-image to %s: %w", name, err)
			}
		}
		t := g.Template.Runtime()
		t.Image = ref
		res := rt.Launch(ctx, []runtime.NodeSpec{{Name: e.Name, Group: g.Name, Image: name, Template: t}})[0]
		if res.Err != nil {
			if l := res.Log; l != nil && r.d.StateDir != "" {
				if _, err := nodelog.Save(r.d.StateDir, nodelog.Entry{Node: e.Name, Why: "reboot: launch failed: " + res.Err.Error(),
					ID: l.ID, Image: l.Image, Host: l.Host, Tail: l.Tail, Truncated: l.Truncated}); err != nil {
					r.d.Log.Warn("could not save the failed launch's log", "node", e.Name, "error", err)
				}
			}
			return fmt.Errorf("launch: %w", res.Err)
		}
		u := slurm.NodeUpdate{Addr: res.Instance.Addr, Hostname: e.Name}
		if u.Addr == "" {
			u.Addr = e.Name
		}
		if err := r.d.Slurm.Update(ctx, []string{e.Name}, u); err != nil {
			if tr := rt.Terminate(ctx, []string{e.Name})[0]; tr.Err != nil {
				err = errors.Join(err, fmt.Errorf("remove the new instance: %w", tr.Err))
			}
			return fmt.Errorf("set NodeAddr %s: %w", u.Addr, err)
		}
		r.d.Log.Info("node rebooted: fresh instance launched", "node", e.Name, "group", g.Name, "host", res.Instance.Host,
			"instance", res.Instance.ID, "image", t.Image, "addr", u.Addr)
		return nil
	})
	out := make(map[string]error, len(acts))
	for i, a := range acts {
		out[a.Node] = errs[i]
	}
	return out
}

// warmUp powers the warm pool's nodes up (KindWarm). A node the pool
// warms in a named image (Action.Image) first has its Slurm active
// features set to that name (static ones kept): the resume hook, running
// without a job, boots the image they name (resume activeImages), and the
// node's slurmd reports it, so its registration is valid and Slurm may
// place `-C NAME` jobs on it while it boots. A failed feature update fails
// the node's action and leaves it powered down (the next round tries
// again); a Slurm client that cannot set features (no slurm.FeatureSetter)
// warms the default image, logged. Blocks for one or two Slurm calls per
// node.
func (r *Reconciler) warmUp(ctx context.Context, _ *view, acts []Action) map[string]error {
	out := make(map[string]error, len(acts))
	var up []string
	fs, canSet := r.d.Slurm.(slurm.FeatureSetter)
	for _, a := range acts {
		if a.Image != "" && !canSet {
			r.d.Log.Warn("warm pool: the Slurm client cannot set active features: the node warms the default image",
				"node", a.Node, "group", a.Group, "image", a.Image)
		} else if a.Image != "" {
			if err := fs.SetActiveFeatures(ctx, a.Node, []string{a.Image}); err != nil {
				out[a.Node] = fmt.Errorf("set active features to image %s before the power up: %w", a.Image, err)
				continue
			}
		}
		up = append(up, a.Node)
	}
	maps.Copy(out, slurm.UpdateEach(ctx, r.d.Slurm, up, slurm.NodeUpdate{State: slurm.SetPowerUp}))
	return out
}

// rebootImage is the one place where a reboot chooses the image of the
// fresh instance: the name of the image the old instance ran ("" = the
// group's default), so the node registers with the features Slurm has
// active. old is nil when the instance is gone: then the default. It does
// not block.
func rebootImage(old *runtime.Instance) string {
	if old == nil {
		return ""
	}
	return old.Image
}
