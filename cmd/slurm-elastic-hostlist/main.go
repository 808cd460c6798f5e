// Command slurm-elastic-hostlist expands and compresses Slurm hostlist
// expressions: `slurm-elastic-hostlist expand EXPR` and
// `slurm-elastic-hostlist compress [NAME...]` (names from stdin when none).
// It is `slurm-elastic hostlist` in a binary that links nothing else, so it
// starts as fast as scontrol (docs/benchmarks.md, section 2). Output, errors
// and exit codes are the same (cmd/internal/exitcode: 2 for an invalid
// hostlist, name, flag, argument count or subcommand).
package main

import (
	"os"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/hostlistcmd"
)

func main() {
	os.Exit(hostlistcmd.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
