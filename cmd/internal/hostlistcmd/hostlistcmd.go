// Package hostlistcmd is the `hostlist expand|compress` command line. Its
// Expand and Compress are the one implementation behind both
// `slurm-elastic hostlist ...` (cmd/internal/admincmd, through urfave/cli) and the
// lean `slurm-elastic-hostlist` binary (Main, through the standard flag
// package). The package imports internal/hostlist, internal/version, exitcode and the
// standard library only: a binary built on Main starts as fast as scontrol,
// without the package inits of Podman, Slinky, the config or urfave/cli
// (docs/benchmarks.md, section 2).
package hostlistcmd

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/version"
)

// Command is one subcommand, described once for both command lines.
type Command struct {
	Name, Usage, ArgsUsage string
}

// Commands are the subcommands, in help order.
var Commands = []Command{
	{Name: "expand", Usage: "print one node name per line", ArgsUsage: "EXPR"},
	{Name: "compress", Usage: "print the hostlist expression of names (args, or stdin when none)", ArgsUsage: "[NAME...]"},
}

// Expand writes the names of the one expression in args to w, one per
// line, streamed: a 100,000-name expansion never exists as a []string. An
// invalid expression is an *exitcode.Error with exitcode.Usage, a wrong argument
// count one too; nothing is written then. Blocks until written.
func Expand(w io.Writer, args []string) error {
	if len(args) != 1 {
		return exitcode.New(exitcode.Usage, errors.New("hostlist expand: want exactly one EXPR"))
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	err := hostlist.ExpandFunc(args[0], 0, func(name []byte) error {
		bw.Write(name)
		return bw.WriteByte('\n')
	})
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	return bw.Flush()
}

// Compress writes the hostlist expression of the names in args (separated
// by commas or blanks) to w; with no args it reads the names from stdin.
// An invalid name is an *exitcode.Error with exitcode.Usage and nothing is
// written. Blocks until stdin is read and the line written.
func Compress(w io.Writer, stdin io.Reader, args []string) error {
	var comp hostlist.Compressor
	add := func(field string) error {
		for _, n := range strings.FieldsFunc(field, isSep) {
			if err := hostlist.ValidName(n); err != nil {
				return exitcode.New(exitcode.Usage, err)
			}
			comp.Add(n)
		}
		return nil
	}
	if len(args) > 0 {
		for _, a := range args {
			if err := add(a); err != nil {
				return err
			}
		}
	} else {
		s := bufio.NewScanner(stdin)
		s.Buffer(make([]byte, 1<<20), 1<<26)
		for s.Scan() {
			if err := add(s.Text()); err != nil {
				return err
			}
		}
		if err := s.Err(); err != nil {
			return fmt.Errorf("read names: %w", err)
		}
	}
	_, err := fmt.Fprintln(w, comp.String())
	return err
}

func isSep(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }

// Run runs subcommand name with its arguments (after flag parsing).
func Run(name string, stdin io.Reader, stdout io.Writer, args []string) error {
	switch name {
	case "expand":
		return Expand(stdout, args)
	case "compress":
		return Compress(stdout, stdin, args)
	}
	return exitcode.Errorf(exitcode.Usage, "no such command %q", name)
}

// Prog is the lean binary's name.
const Prog = "slurm-elastic-hostlist"

// Main is the lean binary: `slurm-elastic-hostlist [--help|--version]
// expand EXPR | compress [NAME...]`, parsed as `slurm-elastic hostlist`
// parses it (Go flag syntax; -h/--help after a subcommand; "--" ends the
// flags), with the same output, messages and exit codes. args[0] is the
// program. It returns the exit code; errors go to stderr as "prog: msg".
// Blocks until done.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	top := newFlags()
	ver := top.Bool("version", false, "")
	top.BoolVar(ver, "v", false, "")
	if err := top.Parse(args[1:]); err != nil {
		fmt.Fprintf(stdout, "Incorrect Usage: %v\n\n", err)
		appHelp(stdout)
		return fail(stderr, exitcode.New(exitcode.Usage, err))
	}
	rest := top.Args()
	switch {
	case top.help:
		appHelp(stdout)
		return 0
	case *ver:
		fmt.Fprintf(stdout, "%s version %s\n", Prog, version.Version)
		return 0
	case len(rest) == 0:
		appHelp(stdout)
		return 0
	case rest[0] == "help" || rest[0] == "h":
		if len(rest) == 1 {
			appHelp(stdout)
			return 0
		}
		if c, ok := command(rest[1]); ok {
			commandHelp(stdout, c)
			return 0
		}
		fmt.Fprintf(stderr, "No help topic for '%s'\n", rest[1])
		return exitcode.Usage
	}
	c, ok := command(rest[0])
	if !ok {
		fmt.Fprintf(stderr, "No help topic for '%s'\n", rest[0])
		return exitcode.Usage
	}
	fs := newFlags()
	if err := fs.Parse(rest[1:]); err != nil {
		fmt.Fprintf(stdout, "Incorrect Usage: %v\n\n", err)
		commandHelp(stdout, c)
		return fail(stderr, exitcode.New(exitcode.Usage, err))
	}
	if fs.help {
		commandHelp(stdout, c)
		return 0
	}
	return fail(stderr, Run(c.Name, stdin, stdout, fs.Args()))
}

// fail reports err on stderr as "prog: err" and returns its exit code
// (exitcode.Of); a flag error is exitcode.Usage.
func fail(stderr io.Writer, err error) int {
	if err == nil {
		return exitcode.OK
	}
	fmt.Fprintf(stderr, "%s: %v\n", Prog, err)
	return exitcode.Of(err)
}

type flags struct {
	*flag.FlagSet
	help bool
}

func newFlags() *flags {
	f := &flags{FlagSet: flag.NewFlagSet(Prog, flag.ContinueOnError)}
	f.SetOutput(io.Discard)
	f.BoolVar(&f.help, "help", false, "")
	f.BoolVar(&f.help, "h", false, "")
	return f
}

func command(name string) (Command, bool) {
	for _, c := range Commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

func appHelp(w io.Writer) {
	fmt.Fprintf(w, "NAME:\n   %s - expand or compress Slurm hostlist expressions (as `slurm-elastic hostlist`)\n\n", Prog)
	fmt.Fprintf(w, "USAGE:\n   %s [global options] command [command options]\n\n", Prog)
	fmt.Fprintf(w, "VERSION:\n   %s\n\nCOMMANDS:\n", version.Version)
	for _, c := range Commands {
		fmt.Fprintf(w, "   %-9s %s\n", c.Name, c.Usage)
	}
	fmt.Fprint(w, "\nGLOBAL OPTIONS:\n   --help, -h     show help\n   --version, -v  print the version\n")
}

func commandHelp(w io.Writer, c Command) {
	fmt.Fprintf(w, "NAME:\n   %s %s - %s\n\n", Prog, c.Name, c.Usage)
	fmt.Fprintf(w, "USAGE:\n   %s %s [command options] %s\n\n", Prog, c.Name, c.ArgsUsage)
	fmt.Fprint(w, "OPTIONS:\n   --help, -h  show help\n")
}
