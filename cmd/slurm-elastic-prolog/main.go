// Command slurm-elastic-prolog is slurmctld's PrologSlurmctld (rendered by
// `slurm-elastic conf slurm`): a job on powered-down nodes starts as soon
// as they register. See docs/operations.md, "Cold start".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/prologcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := prologcmd.Main(ctx, os.Args, os.Getenv)
	stop()
	os.Exit(code)
}
