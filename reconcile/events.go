package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/statefile"
)

// Files the daemon keeps in the state directory. They are written durably
// (temporary file, fsync, rename, fsync of the directory), so a reader
// never sees half a file, even after a crash; a corrupt one is moved aside
// by LoadState.
const (
	EventsFile = "events.json"          // the last daemon.events decisions
	StatusFile = "status.json"          // the last round's view
	StateFile  = "reconcile-state.json" // timers that must survive a restart
	LockFile   = "daemon.lock"          // one daemon per head node
)

// Event is one decision and its outcome.
type Event struct {
	Time  time.Time `json:"time"`
	Node  string    `json:"node"`
	Group string    `json:"group"`
	Kind  Kind      `json:"kind"`
	Saw   string    `json:"saw"`
	Did   string    `json:"did"`
	Error string    `json:"error,omitempty"`
}

// Ring keeps the last N events. Safe for concurrent use.
type Ring struct {
	mu    sync.Mutex
	buf   []Event
	next  int
	full  bool
	added uint64 // events ever added
}

// NewRing returns a ring holding at most n (>= 1) events.
func NewRing(n int) *Ring { return &Ring{buf: make([]Event, max(n, 1))} }

// Add appends e, dropping the oldest event when full. Never blocks.
func (r *Ring) Add(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = e
	r.added++
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// Events returns the kept events, oldest first. Never blocks.
func (r *Ring) Events() []Event {
	ev, _ := r.snapshot()
	return ev
}

// snapshot returns the kept events and how many were ever added.
func (r *Ring) snapshot() ([]Event, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.eventsLocked(), r.added
}

func (r *Ring) eventsLocked() []Event {
	if !r.full {
		return append([]Event(nil), r.buf[:r.next]...)
	}
	return append(append([]Event(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}

// writeJSON writes v to dir/name durably (temporary file, fsync, rename,
// fsync of dir), 0640 and owned by dir's owner (statefile.WriteFile).
// Blocks on the disk; idempotent.
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return statefile.WriteFile(dir, name, append(b, '\n'), 0o640)
}

// errCorrupt marks a state file that is empty or not valid JSON.
var errCorrupt = errors.New("corrupt")

// readJSON reads dir/name into v. A missing file is an error wrapping
// os.ErrNotExist, an empty or invalid one an error wrapping errCorrupt.
// Blocks on the disk.
func readJSON(dir, name string, v any) error {
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("%s: %w: empty", p, errCorrupt)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w: %w", p, errCorrupt, err)
	}
	return nil
}

// ReadEvents returns the events the daemon saved in stateDir, oldest first.
// Blocks on the disk.
func ReadEvents(stateDir string) ([]Event, error) {
	var ev []Event
	err := readJSON(stateDir, EventsFile, &ev)
	return ev, err
}

// ReadStatus returns the last round's status the daemon saved in stateDir.
// Blocks on the disk.
func ReadStatus(stateDir string) (*Status, error) {
	var s Status
	if err := readJSON(stateDir, StatusFile, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
