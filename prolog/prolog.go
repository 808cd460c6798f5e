// Package prolog is slurm-elastic's PrologSlurmctld: it lets a job whose
// nodes are being powered up start the moment they have registered.
//
// Stock slurmctld keeps such a job CONFIGURING until its periodic pass
// (every 30 s, compiled in) sees the nodes ready. While a job's
// PrologSlurmctld runs that pass skips the job, and when the prolog exits
// slurmctld checks the nodes at once (prolog_running_decr ->
// test_job_nodes_ready -> job_config_fini, launch_job; the same in Slurm
// 22.05 to 26.05). So the prolog waits until none of the job's nodes is
// powered down or powering up, then exits, and the job starts.
//
// The prolog runs for every job, so the common case is cheap: nodes in no
// slurm-elastic group are not waited for, and nodes whose up marker
// (internal/timeline) is older than SettleTime are taken as up without
// asking Slurm. A marker that lies only costs the speed-up: the prolog
// exits and Slurm starts the job on its own schedule.
package prolog

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/timeline"
)

// SettleTime is how long after it was addressed a node is taken as
// registered without asking Slurm (a slurmd registers about a second after
// its container starts).
const SettleTime = 10 * time.Second

// Polling: FastPoll while every node waited for is addressed (it registers
// within a second or two), SlowPoll while one still waits for its
// instance (up markers are checked every LocalPoll meanwhile, which costs
// no Slurm request).
const (
	FastPoll  = 250 * time.Millisecond
	SlowPoll  = 2 * time.Second
	LocalPoll = 100 * time.Millisecond
)

// Outcome is how a wait ended.
type Outcome string

const (
	Up       Outcome = "up"        // every node registered (or was up already)
	NoWait   Outcome = "no_wait"   // nothing to wait for: no node of ours, or all up a while
	NodeDown Outcome = "node_down" // a node went DOWN or is powering down: Slurm requeues the job
	Timeout  Outcome = "timeout"   // ctx's deadline passed first (the caller bounds it by ResumeTimeout)
	Stopped  Outcome = "stopped"   // ctx was cancelled: slurmctld stopped the prolog (job requeued or cancelled)
)

// Job is what Wait needs to know of one job.
type Job struct {
	ID    string
	Nodes []string // the job's nodes that belong to a slurm-elastic group
}

// Deps are what Wait works with. Observe, when set, is told each
// timeline record (the caller appends them); it must not block long.
type Deps struct {
	Slurm    slurm.Client
	StateDir string
	Log      *slog.Logger
	Observe  func(timeline.Record)
	now      func() time.Time // tests; nil = time.Now
}

// Wait blocks until none of j.Nodes is powered down or powering up in
// Slurm, one of them is DOWN or powering down, or ctx ends, asking Slurm
// about all of them in one request per poll. It never fails the job:
// Slurm errors are logged and the wait goes on until ctx ends. Read-only
// towards Slurm; idempotent.
func Wait(ctx context.Context, d Deps, j Job) Outcome {
	now := d.now
	if now == nil {
		now = time.Now
	}
	if len(j.Nodes) == 0 {
		return NoWait
	}
	start := now()
	if Settled(d.StateDir, j.Nodes, start) {
		return NoWait
	}
	observe := func(r timeline.Record) {
		if d.Observe != nil {
			r.Job = j.ID
			d.Observe(r)
		}
	}
	waiting := slices.Clone(j.Nodes)
	first := true
	var lastErr string
	nextSlurm := start // ask Slurm at once
	for {
		if t := now(); !t.Before(nextSlurm) {
			nodes, err := d.Slurm.Nodes(ctx, waiting...)
			if err != nil && ctx.Err() == nil && err.Error() != lastErr {
				lastErr = err.Error()
				d.Log.Warn("cannot read the job's nodes from Slurm: still waiting", "job", j.ID, "error", err)
			}
			if err == nil {
				var still []string
				for _, n := range nodes {
					switch {
					case down(n):
						observe(timeline.Record{Time: now(), Event: timeline.PrologDone, Node: n.Name, Detail: string(NodeDown) + ": " + n.Name + " " + stateString(n)})
						return NodeDown
					case n.Has(slurm.FlagPoweredDown) || n.Has(slurm.FlagPoweringUp):
						still = append(still, n.Name)
					case !first:
						observe(timeline.Record{Time: now(), Event: timeline.Registered, Node: n.Name})
					}
				}
				if len(still) == 0 {
					if first {
						return NoWait
					}
					return Up
				}
				if first {
					observe(timeline.Record{Time: start, Event: timeline.PrologWait, Nodes: hostlist.Compress(still)})
					first = false
				}
				waiting = still
			}
			nextSlurm = now().Add(jitter(pollFor(d.StateDir, waiting)))
		}
		wait := min(LocalPoll, max(time.Until(nextSlurm), time.Millisecond))
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return Timeout
			}
			return Stopped
		case <-time.After(wait):
		}
		// A node just addressed: ask Slurm soon rather than at the slow pace.
		if soon := now().Add(FastPoll); soon.Before(nextSlurm) && pollFor(d.StateDir, waiting) == FastPoll {
			nextSlurm = soon
		}
	}
}

// Settled reports whether every node has an up marker older than
// SettleTime at t.
func Settled(dir string, nodes []string, t time.Time) bool {
	for _, n := range nodes {
		at, ok := timeline.UpSince(dir, n)
		if !ok || t.Sub(at) < SettleTime {
			return false
		}
	}
	return true
}

// pollFor is FastPoll when every node waited for has an up marker (it was
// addressed: registration is near), else SlowPoll.
func pollFor(dir string, nodes []string) time.Duration {
	for _, n := range nodes {
		if _, ok := timeline.UpSince(dir, n); !ok {
			return SlowPoll
		}
	}
	return FastPoll
}

// jitter spreads d by ±10% so the prologs of many jobs do not ask Slurm
// in step.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// down reports a node that will not come up for this job: DOWN, or
// powering down (a failed resume powers it down). Slurm requeues the job.
func down(n slurm.Node) bool {
	return n.State == slurm.StateDown || n.Has(slurm.FlagPoweringDown) || n.Has(slurm.FlagPowerDown)
}

func stateString(n slurm.Node) string {
	s := n.State
	for _, f := range n.Flags {
		s += "+" + f
	}
	return s
}
