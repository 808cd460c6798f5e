// Command hostlistlean does what `slurm-elastic hostlist expand|compress`
// does, with the same internal/hostlist calls and I/O, in a binary that
// imports nothing else. The hostlist benchmark runs it beside the real CLI
// and scontrol to separate the cost of the hostlist code from the start-up
// cost of the full slurm-elastic binary (its size and package inits).
//
// Usage: hostlistlean expand EXPR | hostlistlean compress < NAMES
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hostlistlean expand EXPR | compress < NAMES")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "expand":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "hostlistlean expand: want exactly one EXPR")
			os.Exit(2)
		}
		names, err := hostlist.Expand(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		w := bufio.NewWriterSize(os.Stdout, 1<<16)
		for _, n := range names {
			w.WriteString(n)
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			os.Exit(1)
		}
	case "compress":
		var names []string
		s := bufio.NewScanner(os.Stdin)
		s.Buffer(make([]byte, 1<<20), 1<<26)
		for s.Scan() {
			names = append(names, strings.FieldsFunc(s.Text(), isSep)...)
		}
		if err := s.Err(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, n := range names {
			if err := hostlist.ValidName(n); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		fmt.Println(hostlist.Compress(names))
	default:
		fmt.Fprintln(os.Stderr, "usage: hostlistlean expand EXPR | compress < NAMES")
		os.Exit(2)
	}
}

func isSep(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }
