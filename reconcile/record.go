// record: the last phase. The round becomes the status, the metrics and
// the state kept across restarts.

package reconcile

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/statefile"
)

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
		unknown := map[string]int{} // instance group label -> unknown instances
		for i := range v.entries {
			e := &v.entries[i]
			ns := NodeStatus{Name: e.Name, Group: e.Group, Slurm: StateOf(e.Node), Instance: "-"}
			if e.Node != nil {
				ns.Reason = e.Node.Reason
			}
			if e.Inst != nil {
				ns.Instance = string(e.Inst.State)
			}
			if e.Inst != nil && e.Unknown != "" {
				ns.Kind, ns.Group = string(KindUnknown), e.Inst.Group
				ns.Slurm = "(unknown: " + e.Unknown + ") " + ns.Slurm
				unknown[e.Inst.Group]++
			} else if g := groups[e.Group]; g != nil {
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
		r.Metrics.unknownInstances(unknown)
		for _, g := range r.d.Config.Groups {
			st.Groups = append(st.Groups, *groups[g.Name])
		}
	}
	r.mu.Lock()
	r.status = st
	r.mu.Unlock()
	r.Metrics.round(st)
}

// persisted is the reconciler's state kept across restarts. (Before
// power_ups, a file kept "powering_up_since", bare start times that could
// not tell one power-up from the next: it is ignored.)
type persisted struct {
	PowerUps     map[string]powerUp   `json:"power_ups"`
	CoolingUntil map[string]time.Time `json:"cooling_until"`
}

// powerUp is the timer of one power-up of a node.
type powerUp struct {
	// Since is when the power-up was first seen, or when an instance
	// created later was seen (a launch of this power-up).
	Since time.Time `json:"since"`
	// Seen is the last round that saw the node POWERING_UP.
	Seen time.Time `json:"seen"`
}

// LoadState reads the timers a previous daemon saved in dir; a missing
// file is no error. Call it before the first round. Blocks on the disk.
func (r *Reconciler) LoadState(dir string) error {
	var ev []Event
	if err := r.loadJSON(dir, EventsFile, &ev); err != nil {
		return err
	}
	for _, e := range ev {
		r.Events.Add(e)
	}
	var p persisted
	if err := r.loadJSON(dir, StateFile, &p); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// A restored timer counts only the time a daemon watched the power-up:
	// while none ran, the node may have come up, powered down and begun a
	// new power-up, which the old start would make look stuck at once.
	now := r.d.Now()
	for n, t := range p.PowerUps {
		watched := max(t.Seen.Sub(t.Since), 0)
		r.powerUps[n] = powerUp{Since: now.Add(-watched), Seen: now}
	}
	maps.Copy(r.cooling, p.CoolingUntil)
	return nil
}

// SaveState writes the timers, the status and, when there are new ones,
// the events to dir. Blocks on the disk; idempotent.
func (r *Reconciler) SaveState(dir string) error {
	ev, added := r.Events.snapshot()
	r.mu.Lock()
	p := persisted{PowerUps: maps.Clone(r.powerUps), CoolingUntil: maps.Clone(r.cooling)}
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

// loadJSON reads dir/name into v for LoadState: a missing file leaves v
// as it is; an empty or corrupt one is logged as an ERROR naming it,
// moved aside to name.corrupt-<UTC time> (kept for the admin) and v is
// left as it is. Blocks on the disk.
func (r *Reconciler) loadJSON(dir, name string, v any) error {
	err := readJSON(dir, name, v)
	switch {
	case err == nil, errors.Is(err, os.ErrNotExist):
		return nil
	case !errors.Is(err, errCorrupt):
		return err
	}
	p := filepath.Join(dir, name)
	aside, merr := statefile.MoveAside(p, time.Now())
	if merr != nil {
		r.d.Log.Error("reconciler state file corrupt and cannot be moved aside: starting afresh", "path", p, "error", errors.Join(err, merr))
		return nil
	}
	r.d.Log.Error("reconciler state file corrupt: moved aside, starting afresh", "path", p, "moved_to", aside, "error", err)
	return nil
}
