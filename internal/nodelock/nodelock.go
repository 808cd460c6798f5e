// Package nodelock holds the state directory's locks, taken with flock(2)
// so a holder that dies never leaves one behind:
//
//   - one lock per node, locks/NODE.lock, held by a power hook or the
//     reconciler for as long as it works on the node, so two never act on
//     the same node at once while work on different nodes never waits;
//   - the state lock, power.lock, held only around a read-modify-write of
//     the shared state files (the breaker state and launch counts).
//
// Lock files are created with the owner of their directory
// (internal/statefile), so a hook run by root by hand leaves files the
// hooks Slurm runs (as SlurmUser) can still open.
package nodelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/slurm-elastic/slurm-elastic/internal/statefile"
)

// StateFile is the state lock's file in the state directory.
const StateFile = "power.lock"

// Dir is the directory, in the state directory, of the node locks.
const Dir = "locks"

// ErrBusy is wrapped by the error of a node whose lock another process
// held until the wait ended.
var ErrBusy = errors.New("held by another process")

// poll is how often a held lock is tried again.
const poll = 50 * time.Millisecond

// Path is node's lock file in the state directory dir.
func Path(dir, node string) string { return filepath.Join(dir, Dir, node+".lock") }

// PlaceFile is the placement lock in the state directory: a resume holds
// it while it places and starts nodes on Podman hosts with limits (room,
// GPUs), so two resumes never hand out the same room or device.
const PlaceFile = "place.lock"

// State takes dir's state lock, waiting while ctx allows, and returns its
// release. Hold it only around a read-modify-write of a state file: every
// hook and the reconciler wait for it. It blocks; the lock is not
// re-entrant.
func State(ctx context.Context, dir string) (release func(), err error) {
	return file(ctx, dir, StateFile)
}

// Place takes dir's placement lock (PlaceFile), waiting while ctx allows,
// and returns its release. It blocks; the lock is not re-entrant.
func Place(ctx context.Context, dir string) (release func(), err error) {
	return file(ctx, dir, PlaceFile)
}

// file takes the lock file name in dir, waiting while ctx allows.
func file(ctx context.Context, dir, name string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	p := filepath.Join(dir, name)
	if err := statefile.Touch(p, 0o644); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	l := flock.New(p)
	ok, err := l.TryLockContext(ctx, poll)
	if err != nil || !ok {
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { _ = l.Unlock() }, nil
}

// Held is a set of node locks one process holds.
type Held struct {
	nodes []string
	locks []*flock.Flock
}

// Nodes returns the nodes whose locks are held, sorted.
func (h *Held) Nodes() []string {
	if h == nil {
		return nil
	}
	return slices.Clone(h.nodes)
}

// Release releases every lock held. Idempotent; a nil Held is a no-op.
func (h *Held) Release() {
	if h == nil {
		return
	}
	for _, l := range h.locks {
		_ = l.Unlock()
	}
	h.locks, h.nodes = nil, nil
}

// Nodes takes the lock of every named node in dir (duplicates once), in
// sorted order so two processes never wait for each other in a circle. It
// waits for a held lock while ctx allows; once ctx has ended it still
// takes the free locks of the nodes left, without waiting. It returns the
// locks held and, for each node it could not lock, why: ErrBusy (another
// process held it until ctx ended) or the lock file could not be used (it
// names the file, its owner and the fix). err is set only when dir's lock
// directory cannot be made; then nothing is held.
//
// It blocks for at most ctx's life; release what it returns with Release.
func Nodes(ctx context.Context, dir string, names []string) (h *Held, missed map[string]error, err error) {
	ld := filepath.Join(dir, Dir)
	if err := mkdir(dir, ld); err != nil {
		return nil, nil, err
	}
	h, missed = &Held{}, map[string]error{}
	for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
		if !valid(n) {
			missed[n] = fmt.Errorf("node %q: not a node name, no lock file for it", n)
			continue
		}
		p := Path(dir, n)
		if err := statefile.Touch(p, 0o644); err != nil {
			missed[n] = fmt.Errorf("node %s: lock: %w", n, err)
			continue
		}
		l := flock.New(p)
		var ok bool
		if ctx.Err() == nil {
			ok, err = l.TryLockContext(ctx, poll)
			if err != nil && ctx.Err() != nil {
				err = nil // waited as long as allowed: busy, below
			}
		} else {
			ok, err = l.TryLock()
		}
		switch {
		case err != nil:
			missed[n] = fmt.Errorf("node %s: lock %s: %w", n, p, err)
		case !ok:
			missed[n] = fmt.Errorf("node %s: lock %s: %w", n, p, ErrBusy)
		default:
			h.nodes = append(h.nodes, n)
			h.locks = append(h.locks, l)
		}
	}
	return h, missed, nil
}

// mkdir makes the lock directory ld in dir, owned as dir is.
func mkdir(dir, ld string) error {
	if _, err := os.Stat(ld); err == nil {
		return nil
	}
	if err := os.MkdirAll(ld, 0o750); err != nil {
		return fmt.Errorf("lock dir %s: %w", ld, err)
	}
	if err := statefile.MatchOwner(dir, ld); err != nil {
		return fmt.Errorf("lock dir %s: chown: %w", ld, err)
	}
	return nil
}

// valid reports whether n can name a file in the lock directory.
func valid(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00")
}
