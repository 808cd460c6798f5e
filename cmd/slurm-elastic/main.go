// Command slurm-elastic is the administration CLI: conf check, conf slurm,
// hostlist tools, the node table, the reconciler daemon and the circuit
// breaker. Exit codes: cmd/internal/exitcode.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/admincmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := admincmd.Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
