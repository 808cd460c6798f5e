package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
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
	// Lock, when set, is held while the round writes the breaker state
	// (the state lock, power.lock, internal/nodelock). It returns the
	// release func. nil: no lock.
	Lock func(ctx context.Context) (unlock func(), err error)
	// LockNodes, when set, takes the locks of the nodes the round is about
	// to act on (the node locks the power hooks hold while they work on a
	// node, internal/nodelock) and holds them while the round re-reads
	// Slurm and acts, so it never acts on a node a hook works on. It
	// returns the release func and, for each node whose lock it did not
	// get, why; that node's action is put off to a later round. nil: no
	// lock.
	LockNodes func(ctx context.Context, nodes []string) (unlock func(), missed map[string]error, err error)
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// StateDir holds the hooks' breaker state and launch counts
	// (internal/breaker), read every round, written under Lock, and the
	// failed nodes' saved logs (internal/nodelog). "" = no circuit breaker,
	// no launch metrics and no saved logs.
	StateDir string
	// Rebooter asks Slurm for reboots (re-imaging, KindReimage): scontrol
	// (slurmrestd has no reboot endpoint). nil: no re-imaging.
	Rebooter slurm.Rebooter
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
	// Kind is "unknown" for an instance the daemon's config does not
	// know (KindUnknown; Group is then the instance's group label).
	Kind string `json:"kind,omitempty"`
}

// Reconciler runs rounds. Its methods are safe for concurrent use, but
// rounds are serialised.
type Reconciler struct {
	// Set by configure, under round: the config and what it gives.
	d      Deps
	policy Policy
	inv    *conf.Inventory // the config's nodes and groups
	names  []string        // every group node, config order
	held   map[string]bool
	warm   map[string]conf.WarmConf   // groups with a warm pool
	hosts  map[string]map[string]bool // runtime name -> its configured hosts (nil: not checked)
	stamp  os.FileInfo                // the config file as loaded; nil = none or unreadable

	Events  *Ring
	Metrics *Metrics

	round sync.Mutex // one round (or reconfiguration) at a time

	mu       sync.Mutex
	saved    uint64               // events added when last saved (+1; 0 = never saved)
	powerUps map[string]powerUp   // node -> its power-up's timer
	cooling  map[string]time.Time // group -> end of its capacity cooldown
	breaker  *breaker.State       // as of the last round
	status   Status
	reported map[string]string // node -> ID of the unknown instance already reported
}

// New returns a Reconciler for d.Config's groups and daemon section (a
// daemon run reloads it: RunOptions.Reload). It does not block beyond a
// stat of the config file.
func New(d Deps) (*Reconciler, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	r := &Reconciler{
		Events:   NewRing(d.Config.Daemon.Events),
		Metrics:  NewMetrics(),
		powerUps: map[string]powerUp{},
		cooling:  map[string]time.Time{},
		reported: map[string]string{},
	}
	if err := r.configure(d, statConfig(d.Config.File)); err != nil {
		return nil, err
	}
	return r, nil
}

// configure sets d, what its config gives, and stamp (the config file as
// read for d, nil = none), all or nothing: an error changes nothing. The
// caller holds r.round or owns r alone.
func (r *Reconciler) configure(d Deps, stamp os.FileInfo) error {
	c := d.Config
	held, warm, hosts := map[string]bool{}, map[string]conf.WarmConf{}, map[string]map[string]bool{}
	for i := range c.Groups {
		g := &c.Groups[i]
		if d.Runtimes[g.Runtime] == nil {
			return fmt.Errorf("group %s: runtime %q is not available", g.Name, g.Runtime)
		}
		if g.Warm.Idle > 0 {
			warm[g.Name] = g.Warm
		}
	}
	if len(c.Podman.Hosts) > 0 {
		hosts["podman"] = map[string]bool{}
		for _, h := range c.Podman.Hosts {
			hosts["podman"][h.Name] = true
		}
	}
	for _, h := range c.Daemon.Hold {
		names, err := hostlist.Expand(h)
		if err != nil {
			return fmt.Errorf("daemon.hold %q: %w", h, err)
		}
		for _, n := range names {
			held[n] = true
		}
	}
	r.d = d
	r.policy = Policy{
		OrphanGrace:  c.Daemon.OrphanGrace,
		PowerUpLimit: c.Daemon.PowerUpLimit,
		HoldPrefix:   c.Daemon.HoldPrefix,

		CapacityCooldown: c.Daemon.CapacityCooldown,
	}
	r.inv = c.Inventory()
	r.names = r.inv.Nodes()
	r.held, r.warm, r.hosts = held, warm, hosts
	r.stamp = stamp
	return nil
}

// view is one round's joined view.
type view struct {
	entries []Entry
	index   map[string]int
	rtOf    map[string]string  // node -> runtime name that listed its instance
	jobs    []slurm.PendingJob // the pending jobs, read when some group can be re-imaged
}

// Round runs one reconcile round: list Slurm's nodes, then every runtime's
// instances (in that order, so an instance launched in between is young and
// never taken for an orphan), join, decide, re-read Slurm and the runtimes
// under the locks of the nodes acted on (Deps.LockNodes) to confirm, and
// act. Slurm or a runtime not answering skips the round (error wrapping
// ErrSkipped): nothing is done on half a view. A runtime whose List is
// partial (runtime.PartialError: some of its hosts did not answer) does
// not: nodes with a listed instance are decided as usual, and nodes without
// one are left alone (Entry.Unlisted). The error
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
	acts := r.unreported(v, r.decide(now, v))
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
		r.markReported(v, acts)
		r.finish(start, v, acts, nil)
		return acts, errors.Join(errs...)
	}
	r.finish(start, v, nil, nil)
	return nil, nil
}

// unreported drops the KindUnknown actions on instances already reported
// (by ID), so each unknown instance is logged and kept as an event once,
// and forgets the reported instances that are gone or known now.
func (r *Reconciler) unreported(v *view, acts []Action) []Action {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, id := range r.reported {
		if i, ok := v.index[n]; !ok || v.entries[i].Inst == nil || v.entries[i].Inst.ID != id || v.entries[i].Unknown == "" {
			delete(r.reported, n)
		}
	}
	return slices.DeleteFunc(acts, func(a Action) bool {
		return a.Kind == KindUnknown && r.reported[a.Node] != ""
	})
}

// markReported remembers the unknown instances acts reported.
func (r *Reconciler) markReported(v *view, acts []Action) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range acts {
		if i, ok := v.index[a.Node]; ok && a.Kind == KindUnknown && v.entries[i].Inst != nil {
			r.reported[a.Node] = v.entries[i].Inst.ID
		}
	}
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

// Status returns the last round's status. Never blocks.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}
