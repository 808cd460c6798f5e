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
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/urfave/cli/v2"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/build"
	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/logging"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/statefile"
	"github.com/slurm-elastic/slurm-elastic/internal/version"
	"github.com/slurm-elastic/slurm-elastic/power"
	"github.com/slurm-elastic/slurm-elastic/resume"
	"github.com/slurm-elastic/slurm-elastic/suspend"
)

// Kind is which hook runs.
type Kind string

const (
	Resume     Kind = "resume"
	Suspend    Kind = "suspend"
	ResumeFail Kind = "resume-fail"
)

// LockFile is the file, in the state directory, that serialises hook runs
// so concurrent invocations never place or remove the same node twice.
const LockFile = "power.lock"

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
// (cmd/internal/exitcode: 1 a node failed, 2 usage, 3 config, 4 the lock
// was not had). It blocks until the hook is done and is safe to call once
// per process.
func Main(ctx context.Context, k Kind, args []string) int {
	err := App(k).RunContext(ctx, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "slurm-elastic-%s: %v\n", k, err)
	}
	return exitcode.Of(err)
}

// Run executes one hook on the nodes of expr. It blocks until done, bounded
// by the hook's configured timeout, and is idempotent as the hook bodies
// are. Errors before any node was touched carry their exit code
// (*exitcode.Error).
func Run(ctx context.Context, k Kind, cfgPath, expr string, resumeFile []byte) error {
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
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()

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

	unlock, err := lock(ctx, cfg.StateDir)
	if err != nil {
		log.Error("cannot take the hook lock: nothing done", "error", err)
		return exitcode.New(exitcode.Busy, err)
	}
	defer unlock()

	sc, err := build.Slurm(ctx, cfg, log)
	if err != nil {
		log.Error("cannot reach Slurm: nothing done", "backend", cfg.Slurm.Backend, "error", err)
		if k == Resume {
			failViaScontrol(ctx, log, cfg, nodes, reason.SlurmUnreachable, err.Error())
		}
		return fmt.Errorf("slurm: %w", err)
	}
	if k == Resume {
		// Launching nodes Slurm cannot be told about only makes orphans:
		// make sure the controller answers first (one cheap request).
		if err := sc.Ping(ctx); err != nil {
			log.Error("Slurm does not answer: nothing launched", "backend", cfg.Slurm.Backend, "error", err)
			failViaScontrol(ctx, log, cfg, nodes, reason.SlurmUnreachable, err.Error())
			return fmt.Errorf("slurm: %w", err)
		}
	}
	rts, err := build.Runtimes(ctx, cfg, log)
	if err != nil {
		log.Error("cannot set up runtimes: nothing done", "error", err)
		return err
	}
	d := power.Deps{Config: cfg, Runtimes: rts, Slurm: sc, Log: log}
	if k == Suspend {
		return suspend.Suspend(ctx, d, nodes)
	}
	// The breaker and the launch counts: read and written under the lock
	// held above, so concurrent hooks and the daemon never lose an update.
	bs, err := breaker.LoadForUpdate(cfg.StateDir, log)
	if err != nil {
		log.Error("breaker state unreadable: running without the circuit breaker and launch counts", "error", err)
	}
	d.Breaker = bs
	if k == Resume {
		err = resume.Resume(ctx, d, nodes, rf)
	} else {
		err = resume.ResumeFail(ctx, d, nodes)
	}
	if bs != nil {
		if serr := breaker.Save(cfg.StateDir, bs); serr != nil {
			log.Error("cannot save the breaker state and launch counts", "error", serr)
		}
	}
	return err
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
// failures are logged. It blocks for at most slurm.FailTimeout.
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

// lock takes the state directory's hook lock, waiting for it as long as
// ctx allows. The returned func releases it.
func lock(ctx context.Context, dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	if err := statefile.Touch(filepath.Join(dir, LockFile), 0o644); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	l := flock.New(filepath.Join(dir, LockFile))
	ok, err := l.TryLockContext(ctx, 50*time.Millisecond)
	if err != nil || !ok {
		return nil, fmt.Errorf("lock %s: %w", l.Path(), errors.Join(err, ctx.Err()))
	}
	return func() { _ = l.Unlock() }, nil
}
