// Package exitcode is the one exit-status table of every slurm-elastic
// binary (the power hooks, slurm-elastic, slurm-elastic-health,
// slurm-elastic-hostlist), documented in each man page under EXIT STATUS
// and in docs/operations.md. It imports only the standard library, so the
// lean hostlist binary can use it.
package exitcode

import (
	"errors"
	"fmt"
)

// The table. Codes above 1 mean nothing was done.
const (
	// OK: done.
	OK = 0
	// Failed: an operation failed for at least one node or target (the
	// others were done); slurm-elastic-health --once: a draining failure.
	Failed = 1
	// Usage: bad arguments, option, hostlist, node name or unknown command.
	Usage = 2
	// Config: the config file is invalid or unreadable.
	Config = 3
	// Busy: another process holds the lock (a hook: every node's
	// locks/NODE.lock; power.lock, daemon.lock).
	Busy = 4
	// Unknown: slurm-elastic-health --once: checks could not tell
	// (Unknown findings), no failure.
	Unknown = 5
)

// Table lists every code with its meaning, in order, for docs and tests.
var Table = []struct {
	Code    int
	Meaning string
}{
	{OK, "done"},
	{Failed, "an operation failed for at least one node or target; the others were done"},
	{Usage, "bad arguments, option, hostlist, node name or unknown command: nothing done"},
	{Config, "the config file is invalid or unreadable: nothing done"},
	{Busy, "another process holds the lock (node locks, power.lock, daemon.lock): nothing done"},
	{Unknown, "slurm-elastic-health --once: checks could not tell, no failure"},
}

// Error carries an exit code with its error.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New returns err with code (nil for a nil err).
func New(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Errorf is New(code, fmt.Errorf(format, args...)).
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Of maps err to the process exit code: OK for nil, the code of the
// outermost *Error, else Failed.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Failed
}
