// Command slurm-elastic-hostlist expands and compresses Slurm hostlist
// expressions: `slurm-elastic-hostlist expand EXPR` and
// `slurm-elastic-hostlist compress [NAME...]` (names from stdin when none).
// It is `slurm-elastic hostlist` in a binary that links nothing else, so it
// starts as fast as scontrol (docs/benchmarks.md, section 2). Output, errors
// and exit codes are the same: 1 for an invalid hostlist, name or flag, 2
// for a wrong argument count, 3 for an unknown subcommand.
package main

import (
	"os"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlistcli"
)

func main() {
	os.Exit(hostlistcli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
