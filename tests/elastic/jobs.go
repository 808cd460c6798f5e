package elastic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Job is what the tests read of a job from `scontrol -o show job ID` (text:
// 22.05's scontrol has no --json).
type Job struct {
	ID       int
	State    []string // JobState
	Nodes    string   // NodeList ("" when none)
	Restarts int
	Reason   string
}

// ParseJob reads the fields of Job from one line of `scontrol -o show job`.
// It does not block.
func ParseJob(line string) (Job, error) {
	var j Job
	kv := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			if _, dup := kv[k]; !dup {
				kv[k] = v
			}
		}
	}
	var err1, err2 error
	j.ID, err1 = strconv.Atoi(kv["JobId"])
	j.Restarts, err2 = strconv.Atoi(kv["Restarts"])
	if err := errors.Join(err1, err2); err != nil || kv["JobState"] == "" {
		return j, fmt.Errorf("no JobId, JobState or Restarts: %v", err)
	}
	j.State = []string{kv["JobState"]}
	if j.Nodes = kv["NodeList"]; j.Nodes == "(null)" {
		j.Nodes = ""
	}
	j.Reason = kv["Reason"]
	return j, nil
}

// WaitFor polls cond every 500ms until it holds, and fails t when d passes
// first, with what it waited for and the last state cond returned. It
// blocks.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("after %v still waiting for %s; last seen: %s", d, what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// HookLog returns slurm-elastic's log file of the head (the hooks' and the
// reconciler's JSON lines, log.file of the config), "" while there is
// none; a read error fails t. It reads one file on the host.
func (c *Cluster) HookLog(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.LogDir, "slurm-elastic.log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("hook log: %v", err)
	}
	return string(b)
}

// LogHas reports whether a JSON log line of log has message msg for node.
func LogHas(log, msg, node string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"msg":"`+msg+`"`) && strings.Contains(l, `"node":"`+node+`"`) {
			return true
		}
	}
	return false
}

// Event is one reconciler decision as `slurm-elastic events --json` prints it.
type Event struct {
	Time                               time.Time
	Node, Group, Kind, Saw, Did, Error string
}

// ParseEvents reads the output of `slurm-elastic events --json` (a JSON
// object a line). It does not block.
func ParseEvents(out string) ([]Event, error) {
	var evs []Event
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var e Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			return evs, fmt.Errorf("events: %w: %s", err, l)
		}
		evs = append(evs, e)
	}
	return evs, nil
}

// MustExec runs argv in head as root (no shell; for a minute at most) and
// returns its stdout; an error fails t. It blocks.
func (c *Cluster) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.Exec(ctx, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out
}

// Timeout returns a context that ends after d or when t's test ends. It
// does not block.
func Timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
