package admincmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/build"
	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"

	"github.com/gofrs/flock"
	"github.com/urfave/cli/v2"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/logging"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelock"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/version"
	"github.com/slurm-elastic/slurm-elastic/reconcile"
)

func daemonCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:  "daemon",
			Usage: "run the reconciler: remove orphans, fail over dead nodes, replace unhealthy ones, circuit breakers, warm pools (docs/reconciler.md)",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "once", Usage: "run one round and exit (exit 1 if it was skipped or an action failed)"},
				&cli.DurationFlag{Name: "interval", Usage: "time between rounds (default: daemon.interval)"},
				&cli.DurationFlag{Name: "orphan-grace", Usage: "age before an unwanted instance is removed (default: daemon.orphan_grace)"},
				&cli.StringFlag{Name: "metrics-listen", Usage: "host:port for Prometheus /metrics (default: daemon.metrics_listen)"},
				&cli.StringFlag{Name: "log", Usage: "log destination: a file, stderr or journald (default: log.file)"},
			},
			Action: daemon,
		},
		{
			Name:  "status",
			Usage: "table of groups, nodes and states as of the daemon's last round, and its last events",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "all", Usage: "list every node, also the powered-down ones with no instance"},
				&cli.IntFlag{Name: "events", Value: 10, Usage: "last events to show"},
			},
			Action: status,
		},
		{
			Name:  "events",
			Usage: "the reconciler's decisions, oldest first",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "node", Usage: "only this node"},
				&cli.StringFlag{Name: "kind", Usage: "only this kind: unknown, orphan, dead, stuck, unhealthy, reenable, capacity, cooldown, cooldown_end, breaker, breaker_end, warm, reboot, reimage"},
				&cli.IntFlag{Name: "n", Value: 0, Usage: "only the last N (0 = all kept)"},
				&cli.BoolFlag{Name: "json", Usage: "JSON lines instead of a table"},
			},
			Action: events,
		},
	}
}

// daemon runs the reconciler until SIGTERM/SIGINT (or one round with
// --once). SIGHUP, or a change of the config file, reloads the config
// (daemonConfig, then the runtimes and the Slurm client as at start); a bad
// file keeps the config in effect.
func daemon(c *cli.Context) error {
	cfg, err := daemonConfig(c)
	if err != nil {
		return err
	}
	dest := cfg.Log.File
	if c.IsSet("log") {
		dest = c.String("log")
	}
	log, closer, err := logging.Open(dest, cfg.Log.Level, "slurm-elastic-daemon")
	if err != nil {
		return exitcode.New(exitcode.Config, err)
	}
	defer closer.Close()
	ctx := c.Context
	log.Info("daemon starting", "config", cfg.File, "version", version.Version, "backend", cfg.Slurm.Backend)
	d, err := daemonDeps(ctx, cfg, log)
	if err != nil {
		log.Error("daemon not started", "error", err)
		return err
	}
	d.Lock = powerLock(cfg.StateDir, cfg.Daemon.Interval)
	d.LockNodes = nodeLocks(cfg.StateDir, cfg.Daemon.Interval)
	r, err := reconcile.New(d)
	if err != nil {
		return exitcode.New(exitcode.Config, err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	err = reconcile.Run(ctx, r, reconcile.RunOptions{
		StateDir: cfg.StateDir, Interval: cfg.Daemon.Interval, Once: c.Bool("once"), MetricsListen: cfg.Daemon.MetricsListen,
		Hup: hup, Reload: func(ctx context.Context) (reconcile.Deps, error) { return reloadDeps(ctx, c, cfg, log) },
	})
	if errors.Is(err, reconcile.ErrLocked) {
		return exitcode.New(exitcode.Busy, err)
	}
	return err
}

// daemonConfig loads and validates the config file and applies the
// daemon's flags over it. Blocks on the disk; idempotent.
func daemonConfig(c *cli.Context) (*conf.Config, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	if c.IsSet("interval") {
		cfg.Daemon.Interval = c.Duration("interval")
	}
	if c.IsSet("orphan-grace") {
		cfg.Daemon.OrphanGrace = c.Duration("orphan-grace")
	}
	if c.IsSet("metrics-listen") {
		cfg.Daemon.MetricsListen = c.String("metrics-listen")
	}
	if cfg.Daemon.Interval <= 0 || cfg.Daemon.OrphanGrace < 0 {
		return nil, exitcode.New(exitcode.Usage, errors.New("daemon: --interval must be > 0 and --orphan-grace >= 0"))
	}
	return cfg, nil
}

// daemonDeps builds the Slurm client and the runtimes of cfg (as the hooks
// do: cmd/internal/build). Blocks for one Slurm ping with backend auto.
func daemonDeps(ctx context.Context, cfg *conf.Config, log *slog.Logger) (reconcile.Deps, error) {
	sc, err := build.Slurm(ctx, cfg, log)
	if err != nil {
		return reconcile.Deps{}, fmt.Errorf("slurm: %w", err)
	}
	rts, err := build.Runtimes(ctx, cfg, log)
	if err != nil {
		return reconcile.Deps{}, fmt.Errorf("runtimes: %w", err)
	}
	d := reconcile.Deps{Config: cfg, Runtimes: rts, Slurm: sc, Log: log, StateDir: cfg.StateDir}
	if rb, ok := sc.(slurm.Rebooter); ok {
		d.Rebooter = rb
	} else if s, err := slurm.NewScontrol(slurm.ScontrolOptions{Path: cfg.Slurm.Scontrol, Timeout: cfg.Slurm.Timeout}); err == nil {
		d.Rebooter = s // slurmrestd has no reboot endpoint
	} else if cfg.Daemon.Reimage {
		log.Warn("no scontrol (slurm.scontrol): re-imaging idle nodes for pending jobs is off", "error", err)
	}
	return d, nil
}

// reloadDeps is the daemon's reload: the config file read again (with the
// daemon's flags), then its Slurm client and runtimes. What a running
// daemon cannot change keeps its start value, with a warning: state_dir
// (its lock is held there), daemon.metrics_listen, log.file and log.level.
// Blocks like daemonDeps.
func reloadDeps(ctx context.Context, c *cli.Context, start *conf.Config, log *slog.Logger) (reconcile.Deps, error) {
	cfg, err := daemonConfig(c)
	if err != nil {
		return reconcile.Deps{}, err // it names the file and the key
	}
	for _, k := range []struct{ key, was, now string }{
		{"state_dir", start.StateDir, cfg.StateDir},
		{"daemon.metrics_listen", start.Daemon.MetricsListen, cfg.Daemon.MetricsListen},
		{"log.file", start.Log.File, cfg.Log.File},
		{"log.level", start.Log.Level, cfg.Log.Level},
	} {
		if k.was != k.now {
			log.Warn("config reload: this key changes only with a restart of the daemon; the old value stays", "key", k.key, "in_effect", k.was, "in_file", k.now)
		}
	}
	cfg.StateDir, cfg.Daemon.MetricsListen, cfg.Log = start.StateDir, start.Daemon.MetricsListen, start.Log
	d, err := daemonDeps(ctx, cfg, log)
	if err != nil {
		return reconcile.Deps{}, err
	}
	d.Lock = powerLock(cfg.StateDir, cfg.Daemon.Interval)
	d.LockNodes = nodeLocks(cfg.StateDir, cfg.Daemon.Interval)
	return d, nil
}

// powerLock returns the state lock (power.lock: the breaker state's
// read-modify-writes, internal/nodelock), waited for at most wait (at
// least 5s, at most 30s). The hooks hold it only briefly.
func powerLock(dir string, wait time.Duration) func(ctx context.Context) (func(), error) {
	wait = min(max(wait, 5*time.Second), 30*time.Second)
	return func(ctx context.Context) (func(), error) {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		return nodelock.State(ctx, dir)
	}
}

// nodeLocks returns the reconciler's LockNodes: the node locks the hooks
// take (internal/nodelock), a busy one waited for at most wait (at least
// 5s, at most 30s). A node a hook holds longer is left out of the round.
func nodeLocks(dir string, wait time.Duration) func(ctx context.Context, nodes []string) (func(), map[string]error, error) {
	wait = min(max(wait, 5*time.Second), 30*time.Second)
	return func(ctx context.Context, nodes []string) (func(), map[string]error, error) {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		h, missed, err := nodelock.Nodes(ctx, dir, nodes)
		if err != nil {
			return nil, nil, err
		}
		return h.Release, missed, nil
	}
}

// daemonRunning reports whether a daemon holds the state dir's lock:
// "running", "not running" or "unknown (why)".
func daemonRunning(dir string) string {
	p := filepath.Join(dir, reconcile.LockFile)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return "not running (never started here)"
	}
	l := flock.New(p, flock.SetFlag(os.O_RDONLY))
	ok, err := l.TryRLock()
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	if !ok {
		return "running"
	}
	_ = l.Unlock()
	return "not running"
}

func status(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "daemon: %s\n", daemonRunning(cfg.StateDir))
	st, err := reconcile.ReadStatus(cfg.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(w, "no round recorded in %s yet: start `slurm-elastic daemon`\n", cfg.StateDir)
		return nil
	}
	if err != nil {
		return exitcode.New(exitcode.Failed, err)
	}
	fmt.Fprintf(w, "last round: %s (%s ago), %s in %s, %d actions\n", st.Time.UTC().Format(time.RFC3339),
		time.Since(st.Time).Round(time.Second), st.Result, st.Duration.Round(time.Millisecond), st.Actions)
	if st.Error != "" {
		fmt.Fprintf(w, "  %s\n", st.Error)
	}
	fmt.Fprintln(w)
	// The breakers as the hooks left them now, not as of the last round.
	if bs, err := breaker.Load(cfg.StateDir); err == nil {
		for i := range st.Groups {
			if b := bs.Get(st.Groups[i].Name); b.Open || b.Failures > 0 {
				st.Groups[i].Breaker = &b
			} else {
				st.Groups[i].Breaker = nil
			}
		}
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tNODES\tINSTANCES\tCOOLDOWN\tBREAKER\tSTATES")
	for _, g := range st.Groups {
		total := 0
		var parts []string
		for _, s := range slices.Sorted(maps.Keys(g.States)) {
			total += g.States[s]
			parts = append(parts, fmt.Sprintf("%s=%d", s, g.States[s]))
		}
		cool := "-"
		if g.CoolingUntil != nil {
			cool = "until " + g.CoolingUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", g.Name, total, g.Instances, cool, breakerCell(g.Breaker), strings.Join(parts, " "))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tGROUP\tSLURM\tINSTANCE\tREASON")
	hidden := 0
	for _, n := range st.Nodes {
		if !c.Bool("all") && n.Slurm == "powered_down" && n.Instance == "-" && n.Reason == "" {
			hidden++
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Group, n.Slurm, n.Instance, n.Reason)
	}
	tw.Flush()
	if hidden > 0 {
		fmt.Fprintf(w, "(%d powered-down nodes with no instance not shown; --all shows them)\n", hidden)
	}
	ev, err := reconcile.ReadEvents(cfg.StateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return exitcode.New(exitcode.Failed, err)
	}
	if k := c.Int("events"); k > 0 && len(ev) > 0 {
		fmt.Fprintln(w, "\nlast events:")
		writeEvents(w, ev[max(len(ev)-k, 0):])
	}
	return nil
}

func events(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	ev, err := reconcile.ReadEvents(cfg.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return exitcode.New(exitcode.Failed, err)
	}
	ev = slices.DeleteFunc(ev, func(e reconcile.Event) bool {
		return (c.IsSet("node") && e.Node != c.String("node")) || (c.IsSet("kind") && string(e.Kind) != c.String("kind"))
	})
	if n := c.Int("n"); n > 0 && len(ev) > n {
		ev = ev[len(ev)-n:]
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		for _, e := range ev {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	writeEvents(c.App.Writer, ev)
	return nil
}

func writeEvents(w io.Writer, ev []reconcile.Event) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tNODE\tGROUP\tKIND\tSAW\tDID")
	for _, e := range ev {
		did := e.Did
		if e.Error != "" {
			did += ": " + e.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Node, e.Group, e.Kind, e.Saw, did)
	}
	tw.Flush()
}
