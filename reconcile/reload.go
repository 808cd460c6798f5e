// reload: a running daemon takes a changed config file (SIGHUP, or the
// file's identity changed since it was read) without a restart; a bad file
// keeps the config in effect.

package reconcile

import (
	"context"
	"os"
	"time"
)

// statConfig returns the config file's identity (inode, size, mtime);
// nil when there is no file or it cannot be read.
func statConfig(file string) os.FileInfo {
	if file == "" {
		return nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil
	}
	return fi
}

// changed says how cur differs from old ("" = the same file version, or
// still none). Compared: the inode (an editor or config management that
// writes a new file and renames it over), the size and the mtime.
func changed(old, cur os.FileInfo) string {
	switch {
	case old == nil && cur == nil:
		return ""
	case cur == nil:
		return "gone or unreadable"
	case old == nil:
		return "readable again"
	case !os.SameFile(old, cur):
		return "replaced"
	case old.Size() != cur.Size() || !old.ModTime().Equal(cur.ModTime()):
		return "modified"
	}
	return ""
}

// configChanged says how the config file differs from the version this
// reconciler last read (loaded, or rejected by a reload); "" = not at
// all. Blocks for one stat. The caller holds r.round or runs the loop.
func (r *Reconciler) configChanged() string {
	return changed(r.stamp, statConfig(r.d.Config.File))
}

// reload reads the config again with load and, when it is good, makes the
// next rounds use it; a bad one (load's error, or a group whose runtime
// load did not build) keeps the config in effect, is logged as an ERROR
// naming the file and why, and sets slurm_elastic_config_reload_failed.
// Either way the file version is remembered, so a bad file is reported
// once, not every round. Blocks for load (it may ping Slurm). cause is
// for the log: "SIGHUP" or how the file changed.
func (r *Reconciler) reload(ctx context.Context, load func(ctx context.Context) (Deps, error), cause string) {
	r.round.Lock()
	defer r.round.Unlock()
	file := r.d.Config.File
	stamp := statConfig(file) // before reading: a change while loading is seen next round
	old := r.d.Runtimes
	d, err := load(ctx)
	if err == nil {
		if d.Now == nil {
			d.Now = r.d.Now
		}
		if d.Log == nil {
			d.Log = r.d.Log
		}
		err = r.configure(d, stamp)
	}
	if err != nil {
		r.stamp = stamp
		r.Metrics.reloaded(false, time.Time{})
		r.d.Log.Error("config reload failed: the config in effect stays", "config", file, "cause", cause, "error", err)
		return
	}
	for _, rt := range old {
		if c, ok := rt.(interface{ Close() error }); ok {
			_ = c.Close() // idle connections only: a runtime stays usable
		}
	}
	r.Metrics.reloaded(true, r.d.Now())
	r.d.Log.Info("config reloaded", "config", file, "cause", cause, "groups", len(r.d.Config.Groups), "nodes", len(r.names))
}

// interval is the configured time between rounds.
func (r *Reconciler) interval() time.Duration {
	r.round.Lock()
	defer r.round.Unlock()
	return r.d.Config.Daemon.Interval
}
