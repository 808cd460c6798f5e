// Command slurm-elastic-resume-fail is Slurm's ResumeFailProgram: slurm.conf names it and
// slurmctld calls it with a hostlist. See docs/operations.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/hookcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := hookcmd.Main(ctx, hookcmd.ResumeFail, os.Args)
	stop()
	os.Exit(code)
}
