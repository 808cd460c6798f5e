package power

import (
	"context"
	"errors"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/nodelog"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// LogTimeout bounds reading a failed node's log before its instance is
// removed: evidence is worth a few seconds, never the removal.
const LogTimeout = 10 * time.Second

// KeepLog saves the tail of t's instance output (internal/nodelog) before
// the failed instance is removed, so `slurm-elastic logs NODE` shows it
// afterwards; why says why it is removed. It reports whether a log was
// saved: false when the node has no instance, the runtime cannot read it
// (logged) or the config has no state directory. Blocks for one Logs call
// (at most LogTimeout) and the disk; each call saves one more log.
func KeepLog(ctx context.Context, d Deps, t Target, why string) bool {
	if d.Config.StateDir == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), LogTimeout)
	defer cancel()
	l, err := t.Runtime.Logs(ctx, t.Name, runtime.MaxLogTail)
	switch {
	case errors.Is(err, runtime.ErrNoInstance):
		d.Log.Debug("no instance: no log to keep", "node", t.Name)
		return false
	case err != nil:
		d.Log.Warn("could not read the failed node's log before removing its instance", "node", t.Name, "error", err)
		return false
	}
	return SaveLog(d, t.Name, why, l)
}

// SaveLog saves l, the log of node's failed instance (e.g. a launch's
// runtime.Result.Log), with why it was removed, and logs where. It
// reports whether it was saved (a failure is logged). Blocks on the disk.
func SaveLog(d Deps, node, why string, l runtime.Log) bool {
	if d.Config.StateDir == "" {
		return false
	}
	path, err := nodelog.Save(d.Config.StateDir, nodelog.Entry{
		Node: node, Why: why, ID: l.ID, Image: l.Image, Host: l.Host, Tail: l.Tail, Truncated: l.Truncated,
	})
	if err != nil {
		d.Log.Warn("could not save the failed node's log", "node", node, "error", err)
		return path != ""
	}
	d.Log.Info("failed node's log saved", "node", node, "file", path, "instance", l.ID, "read", "slurm-elastic logs "+node)
	return true
}
