// Package exec runs admin-supplied health check programs with the
// node-problem-detector exit-code protocol: 0 = OK, 1 = problem,
// 2 = unknown. Programs run from an argv (never a shell), in a process
// group of their own that is killed on timeout, with a minimal environment
// and their output capped.
package exec

import (
	"bytes"
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/fileperm"
	"github.com/slurm-elastic/slurm-elastic/nodehealth"
)

// geteuid is os.Geteuid; tests replace it.
var geteuid = os.Geteuid

// DefaultMaxOutput caps the output kept from one run.
const DefaultMaxOutput = 4096

// Exit codes of the protocol.
const (
	ExitOK      = 0
	ExitProblem = 1
	ExitUnknown = 2
)

// Script is one custom check.
type Script struct {
	CheckName string
	Argv      []string      // Argv[0] is an absolute path
	Timeout   time.Duration // 0: the context's deadline only
	MaxOutput int           // bytes of stdout+stderr kept; 0 = DefaultMaxOutput
	K         int           // DrainAfter override; 0 = the policy's
}

// Name implements nodehealth.Check.
func (s *Script) Name() string { return s.CheckName }

// DrainAfter implements nodehealth.DrainAfterer.
func (s *Script) DrainAfter() int { return s.K }

// Run implements nodehealth.Check: it checks the program (internal/fileperm:
// it and its directory owned by root or this process's user, neither
// group- nor world-writable; otherwise Unknown naming the file and the
// fix, and it is not run), runs it once and maps its exit code. The finding's message is the first non-empty line of the
// output. A program that cannot start, dies on a signal, exits with another
// code or outlives its timeout is Unknown: a broken check never drains a
// node. Blocks until the program exits or the timeout; the whole process
// group is killed on timeout.
func (s *Script) Run(ctx context.Context) []nodehealth.Finding {
	if len(s.Argv) == 0 {
		return []nodehealth.Finding{nodehealth.Unknownf(s.CheckName, "no command configured")}
	}
	// Run as root, a program another user can change is theirs to run as
	// root: it is never run, the check stays Unknown until it is fixed.
	if err := fileperm.Program(s.Argv[0], geteuid()); err != nil {
		return []nodehealth.Finding{nodehealth.Unknownf(s.CheckName, "not run: %s", strings.ReplaceAll(err.Error(), "\n", "; "))}
	}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	out := &capped{max: s.MaxOutput}
	if out.max <= 0 {
		out.max = DefaultMaxOutput
	}
	cmd := osexec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: a script's children must not outlive it.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second // a grandchild holding the pipe open
	start := time.Now()
	err := cmd.Run()
	msg := out.firstLine()
	var exit *osexec.ExitError
	switch {
	case ctx.Err() != nil:
		return []nodehealth.Finding{nodehealth.Unknownf(s.CheckName, "timed out after %s (%v)%s",
			time.Since(start).Round(time.Millisecond), ctx.Err(), suffix(msg))}
	case err == nil:
		return []nodehealth.Finding{nodehealth.OKf(s.CheckName, "%s", or(msg, "ok"))}
	case errors.As(err, &exit) && exit.Exited():
		switch exit.ExitCode() {
		case ExitProblem:
			return []nodehealth.Finding{nodehealth.Failf(s.CheckName, nodehealth.ActionDrain, "%s", or(msg, "problem (exit 1)"))}
		case ExitUnknown:
			return []nodehealth.Finding{nodehealth.Unknownf(s.CheckName, "%s", or(msg, "unknown (exit 2)"))}
		default:
			return []nodehealth.Finding{nodehealth.Unknownf(s.CheckName, "exit %d, want 0, 1 or 2%s", exit.ExitCode(), suffix(msg))}
		}
	default:
		return []nodehealth.Finding{nodehealth.Unknownf(s.CheckName, "%s: %v%s", s.Argv[0], err, suffix(msg))}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// capped keeps the first max bytes written and discards the rest.
type capped struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	if c.buf.Len() >= c.max {
		c.truncated = true
	}
	return len(p), nil
}

// firstLine is the first non-empty line, at most 200 bytes.
func (c *capped) firstLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range strings.Split(c.buf.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 200 {
				l = l[:200] + "..."
			}
			return strings.ToValidUTF8(l, "?")
		}
	}
	return ""
}
