package admincmd

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelog"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print the saved log of NODE's failed instance (the tail kept before it was removed: launch failed, resume timeout, dead, stuck, unhealthy)",
		ArgsUsage: "NODE",
		Action:    logs,
	}
}

// logs prints NODE's saved logs (state_dir/nodelogs), the older first and
// the latest last. It reads files only: no lock, no Slurm, no Podman.
// None saved is exitcode.Failed with a message saying where it looked.
func logs(c *cli.Context) error {
	if c.NArg() != 1 {
		return exitcode.New(exitcode.Usage, errors.New("logs: give one NODE"))
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	files, err := nodelog.Read(cfg.StateDir, c.Args().First())
	switch {
	case errors.Is(err, nodelog.ErrNone):
		return exitcode.New(exitcode.Failed, err)
	case errors.Is(err, nodelog.ErrName):
		return exitcode.New(exitcode.Usage, fmt.Errorf("logs: %w", err))
	case err != nil:
		return exitcode.New(exitcode.Failed, err)
	}
	for i, f := range files {
		if i > 0 {
			fmt.Fprintln(c.App.Writer)
		}
		fmt.Fprintf(c.App.Writer, "==> %s <==\n", f.Path)
		if _, err := c.App.Writer.Write(f.Data); err != nil {
			return err
		}
	}
	return nil
}
