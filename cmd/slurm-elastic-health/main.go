// Command slurm-elastic-health is the node health daemon: it checks GPUs
// (NVML), memory, disks, mounts, CPUs, daemons and admin scripts, drains
// the node in Slurm when a check keeps failing and undrains it when the
// problem has cleared. With --once it is Slurm's HealthCheckProgram. See
// docs/health.md. Build it with `make build-health` (cgo, for NVML).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/healthcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := healthcmd.Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
