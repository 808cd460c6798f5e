package reconcile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Files the daemon keeps in the state directory. They are written whole
// (temporary file + rename), so a reader never sees half a file.
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

// writeJSON writes v to dir/name atomically (0640). Blocks on the disk;
// idempotent.
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := f.Write(append(b, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o640)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// readJSON reads dir/name into v. A missing file is an error wrapping
// os.ErrNotExist. Blocks on the disk.
func readJSON(dir, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
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
