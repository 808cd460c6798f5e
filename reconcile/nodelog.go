package reconcile

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/nodelog"
	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// logTimeout bounds reading one failed node's log before its instance is
// removed: evidence is worth a few seconds, never the failover.
const logTimeout = 10 * time.Second

// keepLog saves the tail of node's instance output (internal/nodelog)
// before the reconciler has the failed instance removed (DeadNode,
// StuckPowerUp, Unhealthy); why says what was seen. It reports whether a
// log was saved: false without a state directory, without an instance
// (the view listed none) or when it cannot be read or written (logged).
// Blocks for one Logs call (at most 10s) and the disk.
func (r *Reconciler) keepLog(ctx context.Context, v *view, node, why string) bool {
	rt := r.d.Runtimes[v.rtOf[node]]
	if r.d.StateDir == "" || rt == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	l, err := rt.Logs(ctx, node, runtime.MaxLogTail)
	switch {
	case errors.Is(err, runtime.ErrNoInstance):
		return false
	case err != nil:
		r.d.Log.Warn("could not read the failed node's log before its instance is removed", "node", node, "error", err)
		return false
	}
	path, err := nodelog.Save(r.d.StateDir, nodelog.Entry{
		Node: node, Why: why, ID: l.ID, Image: l.Image, Host: l.Host, Tail: l.Tail, Truncated: l.Truncated,
	})
	if err != nil {
		r.d.Log.Warn("could not save the failed node's log", "node", node, "error", err)
		return path != ""
	}
	r.d.Log.Info("failed node's log saved", "node", node, "file", path, "instance", l.ID, "read", "slurm-elastic logs "+node)
	return true
}

// failKeepingLogs is fail (DOWN with code, POWER_DOWN_FORCE) after each
// node's instance log is kept (keepLog): nodes with a saved log are failed
// one by one, their reason ending with where to read it
// (nodelog.Hint); the others in one call.
func (r *Reconciler) failKeepingLogs(ctx context.Context, v *view, acts []Action, code reason.Code, msg string) map[string]error {
	kept := make([]bool, len(acts))
	pool.Run(ctx, len(acts), pool.Options{Concurrency: max(r.d.Config.Daemon.Concurrency, 1)}, func(ctx context.Context, i int) error {
		kept[i] = r.keepLog(ctx, v, acts[i].Node, string(code)+": "+msg)
		return nil
	})
	var plain []Action
	out := make(map[string]error, len(acts))
	for i, a := range acts {
		if !kept[i] {
			plain = append(plain, a)
			continue
		}
		for n, f := range slurm.Fail(ctx, r.d.Slurm, []string{a.Node}, code, reason.WithHint(code, msg, nodelog.Hint(a.Node))) {
			out[n] = f.Err
		}
	}
	if len(plain) > 0 {
		for n, err := range r.fail(ctx, plain, code, msg) {
			out[n] = err
		}
	}
	return out
}

// hintLog keeps an unhealthy node's log before it is powered down and
// returns its reason why ending with where to read it; why as it is when
// no log was kept or the reason already says where.
func (r *Reconciler) hintLog(ctx context.Context, v *view, node, why string) string {
	hint := nodelog.Hint(node)
	if strings.Contains(why, hint) || !r.keepLog(ctx, v, node, why) {
		return why
	}
	p := reason.Parse(why)
	return reason.Format(p.Code, reason.WithHint(p.Code, p.Msg, hint))
}
