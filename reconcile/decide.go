// Package reconcile is the head-node reconciler behind `slurm-elastic
// daemon`: each round it lists the instances this cluster owns and the
// Slurm nodes of the configured groups, joins them by node name, decides
// per node (Decide, a pure function) and acts (Reconciler.Round). It
// removes orphaned instances, fails over dead nodes (DOWN so Slurm requeues
// their jobs, then power down), resets nodes stuck powering up, replaces
// health-drained nodes unless held, gives nodes whose reboot Slurm issued
// (`scontrol reboot`) a fresh instance, re-enables the nodes it powered down
// once they are down, cools groups down after capacity failures, keeps
// groups behind an open circuit breaker (internal/breaker) out of
// scheduling, and keeps warm pools of idle nodes. Instances its config
// does not know are reported, never removed; a running daemon reloads its
// config (reload.go). See docs/reconciler.md.
package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Kind is what the reconciler decided for one node.
type Kind string

const (
	// KindUnknown: an instance this daemon's config does not know (its
	// node is in no group, or its group or host is not in the config:
	// launched by hooks reading a newer config, or left by a group that
	// was removed). Reported, never touched.
	KindUnknown Kind = "unknown"
	// KindOrphan: remove an instance Slurm has no use for.
	KindOrphan Kind = "orphan"
	// KindDead: the node is up in Slurm but its instance is gone or
	// exited: set it DOWN (Slurm requeues its jobs), then POWER_DOWN_FORCE.
	KindDead Kind = "dead"
	// KindStuck: POWERING_UP past the limit with no instance: DOWN, then
	// POWER_DOWN_FORCE, so the next job launches it fresh.
	KindStuck Kind = "stuck"
	// KindUnhealthy: drained by the health daemon and idle: DRAIN with our
	// reason, then POWER_DOWN.
	KindUnhealthy Kind = "unhealthy"
	// KindReenable: powered down by us and still DOWN/DRAIN with our
	// reason: RESUME, so Slurm may launch it again.
	KindReenable Kind = "reenable"
	// KindCapacity: DOWN after a Capacity-class launch failure: its group
	// cools down, and the node's reason becomes ours (Code:Cooldown) so
	// it is lifted with the cooldown.
	KindCapacity Kind = "capacity"
	// KindCoolDrain: an idle powered-down node of a cooling group: DRAIN
	// (Code:Cooldown), so Slurm places jobs elsewhere.
	KindCoolDrain Kind = "cooldown"
	// KindCoolEnd: the group's cooldown is over: RESUME the node.
	KindCoolEnd Kind = "cooldown_end"
	// KindBreaker: the group's circuit breaker is open: an idle
	// powered-down node is drained, a node a hook set DOWN after a failure
	// has its reason taken over, both with (Code:BreakerOpen).
	KindBreaker Kind = "breaker"
	// KindBreakerEnd: the group's breaker was re-armed: RESUME the node.
	KindBreakerEnd Kind = "breaker_end"
	// KindWarm: the group's warm pool is short of idle nodes: POWER_UP an
	// idle powered-down node ahead of demand.
	KindWarm Kind = "warm"
	// KindReboot: Slurm issued a reboot of the node (`scontrol reboot`,
	// REBOOT_ISSUED) and its container has stopped (RebootProgram) or is
	// gone: launch a fresh one from the group's template, with the same
	// image; slurmd registers with a new boot time and Slurm returns the
	// node to service (or keeps it down or drained as the reboot asked).
	KindReboot Kind = "reboot"
	// KindReimage: a job pends (Resources) for a group image while no
	// node of the group is powered down and free, and idle nodes run
	// other images: `scontrol reboot ASAP` of as many idle nodes as the
	// job lacks, with the reason (Code:Reimage) naming the image;
	// KindReboot then launches the fresh instance in that image
	// (reimage.go: the rule is Reimage, not Decide).
	KindReimage Kind = "reimage"
)

// Kinds lists every Kind, in the order actions are taken.
var Kinds = []Kind{KindOrphan, KindReboot, KindDead, KindStuck, KindUnhealthy, KindReenable, KindCapacity, KindCoolDrain, KindCoolEnd, KindBreaker, KindBreakerEnd, KindReimage, KindWarm, KindUnknown}

// Entry is one node as both sides see it: the join of a Slurm node and an
// instance by node name.
type Entry struct {
	Name string
	// Group is the config group of the node; "" = the node is in no group
	// (only an instance of ours carries its name).
	Group string
	// Node is Slurm's view; nil when Slurm does not list the node (unknown,
	// or a powered-down CLOUD node hidden without PrivateData=cloud).
	Node *slurm.Node
	// Inst is the owned instance; nil when there is none.
	Inst *runtime.Instance
	// Unknown says why Inst is not of this daemon's config (its node is
	// in no group, its group or host is not configured); "" = it is.
	Unknown string
	// PoweringUpSince is when the reconciler first saw the node's
	// current power-up (POWERING_UP), or when that power-up's instance
	// was created, whichever is later; zero when it is not powering up.
	PoweringUpSince time.Time
	// Held: the node is in daemon.hold.
	Held bool
	// CoolingUntil is when the node's group's capacity cooldown ends;
	// zero when the group is not cooling.
	CoolingUntil time.Time
	// BreakerOpen: the group's circuit breaker is open (internal/breaker).
	BreakerOpen bool
	// Unlisted: no instance was listed, but the runtime could not list
	// every host (runtime.PartialError): the node may have one there.
	// Nothing that relies on the instance being absent is decided.
	Unlisted bool
}

// Policy holds the knobs of Decide (from the daemon config).
type Policy struct {
	OrphanGrace  time.Duration
	PowerUpLimit time.Duration
	HoldPrefix   string
	// CapacityCooldown: 0 = no cooldowns.
	CapacityCooldown time.Duration
}

// Action is one decision.
type Action struct {
	Kind  Kind
	Node  string
	Group string
	Saw   string // what was seen, for the log and the event
	// Image and Job: KindReimage's target image name and the job it is
	// for; KindWarm's image name (a warm.images pool; Job ""); "" otherwise.
	Image, Job string
}

// Decide returns the action for e at time now, and false when there is
// nothing to do. It is pure: no I/O, no clock, no state.
//
// The rules, first match wins:
//   - an instance the config does not know (Entry.Unknown): KindUnknown,
//     reported and never removed, whatever Slurm says;
//   - an instance whose node Slurm does not list, or lists POWERED_DOWN
//     (not powering up or down), older than OrphanGrace, and whose node
//     Slurm does not show busy (ALLOCATED, MIXED, COMPLETING, POWERING_UP):
//     KindOrphan;
//   - nothing else for a node in no group or unknown to Slurm, nor for a
//     node without an instance that is Unlisted (a host did not answer);
//   - a node with a reboot pending (REBOOT_REQUESTED or REBOOT_ISSUED) is
//     Slurm's, whatever its reason: REBOOT_ISSUED, not held, not powering
//     and no power down pending, with its instance exited, only created or
//     gone: KindReboot; nothing else is decided for it (its container
//     stopping is the reboot, not a dead node);
//   - a node with a reason that is neither ours nor the health daemon's is
//     an admin's: left alone; so is a held node;
//   - with CapacityCooldown: out of service (DOWN, powering down or
//     powered down; not powering up) with the resume hook's Capacity
//     reason: KindCapacity; in a cooling group, IDLE+POWERED_DOWN, not
//     drained, no reason or one of ours, no instance: KindCoolDrain;
//   - DOWN or DRAIN with our Cooldown reason, not powering up, the group
//     no longer cooling: KindCoolEnd;
//   - a node up in Slurm (IDLE, ALLOCATED, MIXED or COMPLETING, not DOWN,
//     not powering up, down or powered down) whose instance is missing,
//     exited or only created: KindDead;
//   - DOWN with our DeadNode/StuckPowerUp reason, not powering and no
//     power down pending (the power down did not take): KindDead again;
//   - POWERING_UP for PowerUpLimit with no instance: KindStuck;
//   - DRAIN with a health reason (or our Unhealthy one), IDLE, not
//     completing, no power down pending: KindUnhealthy;
//   - in a group whose breaker is open, no instance, not powering up or
//     down: IDLE+POWERED_DOWN, not drained, no reason or one of ours: or
//     DOWN with the reason a hook set after a failure (Config, Transient,
//     ResumeTimeout, ...): KindBreaker; with the breaker closed, DOWN or
//     DRAIN with our BreakerOpen reason, not powering up: KindBreakerEnd;
//   - POWERED_DOWN, DOWN or DRAIN, with a reason carrying one of our
//     reconciler codes, no instance: KindReenable.
func Decide(now time.Time, p Policy, e Entry) (Action, bool) {
	n, in := e.Node, e.Inst
	act := func(k Kind, format string, args ...any) (Action, bool) {
		return Action{Kind: k, Node: e.Name, Group: e.Group, Saw: fmt.Sprintf(format, args...)}, true
	}
	if in != nil && e.Unknown != "" {
		return act(KindUnknown, "instance %s %s on host %s: %s; Slurm: %s", in.State, in.ID, in.Host, e.Unknown, StateOf(n))
	}
	if in != nil {
		old := in.Created.IsZero() || now.Sub(in.Created) >= p.OrphanGrace
		switch {
		case !old, e.Group == "", Busy(n):
		case n == nil:
			return act(KindOrphan, "instance %s, node unknown to Slurm (or hidden powered down)", in.State)
		case n.Has(slurm.FlagPoweredDown) && !n.Has(slurm.FlagPoweringUp) && !n.Has(slurm.FlagPoweringDown):
			return act(KindOrphan, "instance %s, node %s", in.State, StateOf(n))
		}
	}
	if e.Group == "" || n == nil || (in == nil && e.Unlisted) {
		return Action{}, false
	}
	held := e.Held || (p.HoldPrefix != "" && strings.Contains(n.Reason, p.HoldPrefix))
	if n.Has(slurm.FlagRebootRequested) || n.Has(slurm.FlagRebootIssued) {
		// The reason is Slurm's ("reboot requested : reboot issued") or
		// the admin's (reason=): the reboot is asked for all the same.
		if n.Has(slurm.FlagRebootIssued) && !held && !n.Has(slurm.FlagPoweredDown) && !n.Has(slurm.FlagPoweringUp) &&
			!n.Has(slurm.FlagPoweringDown) && !n.Has(slurm.FlagPowerDown) {
			switch {
			case in == nil:
				return act(KindReboot, "node %s, reboot issued, no instance", StateOf(n))
			case in.State == runtime.StateExited || in.State == runtime.StateCreated:
				return act(KindReboot, "node %s, reboot issued, instance %s %s", StateOf(n), in.State, in.ID)
			}
		}
		return Action{}, false
	}
	why := reason.Parse(n.Reason)
	if n.Reason != "" && why.Owner == reason.Other {
		return Action{}, false // an admin's reason: never ours to change
	}
	if held {
		return Action{}, false
	}
	powering := n.Has(slurm.FlagPoweredDown) || n.Has(slurm.FlagPoweringUp) || n.Has(slurm.FlagPoweringDown)
	if p.CapacityCooldown > 0 {
		cooling := now.Before(e.CoolingUntil)
		switch {
		case why.Family == reason.CapacityFailure && outOfService(n):
			return act(KindCapacity, "node %s after a capacity failure: %s", StateOf(n), n.Reason)
		case cooling && n.Has(slurm.FlagPoweredDown) && !n.Has(slurm.FlagPoweringUp) && !n.Has(slurm.FlagPoweringDown) &&
			n.State == slurm.StateIdle && !n.Has(slurm.FlagDrain) && (n.Reason == "" || why.Code != "") && in == nil:
			return act(KindCoolDrain, "node %s, group %s cooling down until %s", StateOf(n), e.Group, e.CoolingUntil.UTC().Format(time.RFC3339))
		}
	}
	if !now.Before(e.CoolingUntil) && why.Code == reason.Cooldown && !n.Has(slurm.FlagPoweringUp) &&
		(n.State == slurm.StateDown || n.Has(slurm.FlagDrain)) {
		return act(KindCoolEnd, "node %s, group %s cooldown over", StateOf(n), e.Group)
	}
	steady := !n.Has(slurm.FlagPoweringUp) && !n.Has(slurm.FlagPoweringDown)
	switch {
	case e.BreakerOpen && steady && in == nil && n.Has(slurm.FlagPoweredDown) && n.State == slurm.StateIdle &&
		!n.Has(slurm.FlagDrain) && (n.Reason == "" || why.Code != ""):
		return act(KindBreaker, "node %s, group %s circuit breaker open", StateOf(n), e.Group)
	case e.BreakerOpen && steady && in == nil && n.State == slurm.StateDown && why.Family == reason.LaunchFailure:
		return act(KindBreaker, "node %s after a failed launch, group %s circuit breaker open: %s", StateOf(n), e.Group, n.Reason)
	case !e.BreakerOpen && why.Code == reason.BreakerOpen && !n.Has(slurm.FlagPoweringUp) &&
		(n.State == slurm.StateDown || n.Has(slurm.FlagDrain)):
		return act(KindBreakerEnd, "node %s, group %s circuit breaker re-armed", StateOf(n), e.Group)
	}
	up := n.State == slurm.StateIdle || n.State == slurm.StateAllocated || n.State == slurm.StateMixed || n.Has(slurm.FlagCompleting)
	if up && n.State != slurm.StateDown && !powering {
		switch {
		case in == nil:
			return act(KindDead, "node %s, no instance", StateOf(n))
		case in.State == runtime.StateExited || in.State == runtime.StateCreated:
			return act(KindDead, "node %s, instance %s", StateOf(n), in.State)
		}
	}
	// Our DOWN whose power down did not take (or was lost): again.
	if n.State == slurm.StateDown && !powering && !n.Has(slurm.FlagPowerDown) &&
		(why.Code == reason.DeadNode || why.Code == reason.StuckPowerUp) {
		return act(KindDead, "node %s with our reason %q, not powering down", StateOf(n), n.Reason)
	}
	if n.Has(slurm.FlagPoweringUp) && in == nil && !e.PoweringUpSince.IsZero() && now.Sub(e.PoweringUpSince) >= p.PowerUpLimit {
		return act(KindStuck, "node %s for %s, no instance", StateOf(n), now.Sub(e.PoweringUpSince).Round(time.Second))
	}
	if n.Has(slurm.FlagDrain) && (why.Owner == reason.Health || why.Code == reason.Unhealthy) &&
		n.State == slurm.StateIdle && !n.Has(slurm.FlagCompleting) && !powering && !n.Has(slurm.FlagPowerDown) {
		return act(KindUnhealthy, "node %s drained by health: %s", StateOf(n), n.Reason)
	}
	if n.Has(slurm.FlagPoweredDown) && !n.Has(slurm.FlagPoweringUp) && !n.Has(slurm.FlagPoweringDown) && in == nil &&
		(n.State == slurm.StateDown || n.Has(slurm.FlagDrain)) && why.Family == reason.Failover {
		return act(KindReenable, "node %s, reason %q", StateOf(n), n.Reason)
	}
	return Action{}, false
}

// Busy reports whether Slurm shows n in use or about to be: ALLOCATED,
// MIXED, COMPLETING (jobs on it) or POWERING_UP (a job waits for it). A
// busy node's instance is never removed as an orphan. nil is not busy.
func Busy(n *slurm.Node) bool {
	return n != nil && (n.State == slurm.StateAllocated || n.State == slurm.StateMixed ||
		n.Has(slurm.FlagCompleting) || n.Has(slurm.FlagPoweringUp))
}

// outOfService reports whether n is DOWN, powering down or powered down,
// and not powering up: a reason on it describes why it is not in use
// (the resume hook keeps its failure reason on a node it returned to the
// pool, IDLE+POWERED_DOWN).
func outOfService(n *slurm.Node) bool {
	return !n.Has(slurm.FlagPoweringUp) &&
		(n.State == slurm.StateDown || n.Has(slurm.FlagPoweredDown) || n.Has(slurm.FlagPoweringDown))
}

// StateOf summarises a Slurm node's state for logs, events and metrics:
// absent, powering_up, powering_down, reboot_issued, powered_down, down, drain, or the
// lower-case base state (idle, allocated, mixed, ...), with "+drain" or
// "+completing" where they apply. nil is "absent".
func StateOf(n *slurm.Node) string {
	if n == nil {
		return "absent"
	}
	switch {
	case n.Has(slurm.FlagPoweringUp):
		return "powering_up"
	case n.Has(slurm.FlagPoweringDown):
		return "powering_down"
	case n.Has(slurm.FlagRebootIssued):
		return "reboot_issued"
	case n.Has(slurm.FlagPoweredDown):
		if n.State == slurm.StateDown {
			return "down+powered_down"
		}
		if n.Has(slurm.FlagDrain) {
			return "drain+powered_down"
		}
		return "powered_down"
	}
	s := strings.ToLower(n.State)
	if n.Has(slurm.FlagDrain) {
		s += "+drain"
	}
	if n.Has(slurm.FlagCompleting) {
		s += "+completing"
	}
	return s
}

// Warm returns the warm-pool power-ups for the groups of pools (group ->
// its warm config; groups with Idle 0 are skipped) given the round's
// entries; busy holds the nodes that already have an action this round.
// Per group it counts idle nodes (IDLE, up, not drained) and nodes powering
// up as warm, every node not powered down (or powering up) as powered up,
// and powers up, in config order, as many idle powered-down nodes as the
// pool lacks, never above Max (0 = the group's size) powered-up nodes. A
// candidate has no reason at all (a stale one may be a capacity failure),
// no instance, and its group is neither cooling nor behind an open
// breaker. With warm.images, the warm nodes are also counted per image
// (warmImage), and the power-ups go first to the named images short of
// their count (in name order; the Action's Image names it), the rest to
// the default: the pool's total decides how many nodes are powered up,
// the names which image they boot; a pool that has its total in other
// images warms nothing more. It is pure: no I/O, no clock, no state.
func Warm(now time.Time, pools map[string]conf.WarmConf, entries []Entry, busy map[string]bool) []Action {
	type tally struct {
		size, warm, up int
		byImage        map[string]int
		cand           []string
	}
	t := map[string]*tally{}
	for i := range entries {
		e := &entries[i]
		w, ok := pools[e.Group]
		if !ok || w.Idle <= 0 {
			continue
		}
		g := t[e.Group]
		if g == nil {
			g = &tally{byImage: map[string]int{}}
			t[e.Group] = g
		}
		g.size++
		n := e.Node
		if n == nil {
			continue
		}
		switch {
		case n.Has(slurm.FlagPoweringUp):
			g.warm++
			g.up++
			g.byImage[warmImage(w, e)]++
		case n.Has(slurm.FlagPoweredDown) || n.Has(slurm.FlagPoweringDown):
			if n.Has(slurm.FlagPoweredDown) && !n.Has(slurm.FlagPoweringDown) && n.State == slurm.StateIdle &&
				!n.Has(slurm.FlagDrain) && n.Reason == "" && e.Inst == nil && !e.Unlisted && !e.BreakerOpen &&
				!now.Before(e.CoolingUntil) && !busy[e.Name] {
				g.cand = append(g.cand, e.Name)
			}
		default:
			g.up++
			if n.State == slurm.StateIdle && !n.Has(slurm.FlagDrain) && !n.Has(slurm.FlagCompleting) {
				g.warm++
				g.byImage[warmImage(w, e)]++
			}
		}
	}
	var out []Action
	for _, grp := range slices.Sorted(maps.Keys(t)) {
		g, w := t[grp], pools[grp]
		limit := w.Max
		if limit <= 0 {
			limit = g.size
		}
		k := max(min(w.Idle-g.warm, limit-g.up, len(g.cand)), 0)
		saw := fmt.Sprintf("group %s: %d idle or powering up of warm.idle %d, %d powered up of max %d", grp, g.warm, w.Idle, g.up, limit)
		var images []string // the image of each power-up, named ones first
		for _, name := range slices.Sorted(maps.Keys(w.Images)) {
			for range max(w.Images[name]-g.byImage[name], 0) {
				images = append(images, name)
			}
		}
		for i, name := range g.cand[:k] {
			a := Action{Kind: KindWarm, Node: name, Group: grp, Saw: saw}
			if i < len(images) {
				a.Image = images[i]
				a.Saw += fmt.Sprintf("; image %s: %d warm of warm.images %d", images[i], g.byImage[images[i]], w.Images[images[i]])
			}
			out = append(out, a)
		}
	}
	return out
}

// warmImage is the image a warm node of a pool with warm.images counts
// for: its instance's image name, or, for a node powering up without an
// instance yet, the one name of w.Images among its Slurm active features
// (what the warm power-up set, and what the resume hook boots); "" (the
// default) otherwise.
func warmImage(w conf.WarmConf, e *Entry) string {
	if len(w.Images) == 0 {
		return ""
	}
	if e.Inst != nil {
		return e.Inst.Image
	}
	var name string
	for _, f := range e.Node.ActiveFeatures {
		if _, ok := w.Images[f]; ok {
			if name != "" {
				return "" // several: the hook boots the default
			}
			name = f
		}
	}
	return name
}
