package admincmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"

	"github.com/urfave/cli/v2"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/logging"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelock"
)

func breakerCommand() *cli.Command {
	return &cli.Command{
		Name:   "breaker",
		Usage:  "list the groups' circuit breakers (docs/reconciler.md); `breaker reset` re-arms them",
		Action: breakerList,
		Subcommands: []*cli.Command{
			{
				Name:      "reset",
				Usage:     "re-arm the circuit breaker of GROUP (or every group with --all): launches resume, the daemon returns its nodes to service",
				ArgsUsage: "GROUP|--all",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "all", Usage: "every group"},
					&cli.DurationFlag{Name: "wait", Value: 30 * time.Second, Usage: "how long to wait for the state lock power.lock (5s to 30s)"},
				},
				Action: breakerReset,
			},
		},
	}
}

// breakerList prints one row per configured group. It reads breaker.json
// only; it takes no lock and never blocks on Slurm or Podman.
func breakerList(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	st, err := breaker.Load(cfg.StateDir)
	if errors.Is(err, breaker.ErrCorrupt) {
		fmt.Fprintf(c.App.ErrWriter, "warning: %v (read as empty; the next hook run or `breaker reset` moves it aside)\n", err)
	} else if err != nil {
		return exitcode.New(exitcode.Failed, err)
	}
	writeBreakers(c.App.Writer, cfg, st)
	return nil
}

func writeBreakers(w io.Writer, cfg *conf.Config, st *breaker.State) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "GROUP\tBREAKER\tFAILURES\tSINCE\tLAST FAILURE\n")
	for _, g := range cfg.Groups {
		b := st.Get(g.Name)
		state, since := "closed", "-"
		if b.Open {
			state, since = "OPEN", b.OpenedAt.UTC().Format(time.RFC3339)
			if cfg.Breaker.Reset > 0 {
				since += " (re-arms " + b.OpenedAt.Add(cfg.Breaker.Reset).UTC().Format(time.RFC3339) + ")"
			}
		}
		if cfg.Breaker.Threshold == 0 {
			state = "off"
		}
		last := b.LastFailure
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", g.Name, state, b.Failures, cfg.Breaker.Threshold, since, last)
	}
	tw.Flush()
	if slices.ContainsFunc(cfg.Groups, func(g conf.Group) bool { return st.IsOpen(g.Name) }) {
		fmt.Fprintln(w, "re-arm with: slurm-elastic breaker reset GROUP (or --all)")
	}
}

// breakerReset re-arms breakers under the state lock power.lock (waiting at
// most --wait), logs it to the configured log, and prints the result. It
// blocks on the lock; idempotent.
func breakerReset(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	var groups []string
	switch {
	case c.Bool("all") && c.NArg() == 0:
		for _, g := range cfg.Groups {
			groups = append(groups, g.Name)
		}
	case !c.Bool("all") && c.NArg() == 1:
		g := c.Args().First()
		if _, ok := cfg.Inventory().Group(g); !ok {
			return exitcode.New(exitcode.Usage, fmt.Errorf("breaker reset: no group %q in %s", g, cfg.File))
		}
		groups = []string{g}
	default:
		return exitcode.New(exitcode.Usage, errors.New("breaker reset: give one GROUP or --all"))
	}
	// Log where the hooks and the daemon do, but never create that file
	// here: made by root, the hooks (SlurmUser) could not write it.
	dest := cfg.Log.File
	if _, err := os.Stat(dest); err != nil && dest != logging.Stderr && dest != logging.Journald {
		dest = logging.Stderr
	}
	log, closer, lerr := logging.Open(dest, cfg.Log.Level, "slurm-elastic")
	if lerr != nil {
		log, closer, _ = logging.Open(logging.Stderr, "info", "slurm-elastic")
	}
	defer closer.Close()
	// One read-modify-write under power.lock, as the hooks and the daemon do.
	busy := false
	store := breaker.Store{Dir: cfg.StateDir, Log: log, Lock: func(ctx context.Context) (func(), error) {
		release, err := powerLock(cfg.StateDir, c.Duration("wait"))(ctx)
		if err != nil {
			busy = true
			return nil, err
		}
		// A power.lock root left on an old release: give it to the state dir's owner.
		if err := breaker.MatchOwner(cfg.StateDir, filepath.Join(cfg.StateDir, nodelock.StateFile)); err != nil {
			release()
			return nil, err
		}
		return release, nil
	}}
	now := time.Now()
	var was []bool
	if _, err := store.Update(c.Context, func(st *breaker.State) {
		for _, g := range groups {
			was = append(was, st.Reset(g, now))
		}
	}); err != nil {
		if busy {
			return exitcode.New(exitcode.Busy, fmt.Errorf("breaker reset: %w", err))
		}
		return exitcode.New(exitcode.Failed, fmt.Errorf("breaker reset: %w", err))
	}
	for i, g := range groups {
		if was[i] {
			log.Warn("circuit breaker re-armed by command: launches resume; the daemon returns the group's nodes to service", "group", g)
			fmt.Fprintf(c.App.Writer, "%s: re-armed (was open)\n", g)
		} else {
			log.Info("circuit breaker reset by command (it was closed): failure count cleared", "group", g)
			fmt.Fprintf(c.App.Writer, "%s: failure count cleared (was closed)\n", g)
		}
	}
	return nil
}

// breakerCell is a group's BREAKER column in `slurm-elastic status`.
func breakerCell(b *breaker.Group) string {
	switch {
	case b == nil:
		return "-"
	case b.Open:
		return fmt.Sprintf("OPEN since %s (%d failures)", b.OpenedAt.UTC().Format(time.RFC3339), b.Failures)
	default:
		return fmt.Sprintf("closed, %d failures", b.Failures)
	}
}
