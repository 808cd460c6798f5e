// Package prologcmd is slurm-elastic-prolog, slurmctld's PrologSlurmctld:
// environment and config in, prolog.Wait, the timeline records, and the
// site's own PrologSlurmctld chained after. It imports no runtime (the
// binary runs for every job: it must start fast), so it builds its Slurm
// client with slurm.New directly rather than through cmd/internal/build.
package prologcmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/logging"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/timeline"
	"github.com/slurm-elastic/slurm-elastic/internal/version"
	"github.com/slurm-elastic/slurm-elastic/prolog"
)

// Program names the binary in logs.
const Program = "slurm-elastic-prolog"

const usage = Program + ` - slurmctld's PrologSlurmctld for slurm-elastic

USAGE:
   PrologSlurmctld=/usr/libexec/slurm-elastic/slurm-elastic-prolog   (in slurm.conf; ` + "`slurm-elastic conf slurm`" + ` renders it)

A job on powered-down nodes starts as soon as its nodes register, not at
slurmctld's next 30 s pass: the prolog waits until none of the job's nodes
(SLURM_JOB_NODELIST) is powering up, then exits 0. It always exits 0 itself;
with power_save.site_prolog it then runs the site's own PrologSlurmctld.

ENVIRONMENT:
   SLURM_JOB_ID, SLURM_JOB_NODELIST   set by slurmctld
   SLURM_ELASTIC_CONFIG               config file (default /etc/slurm-elastic/config.yaml)

See docs/operations.md, "Cold start", and ` + "`slurm-elastic trace JOBID`" + `.
`

// Main runs the prolog for the job slurmctld describes in its environment
// (getenv: SLURM_JOB_ID, SLURM_JOB_NODELIST; SLURM_ELASTIC_CONFIG names
// another config file) and returns the exit status. Its own part always
// returns 0: a non-zero PrologSlurmctld status makes Slurm requeue or hold
// the job, and no problem of ours is worth that; problems are logged. With
// power_save.site_prolog it then replaces itself with that program (exec),
// whose status becomes the job's; only when that exec fails does it return
// 1, as Slurm does for a PrologSlurmctld it cannot run. It blocks until
// the job's nodes are up, one is DOWN, or power_save.resume_timeout
// passes; idempotent.
//
// With --version or --help it prints that and returns 0; other arguments
// are a usage error (2): slurmctld passes none.
func Main(ctx context.Context, args []string, getenv func(string) string) int {
	start := time.Now()
	if len(args) > 1 {
		switch args[1] {
		case "--version", "-v":
			fmt.Printf("%s version %s\n", Program, version.Version)
			return 0
		case "--help", "-h":
			fmt.Print(usage)
			return 0
		default:
			fmt.Fprintf(os.Stderr, "%s: unexpected argument %q: slurmctld runs it with none (see --help)\n", Program, args[1])
			return 2
		}
	}
	cfg, err := conf.Load(getenv("SLURM_ELASTIC_CONFIG"))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		dest := conf.Default().Log.File
		if cfg != nil && cfg.Log.File != "" {
			dest = cfg.Log.File
		}
		log, closer, lerr := logging.Open(dest, "info", Program)
		if lerr != nil {
			log, closer, _ = logging.Open(logging.Stderr, "info", Program)
		}
		log.Error("configuration is invalid: the job is not waited for (it starts at slurmctld's next pass)",
			"job", getenv("SLURM_JOB_ID"), "error", err)
		closer.Close()
		return 0
	}
	log, closer, lerr := logging.Open(cfg.Log.File, cfg.Log.Level, Program)
	if lerr != nil {
		log, closer, _ = logging.Open(logging.Stderr, cfg.Log.Level, Program)
		log.Error("cannot open the log file: logging to stderr, which Slurm discards", "error", lerr)
	}
	defer closer.Close()

	if cfg.PowerSave.Prolog {
		// power_save.prolog: false with PrologSlurmctld still in slurm.conf
		// (not reconfigured yet): the job is not waited for.
		wait(ctx, cfg, log, getenv("SLURM_JOB_ID"), getenv("SLURM_JOB_NODELIST"), start)
	}

	site := cfg.PowerSave.SiteProlog
	if site == "" {
		return 0
	}
	closer.Close()
	err = syscall.Exec(site, []string{site}, os.Environ())
	log, closer, _ = logging.Open(cfg.Log.File, cfg.Log.Level, Program)
	defer closer.Close()
	log.Error("cannot run the site's PrologSlurmctld (power_save.site_prolog): the job fails as with any PrologSlurmctld Slurm cannot run",
		"job", getenv("SLURM_JOB_ID"), "site_prolog", site, "error", err)
	return 1
}

// wait is the prolog's own part: the job's nodes of slurm-elastic's groups,
// the fast path (none, or all up a while: no Slurm request), else
// prolog.Wait bounded by power_save.resume_timeout from start, with its
// records appended to the timeline. Never fails; blocks as prolog.Wait.
func wait(ctx context.Context, cfg *conf.Config, log *slog.Logger, job, nodelist string, start time.Time) {
	all, err := hostlist.Expand(nodelist)
	if err != nil || len(all) == 0 {
		log.Error("SLURM_JOB_NODELIST unusable: the job is not waited for", "job", job, "nodelist", nodelist, "error", err)
		return
	}
	inv := cfg.Inventory()
	var ours []string
	for _, n := range all {
		if _, ok := inv.GroupOf(n); ok {
			ours = append(ours, n)
		}
	}
	if len(ours) == 0 || prolog.Settled(cfg.StateDir, ours, start) {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, start.Add(cfg.PowerSave.ResumeTimeout))
	defer cancel()
	sc, err := slurm.New(ctx, cfg.Slurm, log)
	if err != nil {
		log.Error("cannot reach Slurm: the job is not waited for", "job", job, "backend", cfg.Slurm.Backend, "error", err)
		return
	}
	record := func(r timeline.Record) {
		if err := timeline.Append(cfg.StateDir, r); err != nil {
			log.Warn("cannot add to the timeline (slurm-elastic trace)", "job", job, "error", err)
		}
	}
	out := prolog.Wait(ctx, prolog.Deps{Slurm: sc, StateDir: cfg.StateDir, Log: log, Observe: record}, prolog.Job{ID: job, Nodes: ours})
	if out == prolog.NoWait {
		return
	}
	waited := time.Since(start).Round(time.Millisecond)
	record(timeline.Record{Time: time.Now(), Job: job, Event: timeline.PrologDone, Detail: fmt.Sprintf("%s after %s", out, waited)})
	switch out {
	case prolog.Up:
		log.Info("the job's nodes are up: it starts now", "job", job, "nodes", hostlist.Compress(ours), "waited", waited.String())
	case prolog.NodeDown:
		log.Warn("a node of the job is down: Slurm requeues the job", "job", job, "nodes", hostlist.Compress(ours), "waited", waited.String())
	case prolog.Stopped:
		log.Warn("slurmctld stopped the prolog: the job was requeued or cancelled while it waited", "job", job, "nodes", hostlist.Compress(ours), "waited", waited.String())
	default:
		log.Warn("the job's nodes were not up by power_save.resume_timeout: Slurm's own timeout handling takes over", "job", job,
			"nodes", hostlist.Compress(ours), "waited", waited.String(), "resume_timeout", cfg.PowerSave.ResumeTimeout.String())
	}
}
