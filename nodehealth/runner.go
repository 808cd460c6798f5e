package nodehealth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
)

// Defaults of the Runner's zero fields.
const (
	DefaultInterval     = 10 * time.Second
	DefaultCheckTimeout = 5 * time.Second
	DefaultRetryMin     = time.Second
	DefaultRetryMax     = 30 * time.Second
	DefaultRefresh      = time.Minute
	// abandonGrace is how long past its deadline a check that ignores its
	// context is waited for before it is reported Unknown and left behind.
	abandonGrace = 250 * time.Millisecond
)

// Runner runs the checks for one node, applies the Policy and drains or
// undrains the node through Slurm. Set the fields, then call Round, Act or
// Run; the fields must not change afterwards.
type Runner struct {
	Node   string       // the Slurm NodeName
	Checks []Check      // names must be unique
	Policy Policy       // K and M
	Slurm  slurm.Client // nil: detect and report only
	// Rebooter asks Slurm for the reboots the Policy decides (OpReboot);
	// nil: those decisions drain the node instead.
	Rebooter slurm.Rebooter
	// DryRun logs the decisions and applies none.
	DryRun       bool
	Interval     time.Duration // between polled rounds (Run); default 10s
	CheckTimeout time.Duration // per check; default 5s
	RetryMin     time.Duration // first retry after a Slurm error; default 1s
	RetryMax     time.Duration // backoff cap; default 30s
	// Refresh is the longest time between two reads of the node from
	// Slurm while nothing calls for a decision (no check fails, the node
	// is not drained by us); default 1m. A round with a draining failure,
	// or on a node we drained, always reads it first.
	Refresh time.Duration
	Log     *slog.Logger // nil: discard
	Metrics *Metrics     // nil: none

	mu    sync.Mutex // serialises rounds; guards state and prev
	state State
	prev  map[string]Status // check+component -> status of the last round

	busyMu sync.Mutex
	busy   map[string]bool // checks still running past their deadline

	infoMu sync.RWMutex
	info   *slurm.Node
	infoAt time.Time // when info was read
}

func (r *Runner) setBusy(name string, b bool) {
	r.busyMu.Lock()
	defer r.busyMu.Unlock()
	if r.busy == nil {
		r.busy = map[string]bool{}
	}
	r.busy[name] = b
}

func (r *Runner) isBusy(name string) bool {
	r.busyMu.Lock()
	defer r.busyMu.Unlock()
	return r.busy[name]
}

// NodeInfo returns the node as Slurm last reported it (RealMemory, CPUs,
// Gres), and false before Slurm has answered once. Checks use it for their
// expectations. Never blocks on Slurm; safe for concurrent use.
func (r *Runner) NodeInfo() (slurm.Node, bool) {
	r.infoMu.RLock()
	defer r.infoMu.RUnlock()
	if r.info == nil {
		return slurm.Node{}, false
	}
	return *r.info, true
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// RunChecks runs every check concurrently, each bounded by CheckTimeout,
// and returns their findings sorted by check and component. A check that
// returns nothing gets one OK finding; a check that overruns its deadline
// is reported Unknown and not run again until it returns. Blocks for at
// most CheckTimeout plus a short grace.
func (r *Runner) RunChecks(ctx context.Context) []Finding {
	timeout := cmp.Or(r.CheckTimeout, DefaultCheckTimeout)
	type result struct {
		i        int
		findings []Finding
	}
	out := make([][]Finding, len(r.Checks))
	done := make(chan result, len(r.Checks))
	pending := 0
	for i, c := range r.Checks {
		name := c.Name()
		if r.isBusy(name) {
			out[i] = []Finding{Unknownf(name, "previous run still running past its %s timeout", timeout)}
			continue
		}
		r.setBusy(name, true)
		pending++
		go func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			fs := c.Run(cctx)
			r.Metrics.observeDuration(name, time.Since(start))
			done <- result{i, fs}
		}()
	}
	abandon := time.NewTimer(timeout + abandonGrace)
	defer abandon.Stop()
	got := make([]bool, len(r.Checks))
	for pending > 0 {
		select {
		case res := <-done:
			pending--
			got[res.i] = true
			out[res.i] = res.findings
			r.setBusy(r.Checks[res.i].Name(), false)
			if ctx.Err() != nil && len(res.findings) == 0 {
				out[res.i] = []Finding{Unknownf(r.Checks[res.i].Name(), "interrupted: %v", ctx.Err())}
			}
		case <-abandon.C:
			for i, c := range r.Checks {
				if out[i] == nil && !got[i] {
					out[i] = []Finding{Unknownf(c.Name(), "no answer within %s", timeout)}
				}
			}
			// The stragglers clear their busy mark when they return.
			go func(n int) {
				for range n {
					res := <-done
					r.setBusy(r.Checks[res.i].Name(), false)
				}
			}(pending)
			pending = 0
		}
	}
	var all []Finding
	for i, c := range r.Checks {
		fs := out[i]
		if len(fs) == 0 {
			fs = []Finding{OKf(c.Name(), "ok")}
		}
		for _, f := range fs {
			f.Check = c.Name()
			if f.Component == "" {
				f.Component = c.Name()
			}
			all = append(all, f)
		}
	}
	slices.SortStableFunc(all, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Check, b.Check), cmp.Compare(a.Component, b.Component))
	})
	return all
}

// Round runs one round: reads the node from Slurm when its copy is older
// than Refresh (its RealMemory, CPUs and Gres feed the checks), runs every
// check, records the findings and, when a decision is possible (a check
// fails, or the node is drained by us), reads the node if it did not yet
// and drains or undrains it as the Policy decides. A round on a healthy
// node that is not drained by us asks Slurm nothing (one request per
// Refresh instead of one per round: slurmctld load and, with the scontrol
// backend, one process per round). A Slurm error is returned (wrapped)
// after the findings were recorded: they are never lost, and Act retries
// the decision. Blocks for the checks and up to two Slurm requests; safe
// for concurrent use (rounds serialise).
func (r *Runner) Round(ctx context.Context) ([]Finding, Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var slurmErr error
	fetched := false
	if r.Slurm == nil {
		slurmErr = errNoSlurm
	} else if r.stale() {
		_, slurmErr = r.fetchNode(ctx)
		fetched = true
	}
	findings := r.RunChecks(ctx)
	r.state.Observe(findings)
	r.Metrics.observeRound(findings)
	// Log changes only: a failure that persists is logged once, its
	// recovery once.
	seen := make(map[string]Status, len(findings))
	for _, f := range findings {
		key := f.Check + "\x00" + f.Component
		seen[key] = f.Status
		if prev, ok := r.prev[key]; (ok && prev != f.Status) || (!ok && f.Status != OK) {
			r.log().Info("health finding changed", "node", r.Node, "check", f.Check, "component", f.Component,
				"status", f.Status.String(), "action", string(f.action()), "message", f.Message)
		}
	}
	r.prev = seen
	if errors.Is(slurmErr, errNoSlurm) {
		return findings, Decision{Op: OpNone, Why: errNoSlurm.Error()}, nil
	}
	if slurmErr != nil {
		return findings, Decision{Op: OpNone, Why: "slurm unreachable"}, slurmErr
	}
	if !fetched {
		if !r.mayDecide(findings) {
			d := Decision{Op: OpNone, Why: "nothing to do"}
			r.log().Debug("health decision: nothing to do", "node", r.Node, "op", string(d.Op), "why", d.Why, "slurm", "not asked: no failure, not drained by us")
			return findings, d, nil
		}
		if _, err := r.fetchNode(ctx); err != nil {
			return findings, Decision{Op: OpNone, Why: "slurm unreachable"}, err
		}
	}
	d, err := r.decideAndAct(ctx, false)
	return findings, d, err
}

// stale reports whether the node must be read before the checks run.
func (r *Runner) stale() bool {
	r.infoMu.RLock()
	defer r.infoMu.RUnlock()
	return r.info == nil || time.Since(r.infoAt) >= cmp.Or(r.Refresh, DefaultRefresh)
}

// mayDecide reports whether the Policy could do anything after a round
// with findings: a check fails (it may drain), or the node as last read
// is drained by us (it may undrain). Otherwise the decision is "nothing
// to do" whatever Slurm says.
func (r *Runner) mayDecide(findings []Finding) bool {
	if slices.ContainsFunc(findings, Finding.Drains) {
		return true
	}
	n, ok := r.NodeInfo()
	_, ours := OwnReason(n.Reason)
	return !ok || (ours && n.Has(slurm.FlagDrain))
}

// Act re-reads the node and applies the Policy to the findings recorded
// so far, without running the checks: the retry after a Slurm error.
// Blocks for up to two Slurm requests; idempotent.
func (r *Runner) Act(ctx context.Context) (Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decideAndAct(ctx, true)
}

// fetchNode refreshes the cached node; r.mu held.
func (r *Runner) fetchNode(ctx context.Context) (slurm.Node, error) {
	if r.Slurm == nil {
		return slurm.Node{}, errNoSlurm
	}
	nodes, err := r.Slurm.Nodes(ctx, r.Node)
	if err != nil {
		r.Metrics.slurmError()
		return slurm.Node{}, fmt.Errorf("node %s: read from slurm: %w", r.Node, err)
	}
	if len(nodes) != 1 {
		return slurm.Node{}, fmt.Errorf("node %s: slurm returned %d nodes", r.Node, len(nodes))
	}
	n := nodes[0]
	r.infoMu.Lock()
	r.info, r.infoAt = &n, time.Now()
	r.infoMu.Unlock()
	return n, nil
}

var errNoSlurm = errors.New("no slurm client: detect and report only")

// decideAndAct decides for the node and applies the decision; r.mu held.
func (r *Runner) decideAndAct(ctx context.Context, refetch bool) (Decision, error) {
	if r.Slurm == nil {
		return Decision{Op: OpNone, Why: errNoSlurm.Error()}, nil
	}
	var node slurm.Node
	if refetch {
		n, err := r.fetchNode(ctx)
		if err != nil {
			return Decision{Op: OpNone, Why: "slurm unreachable"}, err
		}
		node = n
	} else {
		node, _ = r.NodeInfo()
	}
	d := r.Policy.Decide(&r.state, node)
	log := r.log().With("node", r.Node, "op", string(d.Op), "why", d.Why)
	if d.Op == OpNone {
		log.Debug("health decision: nothing to do")
		return d, nil
	}
	if r.DryRun {
		log.Info("health decision (dry run, not applied)", "reason", d.Reason)
		return d, nil
	}
	if d.Op == OpReboot && r.Rebooter == nil {
		log.Warn("health decision is a reboot, but no client can ask Slurm for one: draining instead")
		d.Op = OpDrain
	}
	var err error
	switch d.Op {
	case OpReboot:
		// ASAP: drained now, rebooted once its jobs end, undrained after.
		err = r.Rebooter.Reboot(ctx, []string{r.Node}, slurm.RebootOptions{ASAP: true, Reason: d.Reason})
	case OpUndrain:
		err = r.Slurm.Update(ctx, []string{r.Node}, slurm.NodeUpdate{State: slurm.SetUndrain})
	default:
		err = r.Slurm.Update(ctx, []string{r.Node}, slurm.NodeUpdate{State: slurm.SetDrain, Reason: d.Reason})
	}
	if err != nil {
		r.Metrics.slurmError()
		log.Warn("health decision not applied: slurm request failed; will retry", "error", err)
		return d, fmt.Errorf("node %s: %s: %w", r.Node, d.Op, err)
	}
	r.Metrics.action(d.Op)
	log.Info("health decision applied", "reason", d.Reason)
	// Keep the copy in step, so the next rounds know the node is (or is
	// no longer) drained by us without asking.
	r.infoMu.Lock()
	if r.info != nil {
		n := *r.info
		n.Flags = slices.DeleteFunc(slices.Clone(n.Flags), func(f string) bool { return f == slurm.FlagDrain })
		n.Reason = ""
		switch d.Op {
		case OpDrain:
			n.Flags, n.Reason = append(n.Flags, slurm.FlagDrain), d.Reason
		case OpReboot:
			n.Flags, n.Reason = append(n.Flags, slurm.FlagDrain, slurm.FlagRebootRequested), d.Reason
		}
		r.info = &n
	}
	r.infoMu.Unlock()
	return d, nil
}

// Run is the daemon loop: a round every Interval, an immediate round when
// an event-driven check notifies, and retries with exponential backoff
// (RetryMin doubling up to RetryMax) while Slurm is unreachable. It
// returns nil when ctx is cancelled. Blocks until then.
func (r *Runner) Run(ctx context.Context) error {
	interval := cmp.Or(r.Interval, DefaultInterval)
	rmin, rmax := cmp.Or(r.RetryMin, DefaultRetryMin), cmp.Or(r.RetryMax, DefaultRetryMax)
	notify := make(chan struct{}, 1)
	for _, c := range r.Checks {
		if n, ok := c.(Notifier); ok {
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-n.Notify():
						select {
						case notify <- struct{}{}:
						default:
						}
					}
				}
			}()
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	backoff := time.Duration(0)
	var retry <-chan time.Time
	after := func(err error) {
		if err == nil || errors.Is(err, errNoSlurm) {
			backoff, retry = 0, nil
			return
		}
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(backoff*2, rmin), rmax)
		r.log().Warn("slurm unreachable; findings kept, retrying", "node", r.Node, "retry_in", backoff.String(), "error", err)
		retry = time.After(backoff)
	}
	r.log().Info("health daemon started", "node", r.Node, "checks", len(r.Checks), "interval", interval.String(), "dry_run", r.DryRun)
	_, _, err := r.Round(ctx)
	after(err)
	for {
		select {
		case <-ctx.Done():
			r.log().Info("health daemon stopping", "node", r.Node)
			return nil
		case <-tick.C:
			_, _, err := r.Round(ctx)
			after(err)
		case <-notify:
			_, _, err := r.Round(ctx)
			after(err)
		case <-retry:
			_, err := r.Act(ctx)
			after(err)
		}
	}
}

// Summary is the one-shot verdict of findings: Fail for a draining
// failure, else Unknown when any finding is Unknown, else OK (failures
// that do not drain included). The command maps it to an exit code.
func Summary(findings []Finding) Status {
	s := OK
	for _, f := range findings {
		switch {
		case f.Drains():
			return Fail
		case f.Status == Unknown:
			s = Unknown
		}
	}
	return s
}
