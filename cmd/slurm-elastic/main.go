// Command slurm-elastic is the administration CLI: conf check, conf slurm,
// hostlist tools and the node table.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/slurm-elastic/slurm-elastic/internal/admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := admin.App(os.Stdout).RunContext(ctx, os.Args)
	stop()
	if err == nil {
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "slurm-elastic: %v\n", err)
	var ee *admin.ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.Code)
	}
	os.Exit(1)
}
