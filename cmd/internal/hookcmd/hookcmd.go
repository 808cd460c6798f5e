// Package hookcmd is the shared body of Slurm's power-save hooks
// (ResumeProgram, SuspendProgram, ResumeFailProgram): argument and config
// handling, logging, locking, and building the runtime and Slurm clients.
// The mains in cmd/ only pick the Kind.
package hookcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/build"
	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/logging"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelock"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/version"
	"github.com/slurm-elastic/slurm-elastic/power"
	"github.com/slurm-elastic/slurm-elastic/resume"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/suspend"
)

// Kind is which hook runs.
type Kind string

const (
	Resume     Kind = "resume"
	Suspend    Kind = "suspend"
	ResumeFail Kind = "resume-fail"
)

// App returns the command line of one hook. Its Action reads
// SLURM_RESUME_FILE before anything else (the file exists only while the
// hook runs).
func App(k Kind) *cli.App {
	return &cli.App{
		Name:      "slurm-elastic-" + string(k),
		Usage:     usage[k],
		UsageText: "slurm-elastic-" + string(k) + " [--config FILE] HOSTLIST",
		Version:   version.Version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"SLURM_ELASTIC_CONFIG"},
				Usage: "config file (default " + conf.DefaultPath + ")"},
		},
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			fmt.Fprintf(c.App.Writer, "Incorrect Usage: %s\n\n", err)
			_ = cli.ShowAppHelp(c)
			return exitcode.New(exitcode.Usage, err)
		},
		Action: func(c *cli.Context) error {
			var resumeFile []byte
			if k == Resume {
				if p := os.Getenv("SLURM_RESUME_FILE"); p != "" {
					// Read it first thing: it is gone once slurmscriptd moves on.
					b, err := os.ReadFile(p)
					if err != nil {
						fmt.Fprintf(os.Stderr, "read SLURM_RESUME_FILE %s: %v\n", p, err)
					}
					resumeFile = b
				}
			}
			if c.NArg() != 1 {
				return exitcode.Errorf(exitcode.Usage, "want exactly one HOSTLIST argument, got %d", c.NArg())
			}
			return Run(c.Context, k, c.String("config"), c.Args().First(), resumeFile)
		},
	}
}

var usage = map[Kind]string{
	Resume:     "Slurm ResumeProgram: power up cloud nodes",
	Suspend:    "Slurm SuspendProgram: power down cloud nodes",
	ResumeFail: "Slurm ResumeFailProgram: clean up nodes that missed ResumeTimeout",
}

// Main runs a hook with os.Args and returns the process exit code
// (cmd/internal/exitcode: 1 a node failed, 2 usage, 3 config, 4 no node's
// lock was had). It blocks until the hook is done and is safe to call once
// per process.
func Main(ctx context.Context, k Kind, args []string) int {
	err := App(k).RunContext(ctx, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "slurm-elastic-%s: %v\n", k, err)
	}
	return exitcode.Of(err)
}

// Run executes one hook on the nodes of expr, each under its node lock
// (internal/nodelock). It blocks until done, bounded by the hook's
// configured timeout counted from its call, lock waits and the marking of
// failed nodes included (power.Budget), and is idempotent as the hook
// bodies are. A node whose lock another process holds for a quarter of
// the timeout is left alone (resume: failed with reason.Interrupted). Errors before any node was touched carry their exit code
// (*exitcode.Error).
func Run(ctx context.Context, k Kind, cfgPath, expr string, resumeFile []byte) error {
	return run(ctx, k, cfgPath, expr, resumeFile, builder{slurm: build.Slurm, runtimes: build.Runtimes})
}

// builder is where a run gets its Slurm client and runtimes:
// cmd/internal/build, or the fakes of those outside APIs in tests.
type builder struct {
	slurm    func(ctx context.Context, cfg *conf.Config, log *slog.Logger) (slurm.Client, error)
	runtimes func(ctx context.Context, cfg *conf.Config, log *slog.Logger) (map[string]runtime.Runtime, error)
}

func run(ctx context.Context, k Kind, cfgPath, expr string, resumeFile []byte, bld builder) error {
	start := time.Now()
	cfg, cfgErr := conf.Load(cfgPath)
	if cfgErr == nil {
		cfgErr = cfg.Validate()
	}
	if cfgErr != nil {
		return configFailed(ctx, k, cfg, expr, cfgErr)
	}

	log, closer, err := logging.Open(cfg.Log.File, cfg.Log.Level, "slurm-elastic-"+string(k))
	if err != nil {
		// Slurm discards stderr, but the nodes still get powered: a log
		// file made unusable (root-owned, say) must not stop the hooks.
		log, closer, _ = logging.Open(logging.Stderr, cfg.Log.Level, "slurm-elastic-"+string(k))
		log.Error("cannot open the log file: logging to stderr, which Slurm discards", "error", err)
	}
	defer closer.Close()

	hc := cfg.Resume
	if k == Suspend {
		hc = cfg.Suspend
	}
	// Nothing of the run outlives hc.Timeout from its start, lock waits
	// included: Slurm kills the hook after its timeout.
	budget := power.NewBudget(start, hc.Timeout)
	ctx, cancel := context.WithDeadline(ctx, budget.End)
	defer cancel()
	fctx, fcancel := budget.FinishContext(ctx)
	defer fcancel()
	wctx, wcancel := budget.WorkContext(ctx)
	defer wcancel()

	nodes, err := hostlist.Expand(expr)
	if err != nil {
		log.Error("invalid hostlist argument: nothing done", "hostlist", expr, "error", err)
		return exitcode.Errorf(exitcode.Usage, "hostlist %q: %w", expr, err)
	}
	log.Info("hook called", "hostlist", expr, "nodes", len(nodes), "config", cfg.File, "version", version.Version)

	var rf *resume.ResumeFile
	if len(resumeFile) > 0 {
		if rf, err = resume.ParseResumeFile(resumeFile); err != nil {
			log.Warn("ignoring unreadable SLURM_RESUME_FILE", "error", err)
		}
	}

	// One lock per node: hooks (and the daemon) working on other nodes
	// never wait for this run, nor this run for them.
	lctx, lcancel := context.WithDeadline(wctx, budget.LockBy)
	held, missed, err := nodelock.Nodes(lctx, cfg.StateDir, nodes)
	lcancel()
	if err != nil {
		log.Error("cannot take the node locks: nothing done", "error", err)
		return exitcode.New(exitcode.Busy, err)
	}
	defer held.Release()
	busy := busyNodes(log, nodes, missed, budget.LockBy.Sub(start))
	if len(missed) > 0 {
		nodes = slices.DeleteFunc(nodes, func(n string) bool { _, m := missed[n]; return m })
	}

	sc, err := bld.slurm(wctx, cfg, log)
	if err != nil {
		log.Error("cannot reach Slurm: nothing done", "backend", cfg.Slurm.Backend, "error", err)
		if k == Resume {
			failViaScontrol(fctx, log, cfg, append(nodes, slices.Sorted(maps.Keys(missed))...), reason.SlurmUnreachable, err.Error())
		}
		return fmt.Errorf("slurm: %w", err)
	}
	if k == Resume {
		// Launching nodes Slurm cannot be told about only makes orphans:
		// make sure the controller answers first (one cheap request).
		if err := sc.Ping(wctx); err != nil {
			log.Error("Slurm does not answer: nothing launched", "backend", cfg.Slurm.Backend, "error", err)
			failViaScontrol(fctx, log, cfg, append(nodes, slices.Sorted(maps.Keys(missed))...), reason.SlurmUnreachable, err.Error())
			return fmt.Errorf("slurm: %w", err)
		}
		// A node another process works on is not launched here: it is
		// failed (not a launch failure) so its job is requeued at once.
		var fs []power.Failure
		for _, n := range slices.Sorted(maps.Keys(missed)) {
			fs = append(fs, power.Failure{Node: n, Code: reason.Interrupted, Msg: lockMsg(budget.LockBy.Sub(start))})
		}
		power.FailAll(wctx, log, sc, fs)
	}
	if len(nodes) == 0 {
		return exitcode.New(exitcode.Busy, busy)
	}
	rts, err := bld.runtimes(wctx, cfg, log)
	if err != nil {
		log.Error("cannot set up runtimes: nothing done", "error", err)
		return err
	}
	d := power.Deps{Config: cfg, Runtimes: rts, Slurm: sc, Log: log, Budget: budget}
	switch k {
	case Suspend:
		err = suspend.Suspend(ctx, d, nodes)
	case Resume, ResumeFail:
		// The breaker and the launch counts: each read-modify-write under
		// the state lock, held only for it.
		d.Breaker = &breaker.Store{Dir: cfg.StateDir, Log: log, Lock: func(ctx context.Context) (func(), error) {
			return nodelock.State(ctx, cfg.StateDir)
		}}
		if k == Resume {
			if limitedHosts(cfg) {
				// Room and GPUs are counted from the hosts' containers:
				// two resumes placing at once would hand out the same.
				pctx, pcancel := context.WithDeadline(wctx, budget.LockBy)
				release, perr := nodelock.Place(pctx, cfg.StateDir)
				pcancel()
				if perr != nil {
					log.Warn("placement lock not had: placing anyway; a host's limits may be exceeded by another resume placing now", "error", perr)
				} else {
					defer release()
				}
			}
			err = resume.Resume(ctx, d, nodes, rf)
		} else {
			err = resume.ResumeFail(ctx, d, nodes)
		}
	}
	return errors.Join(err, busy)
}

// limitedHosts reports whether a Podman host has limits (max_nodes, cpus,
// memory_mb, gpus) that placement counts.
func limitedHosts(cfg *conf.Config) bool {
	for _, h := range cfg.Podman.Hosts {
		if h.MaxNodes > 0 || h.CPUs > 0 || h.MemoryMB > 0 || len(h.GPUs) > 0 {
			return true
		}
	}
	return false
}

// busyNodes logs each node whose lock was not had and returns their
// errors joined (nil when none). wait is how long the run waited.
func busyNodes(log *slog.Logger, nodes []string, missed map[string]error, wait time.Duration) error {
	var errs []error
	for _, n := range slices.Sorted(maps.Keys(missed)) {
		err := missed[n]
		if errors.Is(err, nodelock.ErrBusy) {
			log.Error("node left alone: another slurm-elastic process (a hook or the daemon) held its lock for the whole lock wait",
				"node", n, "lock_wait", wait.Round(time.Second).String(), "error", err)
		} else {
			log.Error("node left alone: its lock cannot be taken", "node", n, "error", err)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// lockMsg is the reason message of a node whose lock was not had.
func lockMsg(wait time.Duration) string {
	return fmt.Sprintf("not launched: another slurm-elastic process (hook or daemon) held the node's lock for the resume hook's whole lock wait (%s)", wait.Round(time.Second))
}

// configFailed logs a config problem where an admin will look (the
// configured or default log file, else stderr) and, for resume, sets the
// nodes DOWN through scontrol with a Config reason so their jobs are
// requeued rather than waiting for ResumeTimeout.
func configFailed(ctx context.Context, k Kind, cfg *conf.Config, expr string, cfgErr error) error {
	dest := conf.Default().Log.File
	if cfg != nil && cfg.Log.File != "" {
		dest = cfg.Log.File
	}
	log, closer, err := logging.Open(dest, "info", "slurm-elastic-"+string(k))
	if err != nil {
		log, closer, _ = logging.Open(logging.Stderr, "info", "slurm-elastic-"+string(k))
	}
	defer closer.Close()
	log.Error("configuration is invalid: nothing done", "hostlist", expr, "error", cfgErr)
	if k == Resume {
		if nodes, err := hostlist.Expand(expr); err == nil {
			failViaScontrol(ctx, log, nil, nodes, reason.Config, firstLine(cfgErr))
		}
	}
	return exitcode.Errorf(exitcode.Config, "config: %w", cfgErr)
}

// failViaScontrol is the last resort when the configured Slurm client
// cannot be had: scontrol (from the config, else the default) fails the
// nodes the one way (power.Fail), so their jobs are requeued. Best effort:
// failures are logged. It blocks until ctx's deadline or for at most
// slurm.FailTimeout.
func failViaScontrol(ctx context.Context, log *slog.Logger, cfg *conf.Config, nodes []string, code reason.Code, msg string) {
	sc, err := build.Scontrol(ctx, cfg, log)
	if err != nil {
		log.Error("could not set nodes DOWN: no scontrol", "nodes", hostlist.Compress(nodes), "error", err)
		return
	}
	power.Fail(ctx, log, sc, nodes, code, msg)
}

func firstLine(err error) string {
	s := err.Error()
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
