// Package logging builds the structured logger every slurm-elastic program
// uses. Slurm discards the output of its power-save hooks, so the hooks log
// to a file of their own (or journald) as JSON lines.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/slurm-elastic/slurm-elastic/internal/statefile"
)

// Destinations other than a file path.
const (
	Stderr   = "stderr"
	Journald = "journald"
)

// Open returns a JSON logger writing to dest (a file path, "stderr" or
// "journald") at level, with program and pid on every line, and a closer
// for the destination. A log file is opened for appending (created 0640,
// its directory 0750; a new file created by root gets the owner of its
// directory, statefile.MatchOwner, so SlurmUser can go on writing it). Open does not block; it is not idempotent (each
// call opens the destination again).
func Open(dest, level, program string) (*slog.Logger, io.Closer, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, nil, err
	}
	var w io.Writer
	var c io.Closer = nopCloser{}
	switch dest {
	case "", Stderr:
		w = os.Stderr
	case Journald:
		j, err := dialJournal()
		if err != nil {
			return nil, nil, fmt.Errorf("log to journald: %w", err)
		}
		w, c = j, j
	default:
		if err := os.MkdirAll(filepath.Dir(dest), 0o750); err != nil {
			return nil, nil, fmt.Errorf("log file %s: %w", dest, err)
		}
		f, err := statefile.Create(dest, os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", statefile.Unusable(dest, err))
		}
		w, c = f, f
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})
	return slog.New(h).With("program", program, "pid", os.Getpid()), c, nil
}

// ParseLevel maps debug, info, warn and error ("" = info) to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
