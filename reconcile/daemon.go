package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/statefile"
)

// ErrLocked is returned by Run when another daemon holds the state
// directory's daemon lock.
var ErrLocked = errors.New("another slurm-elastic daemon holds the lock")

// RunOptions shape a daemon run.
type RunOptions struct {
	StateDir      string        // lock, events, status and timers live here
	Interval      time.Duration // between round starts
	Once          bool          // one round, then return
	MetricsListen string        // host:port for /metrics; "" = off
	// Ready, when set, is called once the lock is held and the metrics
	// listener (if any) is bound, with its address.
	Ready func(metricsAddr string)
	// Reload, when set, loads and validates the config file again and
	// builds what it needs (cmd/internal/build), as start-up does. Run
	// calls it on a value from Hup and before a round when the config
	// file changed (inode, size or mtime); a failed reload keeps the
	// config in effect. nil: no reloads.
	Reload func(ctx context.Context) (Deps, error)
	// Hup delivers reload requests (SIGHUP); nil = none.
	Hup <-chan os.Signal
}

// Run is `slurm-elastic daemon`: it takes the state directory's daemon lock
// (one daemon per head node; ErrLocked if held), loads the saved timers and
// events, serves metrics when asked, and runs a round every Interval until
// ctx ends (SIGTERM), saving events, status and timers after each round.
// With Reload it reloads the config on Hup (then runs a round at once) and
// when the file changed, before the round that follows (reload).
// A skipped or partly failed round is logged and the loop goes on; with
// Once, Run returns that round's error. Run blocks until ctx ends (or the
// one round is done) and leaves nothing running behind it.
func Run(ctx context.Context, r *Reconciler, o RunOptions) error {
	if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := statefile.Touch(filepath.Join(o.StateDir, LockFile), 0o644); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	lk := flock.New(filepath.Join(o.StateDir, LockFile))
	ok, err := lk.TryLock()
	if err != nil {
		return fmt.Errorf("lock %s: %w", lk.Path(), err)
	}
	if !ok {
		return fmt.Errorf("%w (%s)", ErrLocked, lk.Path())
	}
	defer lk.Unlock()
	if err := r.LoadState(o.StateDir); err != nil {
		r.d.Log.Warn("saved reconciler state unreadable: starting afresh", "error", err)
	}

	addr := ""
	if o.MetricsListen != "" {
		ln, err := net.Listen("tcp", conf.MetricsAddr(o.MetricsListen)) // ":PORT" = loopback
		if err != nil {
			return fmt.Errorf("metrics listen %s: %w", o.MetricsListen, err)
		}
		addr = ln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/metrics", r.Metrics.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.d.Log.Error("metrics server stopped", "error", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			<-done
		}()
		r.d.Log.Info("serving metrics", "addr", addr)
	}
	if o.Ready != nil {
		o.Ready(addr)
	}
	r.d.Log.Info("reconciler started", "interval", o.Interval.String(), "once", o.Once, "state_dir", o.StateDir,
		"groups", len(r.d.Config.Groups), "nodes", len(r.names))

	interval := max(o.Interval, 100*time.Millisecond)
	r.Metrics.reloaded(true, r.d.Now()) // the config in effect was loaded at start
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		cause := ""
		select {
		case <-ctx.Done():
			r.d.Log.Info("reconciler stopped", "cause", context.Cause(ctx))
			return nil
		case <-o.Hup:
			cause = "SIGHUP"
		case <-t.C:
		}
		if o.Reload != nil {
			if how := r.configChanged(); cause == "" && how != "" {
				cause = "config file " + how
			}
			if cause != "" {
				r.reload(ctx, o.Reload, cause)
				interval = max(r.interval(), 100*time.Millisecond)
			}
		}
		start := time.Now()
		// A round is bounded by the interval (at least 30 s), so a hung
		// API never stalls the loop for good.
		rctx, cancel := context.WithTimeout(ctx, max(interval, 30*time.Second))
		_, rerr := r.Round(rctx)
		cancel()
		if err := r.SaveState(o.StateDir); err != nil {
			r.d.Log.Error("cannot save reconciler state", "error", err)
		}
		if o.Once {
			return rerr
		}
		if rerr != nil && !errors.Is(rerr, ErrSkipped) {
			r.d.Log.Warn("round done with failures", "error", rerr)
		}
		t.Reset(max(interval-time.Since(start), 0))
	}
}
