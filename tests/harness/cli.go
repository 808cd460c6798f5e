package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// The frame of the test clusters' shell commands (cmd/se-cluster, tests/kube's se-kube):
// one main, one way to read a subcommand and its -name.

// RunFunc is a test command's body: it runs the command line args (without the program
// name) and returns the exit code and the error to print.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error)

// Main runs run with os.Args under a context that SIGINT and SIGTERM end, prints its
// error as "prog: error" on stderr and exits with its code. It does not return.
func Main(prog string, run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, prog+":", err)
	}
	os.Exit(code)
}

// Subcommand splits args into the subcommand and the rest, and returns the subcommand's
// flag set (named "prog cmd", its errors and help to stderr) with the flag -name (default
// defName) already defined. No subcommand is an error (usage). It does not block.
func Subcommand(prog, usage, defName string, args []string, stderr io.Writer) (cmd string, fs *flag.FlagSet, name *string, rest []string, err error) {
	if len(args) == 0 {
		return "", nil, nil, nil, errors.New(usage)
	}
	fs = flag.NewFlagSet(prog+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	name = fs.String("name", defName, "cluster name")
	return args[0], fs, name, args[1:], nil
}
