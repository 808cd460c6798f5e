package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// ErrSkipped is wrapped by Round's error when the round was skipped because
// Slurm or a runtime did not answer: nothing was done.
var ErrSkipped = errors.New("round skipped")

// Deps are what a Reconciler uses. Runtimes maps a group's runtime name to
// its implementation.
type Deps struct {
	Config   *conf.Config
	Runtimes map[string]runtime.Runtime
	Slurm    slurm.Client
	Log      *slog.Logger
	// Lock, when set, is held while the round re-reads Slurm and acts, so
	// that no power hook runs in between (the hooks' power.lock). It
	// returns the release func. nil: no lock.
	Lock func(ctx context.Context) (unlock func(), err error)
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// StateDir holds the hooks' breaker state and launch counts
	// (internal/breaker), read every round, written under Lock. "" = no
	// circuit breaker and no launch metrics.
	StateDir string
}

// Status is the last round's view, saved for `slurm-elastic status`.
type Status struct {
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration_ns"`
	Result   string        `json:"result"` // ok, skipped
	Error    string        `json:"error,omitempty"`
	Actions  int           `json:"actions"`
	Groups   []GroupStatus `json:"groups"`
	Nodes    []NodeStatus  `json:"nodes"`
}

// GroupStatus counts a group's nodes by StateOf.
type GroupStatus struct {
	Name      string         `json:"name"`
	States    map[string]int `json:"states"`
	Instances int            `json:"instances"`
	// CoolingUntil is the end of the group's capacity cooldown; nil = none.
	CoolingUntil *time.Time `json:"cooling_until,omitempty"`
	// Breaker is the group's circuit breaker; nil = never failed.
	Breaker *breaker.Group `json:"breaker,omitempty"`
}

// NodeStatus is one node's row.
type NodeStatus struct {
	Name     string `json:"name"`
	Group    string `json:"group"`
	Slurm    string `json:"slurm"`
	Instance string `json:"instance"` // runtime state, "-" = none
	Reason   string `json:"reason,omitempty"`
}

// Reconciler runs rounds. Its methods are safe for concurrent use, but
// rounds are serialised.
type Reconciler struct {
	d       Deps
	policy  Policy
	names   []string          // every group node, config order
	groupOf map[string]string // node -> group
	held    map[string]bool
	warm    map[string]conf.WarmConf // groups with a warm pool
	Events  *Ring
	Metrics *Metrics

	round sync.Mutex // one round at a time

	mu      sync.Mutex
	saved   uint64               // events added when last saved (+1; 0 = never saved)
	since   map[string]time.Time // node -> first seen POWERING_UP
	cooling map[string]time.Time // group -> end of its capacity cooldown
	breaker *breaker.State       // as of the last round
	status  Status
}

// New returns a Reconciler for d.Config's groups and daemon section. It
// expands every group's hostlist once (a config change needs a restart).
// It does not block.
func New(d Deps) (*Reconciler, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	c := d.Config
	r := &Reconciler{
		d: d,
		policy: Policy{
			OrphanGrace:  c.Daemon.OrphanGrace,
			PowerUpLimit: c.Daemon.PowerUpLimit,
			HoldPrefix:   c.Daemon.HoldPrefix,

			CapacityCooldown: c.Daemon.CapacityCooldown,
		},
		groupOf: map[string]string{},
		held:    map[string]bool{},
		warm:    map[string]conf.WarmConf{},
		Events:  NewRing(c.Daemon.Events),
		Metrics: NewMetrics(),
		since:   map[string]time.Time{},
		cooling: map[string]time.Time{},
	}
	for i := range c.Groups {
		g := &c.Groups[i]
		if d.Runtimes[g.Runtime] == nil {
			return nil, fmt.Errorf("group %s: runtime %q is not available", g.Name, g.Runtime)
		}
		if g.Warm.Idle > 0 {
			r.warm[g.Name] = g.Warm
		}
		for _, n := range c.GroupNodes(g) {
			if _, dup := r.groupOf[n]; !dup {
				r.names = append(r.names, n)
				r.groupOf[n] = g.Name
			}
		}
	}
	for _, h := range c.Daemon.Hold {
		names, err := hostlist.Expand(h)
		if err != nil {
			return nil, fmt.Errorf("daemon.hold %q: %w", h, err)
		}
		for _, n := range names {
			r.held[n] = true
		}
	}
	return r, nil
}

// view is one round's joined view.
type view struct {
	entries []Entry
	index   map[string]int
	rtOf    map[string]string // node -> runtime name that listed its instance
}

// Round runs one reconcile round: list Slurm's nodes, then every runtime's
// instances (in that order, so an instance launched in between is young and
// never taken for an orphan), join, decide, re-read Slurm under Deps.Lock
// to confirm, and act. Slurm or a runtime not answering skips the round
// (error wrapping ErrSkipped): nothing is done on half a view. The error
// otherwise joins the failed actions. Every decision is logged and kept as
// an event. Round blocks until done or ctx ends and is idempotent: a round
// run again on the same world decides the same.
func (r *Reconciler) Round(ctx context.Context) ([]Action, error) {
	r.round.Lock()
	defer r.round.Unlock()
	start := r.d.Now()
	v, err := r.look(ctx)
	if err != nil {
		r.d.Log.Warn("round skipped: nothing done", "error", err)
		r.finish(start, nil, nil, err)
		return nil, err
	}
	now := r.d.Now()
	r.trackPoweringUp(v, now)
	r.trackCooldowns(v, now)
	r.trackBreakers(ctx, v, now)
	acts := r.decide(now, v.entries)
	if len(acts) > 0 {
		var unlock func()
		acts, unlock, err = r.confirm(ctx, v, acts)
		if err != nil {
			r.d.Log.Warn("round skipped: cannot confirm the decisions; nothing done", "error", err)
			r.finish(start, v, nil, err)
			return nil, err
		}
		errs := r.act(ctx, v, acts)
		unlock()
		r.finish(start, v, acts, nil)
		return acts, errors.Join(errs...)
	}
	r.finish(start, v, nil, nil)
	return nil, nil
}

// look reads both views and joins them.
func (r *Reconciler) look(ctx context.Context) (*view, error) {
	nodes, err := r.d.Slurm.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: slurm: nodes: %w", ErrSkipped, err)
	}
	v := &view{entries: make([]Entry, len(r.names)), index: make(map[string]int, len(r.names)), rtOf: map[string]string{}}
	for i, n := range r.names {
		v.entries[i] = Entry{Name: n, Group: r.groupOf[n], Held: r.held[n]}
		v.index[n] = i
	}
	r.join(v, nodes)
	for _, name := range slices.Sorted(maps.Keys(r.d.Runtimes)) {
		insts, err := r.d.Runtimes[name].List(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: runtime %s: list: %w", ErrSkipped, name, err)
		}
		for i := range insts {
			in := &insts[i]
			idx, ok := v.index[in.Name]
			if !ok {
				idx = len(v.entries)
				v.entries = append(v.entries, Entry{Name: in.Name})
				v.index[in.Name] = idx
			}
			if v.entries[idx].Inst != nil {
				r.d.Log.Warn("two instances carry one node name; acting on the first", "node", in.Name,
					"first", v.entries[idx].Inst.ID, "second", in.ID)
				continue
			}
			v.entries[idx].Inst = in
			v.rtOf[in.Name] = name
		}
	}
	return v, nil
}

// join sets each group node's Slurm view.
func (r *Reconciler) join(v *view, nodes []slurm.Node) {
	for i := range nodes {
		if idx, ok := v.index[nodes[i].Name]; ok && v.entries[idx].Group != "" {
			v.entries[idx].Node = &nodes[i]
		}
	}
}

// trackPoweringUp keeps, per node, when it was first seen POWERING_UP.
func (r *Reconciler) trackPoweringUp(v *view, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool)
	for i := range v.entries {
		e := &v.entries[i]
		if e.Node == nil || !e.Node.Has(slurm.FlagPoweringUp) {
			continue
		}
		seen[e.Name] = true
		t, ok := r.since[e.Name]
		if !ok {
			t = now
			r.since[e.Name] = now
		}
		e.PoweringUpSince = t
	}
	for n := range r.since {
		if !seen[n] {
			delete(r.since, n)
		}
	}
}

// trackCooldowns starts a group's capacity cooldown when one of its nodes
// is out of service after a Capacity-class launch failure, ends the cooldowns that
// are over, and sets each entry's CoolingUntil.
func (r *Reconciler) trackCooldowns(v *view, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for g, until := range r.cooling {
		if !now.Before(until) {
			delete(r.cooling, g)
			r.d.Log.Info("capacity cooldown over: the group's nodes are re-enabled", "group", g)
		}
	}
	if r.policy.CapacityCooldown > 0 {
		for i := range v.entries {
			e := &v.entries[i]
			if e.Group == "" || e.Node == nil || !hasCode(e.Node.Reason, CodeCapacity) || !outOfService(e.Node) {
				continue
			}
			if _, ok := r.cooling[e.Group]; !ok {
				until := now.Add(r.policy.CapacityCooldown)
				r.cooling[e.Group] = until
				r.d.Log.Warn("capacity cooldown started: the group's idle nodes are drained so Slurm places jobs elsewhere",
					"group", e.Group, "node", e.Name, "saw", e.Node.Reason, "until", until.UTC().Format(time.RFC3339))
			}
		}
	}
	for i := range v.entries {
		v.entries[i].CoolingUntil = r.cooling[v.entries[i].Group]
	}
}

// trackBreakers reads the breaker state the hooks keep, re-arms the
// breakers whose daemon.breaker_reset is over, counts a success for each
// group with failures where a node launched after the last failure is up
// in Slurm (registered) with a running instance, and sets each entry's
// BreakerOpen. Changes are written under Deps.Lock (the hooks' lock),
// re-read first so no hook update is lost. An unreadable state is logged
// and treated as all closed.
func (r *Reconciler) trackBreakers(ctx context.Context, v *view, now time.Time) {
	if r.d.StateDir == "" {
		return
	}
	dc := r.d.Config.Daemon
	st, err := breaker.Load(r.d.StateDir)
	if err != nil {
		r.d.Log.Error("breaker state unreadable: circuit breakers ignored this round", "error", err)
		return
	}
	succ := map[string]string{} // group -> node that came up
	for i := range v.entries {
		e := &v.entries[i]
		b := st.Get(e.Group)
		if e.Group == "" || b.Open || b.Failures == 0 || succ[e.Group] != "" || !cameUp(e, b.LastFailureAt) {
			continue
		}
		succ[e.Group] = e.Name
	}
	expire := false
	for _, g := range st.Groups {
		expire = expire || (g.Open && dc.BreakerReset > 0 && !now.Before(g.OpenedAt.Add(dc.BreakerReset)))
	}
	if len(succ) > 0 || expire {
		if err := r.updateBreakers(ctx, now, succ, &st); err != nil {
			r.d.Log.Warn("cannot update the breaker state this round", "error", err)
		}
	}
	r.mu.Lock()
	r.breaker = st
	r.mu.Unlock()
	for i := range v.entries {
		v.entries[i].BreakerOpen = st.IsOpen(v.entries[i].Group)
	}
}

// updateBreakers applies re-arms and successes to the breaker file under
// the power lock and sets *st to what it wrote.
func (r *Reconciler) updateBreakers(ctx context.Context, now time.Time, succ map[string]string, st **breaker.State) error {
	dc := r.d.Config.Daemon
	if r.d.Lock != nil {
		unlock, err := r.d.Lock(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	fresh, err := breaker.Load(r.d.StateDir)
	if err != nil {
		return err
	}
	for _, g := range fresh.Expire(now, dc.BreakerReset, dc.BreakerThreshold) {
		r.d.Log.Warn("circuit breaker re-armed after daemon.breaker_reset (half-open: one more failure opens it again)",
			"group", g, "breaker_reset", dc.BreakerReset.String())
		r.Events.Add(Event{Time: now, Group: g, Kind: KindBreakerEnd, Saw: "breaker open for " + dc.BreakerReset.String(), Did: "re-armed (half-open)"})
	}
	for _, g := range slices.Sorted(maps.Keys(succ)) {
		if b := fresh.Get(g); fresh.Success(g) {
			r.d.Log.Info("circuit breaker count reset: a node of the group came up", "group", g, "node", succ[g], "failures_were", b.Failures)
		}
	}
	if err := breaker.Save(r.d.StateDir, fresh); err != nil {
		return err
	}
	*st = fresh
	return nil
}

// cameUp reports whether e's node is up in Slurm (registered) with a
// running instance created after since.
func cameUp(e *Entry, since time.Time) bool {
	n, in := e.Node, e.Inst
	return n != nil && in != nil && in.State == runtime.StateRunning && in.Created.After(since) &&
		(n.State == slurm.StateIdle || n.State == slurm.StateAllocated || n.State == slurm.StateMixed) &&
		!n.Has(slurm.FlagPoweringUp) && !n.Has(slurm.FlagPoweringDown) && !n.Has(slurm.FlagPoweredDown)
}

// Breakers returns the breaker state as of the last round (nil when the
// reconciler has no state dir). Never blocks.
func (r *Reconciler) Breakers() *breaker.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.breaker
}

// Cooling returns the groups in a capacity cooldown and when each ends.
// Never blocks.
func (r *Reconciler) Cooling() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.cooling)
}

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

// confirm takes the lock, re-reads Slurm and keeps the actions Decide still
// takes on the fresh view (the instances are as listed). The caller calls
// unlock when done acting.
func (r *Reconciler) confirm(ctx context.Context, v *view, acts []Action) ([]Action, func(), error) {
	unlock := func() {}
	if r.d.Lock != nil {
		u, err := r.d.Lock(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: take the power lock: %w", ErrSkipped, err)
		}
		unlock = u
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

// act carries out acts, logs each outcome and keeps it as an event.
func (r *Reconciler) act(ctx context.Context, v *view, acts []Action) []error {
	by := map[Kind][]Action{}
	for _, a := range acts {
		by[a.Kind] = append(by[a.Kind], a)
	}
	var errs []error
	for _, k := range Kinds {
		list := by[k]
		if len(list) == 0 {
			continue
		}
		var did string
		var res map[string]error
		switch k {
		case KindOrphan:
			did, res = "instance removed", r.terminate(ctx, v, list)
		case KindDead:
			did, res = "set DOWN (jobs requeued), then POWER_DOWN_FORCE",
				r.failNodes(ctx, list, slurm.Reason(CodeDeadNode, "instance gone or exited; jobs requeued; powered down for a fresh launch"))
		case KindStuck:
			did, res = "set DOWN, then POWER_DOWN_FORCE",
				r.failNodes(ctx, list, slurm.Reason(CodeStuckPowerUp, fmt.Sprintf("powering up for over %s with no instance; reset", r.policy.PowerUpLimit)))
		case KindUnhealthy:
			did, res = "drain reason taken over, then POWER_DOWN", r.replace(ctx, v, list)
		case KindReenable:
			did, res = "RESUME: may be launched again", r.update(ctx, names(list), slurm.NodeUpdate{State: slurm.SetResume})
		case KindCapacity:
			did, res = "reason taken over (Code:Cooldown); lifted when the group's cooldown ends", r.coolDown(ctx, v, list)
		case KindCoolDrain:
			did, res = "DRAIN (Code:Cooldown) until the cooldown ends", r.coolDrain(ctx, v, list)
		case KindCoolEnd:
			did, res = "RESUME: cooldown over, may be launched again", r.update(ctx, names(list), slurm.NodeUpdate{State: slurm.SetResume})
		case KindBreaker:
			did, res = "out of scheduling (Code:BreakerOpen) until the breaker is re-armed", r.breakerHold(ctx, v, list)
		case KindBreakerEnd:
			did, res = "RESUME: circuit breaker re-armed, may be launched again", r.update(ctx, names(list), slurm.NodeUpdate{State: slurm.SetResume})
		case KindWarm:
			did, res = "POWER_UP: warm pool", r.update(ctx, names(list), slurm.NodeUpdate{State: slurm.SetPowerUp})
		}
		for _, a := range list {
			err := res[a.Node]
			ev := Event{Time: r.d.Now(), Node: a.Node, Group: a.Group, Kind: a.Kind, Saw: a.Saw, Did: did}
			if err != nil {
				ev.Did = "failed: " + did
				ev.Error = err.Error()
				errs = append(errs, fmt.Errorf("node %s: %s: %w", a.Node, a.Kind, err))
				r.d.Log.Error("reconcile action failed", "node", a.Node, "group", a.Group, "kind", string(a.Kind), "saw", a.Saw, "did", ev.Did, "error", err)
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
		Concurrency: max(r.d.Config.Suspend.Concurrency, 1),
		Rate:        r.d.Config.Suspend.Rate,
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

// failNodes sets the nodes DOWN with reason (Slurm requeues their jobs at
// once), then POWER_DOWN_FORCE so SuspendProgram removes what is left and
// the next job launches them fresh.
func (r *Reconciler) failNodes(ctx context.Context, acts []Action, reason string) map[string]error {
	ns := names(acts)
	res := r.update(ctx, ns, slurm.NodeUpdate{State: slurm.SetDown, Reason: reason})
	var next []string
	for _, n := range ns {
		if res[n] == nil {
			next = append(next, n)
		}
	}
	for n, err := range r.update(ctx, next, slurm.NodeUpdate{State: slurm.SetPowerDownForce}) {
		if err != nil {
			res[n] = fmt.Errorf("set DOWN, but power down: %w", err)
		}
	}
	return res
}

// replace takes over an unhealthy node's drain reason (so the drain is
// ours to lift once it is down) and powers it down. The node is idle and
// drained: no job runs there, none is started.
func (r *Reconciler) replace(ctx context.Context, v *view, acts []Action) map[string]error {
	out := make(map[string]error, len(acts))
	errs := pool.Run(ctx, len(acts), pool.Options{Concurrency: 8}, func(ctx context.Context, i int) error {
		n := v.entries[v.index[acts[i].Node]].Node
		reason := n.Reason
		if !hasCode(reason, CodeUnhealthy) {
			reason = slurm.Reason(CodeUnhealthy, "replaced: "+strings.TrimSpace(strings.TrimPrefix(reason, HealthReasonPrefix)))
		}
		if err := r.d.Slurm.Update(ctx, []string{n.Name}, slurm.NodeUpdate{State: slurm.SetDrain, Reason: reason}); err != nil {
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
		was := strings.TrimPrefix(e.Node.Reason, slurm.ReasonPrefix+" (Code:"+CodeCapacity+") ")
		reason := slurm.Reason(CodeCooldown, fmt.Sprintf("group %s paused until %s after a capacity failure: %s",
			e.Group, e.CoolingUntil.UTC().Format(time.RFC3339), was))
		return r.d.Slurm.Update(ctx, []string{e.Name}, slurm.NodeUpdate{State: slurm.SetDown, Reason: reason})
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
		reason := slurm.Reason(CodeCooldown, fmt.Sprintf("group %s paused until %s after a capacity failure", g, until.UTC().Format(time.RFC3339)))
		maps.Copy(out, r.update(ctx, ns, slurm.NodeUpdate{State: slurm.SetDrain, Reason: reason}))
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
		reason := slurm.Reason(breaker.Code, breaker.Message(k.group, st.Get(k.group), r.d.Config.Daemon.BreakerReset))
		u := slurm.NodeUpdate{State: slurm.SetDrain, Reason: reason}
		if k.down {
			u.State = slurm.SetDown
		}
		maps.Copy(out, r.update(ctx, by[k], u))
	}
	return out
}

// update applies u to ns in one call; when that call fails it retries node
// by node so one bad node never fails the others. It returns each node's
// error (nil = done).
func (r *Reconciler) update(ctx context.Context, ns []string, u slurm.NodeUpdate) map[string]error {
	out := make(map[string]error, len(ns))
	if len(ns) == 0 {
		return out
	}
	if err := r.d.Slurm.Update(ctx, ns, u); err == nil {
		for _, n := range ns {
			out[n] = nil
		}
		return out
	}
	errs := pool.Run(ctx, len(ns), pool.Options{Concurrency: 8}, func(ctx context.Context, i int) error {
		return r.d.Slurm.Update(ctx, []string{ns[i]}, u)
	})
	for i, n := range ns {
		out[n] = errs[i]
	}
	return out
}

// finish records the round in the status and the metrics.
func (r *Reconciler) finish(start time.Time, v *view, acts []Action, err error) {
	d := r.d.Now().Sub(start)
	st := Status{Time: start, Duration: d, Result: "ok", Actions: len(acts)}
	if err != nil {
		st.Result, st.Error = "skipped", err.Error()
		r.mu.Lock()
		prev := r.status
		r.mu.Unlock()
		st.Groups, st.Nodes = prev.Groups, prev.Nodes // the last view known
	}
	if v != nil && err == nil {
		groups := map[string]*GroupStatus{}
		for _, g := range r.d.Config.Groups {
			groups[g.Name] = &GroupStatus{Name: g.Name, States: map[string]int{}}
		}
		st.Nodes = make([]NodeStatus, 0, len(v.entries))
		for i := range v.entries {
			e := &v.entries[i]
			ns := NodeStatus{Name: e.Name, Group: e.Group, Slurm: StateOf(e.Node), Instance: "-"}
			if e.Node != nil {
				ns.Reason = e.Node.Reason
			}
			if e.Inst != nil {
				ns.Instance = string(e.Inst.State)
			}
			if g := groups[e.Group]; g != nil {
				g.States[ns.Slurm]++
				if e.Inst != nil {
					g.Instances++
				}
			} else {
				ns.Slurm = "(no group) " + ns.Slurm
			}
			st.Nodes = append(st.Nodes, ns)
		}
		r.mu.Lock()
		for g, until := range r.cooling {
			if gs := groups[g]; gs != nil {
				gs.CoolingUntil = &until
			}
		}
		if r.breaker != nil {
			for g, b := range r.breaker.Groups {
				if gs := groups[g]; gs != nil && (b.Open || b.Failures > 0) {
					c := *b
					gs.Breaker = &c
				}
			}
		}
		hooks := r.breaker
		r.mu.Unlock()
		r.Metrics.hooks(hooks, slices.Collect(maps.Keys(groups)))
		for _, g := range r.d.Config.Groups {
			st.Groups = append(st.Groups, *groups[g.Name])
		}
	}
	r.mu.Lock()
	r.status = st
	r.mu.Unlock()
	r.Metrics.round(st)
}

// Status returns the last round's status. Never blocks.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// persisted is the reconciler's state kept across restarts.
type persisted struct {
	PoweringUpSince map[string]time.Time `json:"powering_up_since"`
	CoolingUntil    map[string]time.Time `json:"cooling_until"`
}

// LoadState reads the timers a previous daemon saved in dir; a missing
// file is no error. Call it before the first round. Blocks on the disk.
func (r *Reconciler) LoadState(dir string) error {
	var ev []Event
	if err := readJSON(dir, EventsFile, &ev); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range ev {
		r.Events.Add(e)
	}
	var p persisted
	if err := readJSON(dir, StateFile, &p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	maps.Copy(r.since, p.PoweringUpSince)
	maps.Copy(r.cooling, p.CoolingUntil)
	return nil
}

// SaveState writes the timers, the status and, when there are new ones,
// the events to dir. Blocks on the disk; idempotent.
func (r *Reconciler) SaveState(dir string) error {
	ev, added := r.Events.snapshot()
	r.mu.Lock()
	p := persisted{PoweringUpSince: maps.Clone(r.since), CoolingUntil: maps.Clone(r.cooling)}
	st := r.status
	fresh := r.saved != added+1
	r.mu.Unlock()
	err := errors.Join(writeJSON(dir, StateFile, p), writeJSON(dir, StatusFile, st))
	if fresh {
		if eerr := writeJSON(dir, EventsFile, ev); eerr != nil {
			err = errors.Join(err, eerr)
		} else {
			r.mu.Lock()
			r.saved = added + 1
			r.mu.Unlock()
		}
	}
	return err
}
