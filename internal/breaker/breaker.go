// Package breaker keeps the per-group circuit breaker and the hooks' launch
// counts in one JSON file in the state directory (breaker.json), shared by
// the power hooks (short-lived processes) and `slurm-elastic daemon`.
//
// A group's breaker opens after breaker.threshold consecutive
// bootstrap failures (a launch that failed with a class other than
// Capacity, or a node that missed ResumeTimeout). While it is open the
// resume hook launches nothing for the group. A success (a node of the
// group launched after the last failure that registered with Slurm, seen
// by the daemon) resets the count. It is re-armed by `slurm-elastic
// breaker reset` or, when breaker.reset is set, after that long;
// a timed re-arm is half-open: one more failure opens it again.
//
// The file is written durably (temporary file, fsync, rename, fsync of
// the directory); an empty or corrupt one is moved aside and rebuilt
// (LoadForUpdate). Every
// read-modify-write happens under the state directory's state lock
// (power.lock, internal/nodelock; Store.Update takes it), held only for the
// read-modify-write, so hooks, daemon and the admin command never lose an
// update and never wait for each other's launches.
package breaker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/statefile"
)

// File is the state file's name in the state directory.
const File = "breaker.json"

// Group is one group's breaker.
type Group struct {
	// Failures counts consecutive bootstrap failures since the last
	// success or re-arm.
	Failures int `json:"failures"`
	// Open: the group's launches are refused.
	Open     bool      `json:"open"`
	OpenedAt time.Time `json:"opened_at,omitzero"`
	// LastFailureAt and LastFailure describe the latest failure
	// ("node cloud3: Config: image not found").
	LastFailureAt time.Time `json:"last_failure_at,omitzero"`
	LastFailure   string    `json:"last_failure,omitempty"`
	// Rearmed is when the breaker was last re-armed, and how ("command",
	// "timeout").
	RearmedAt time.Time `json:"rearmed_at,omitzero"`
	RearmedBy string    `json:"rearmed_by,omitempty"`
}

// Counts are a group's launch counts since the state dir was created.
type Counts struct {
	OK      uint64 `json:"ok"`
	Failed  uint64 `json:"failed"`
	Refused uint64 `json:"refused"` // not launched: breaker open
	// FailuresByClass counts failures by class (Config, Transient,
	// Capacity, SlurmUpdate, ResumeTimeout); a ResumeTimeout is not a
	// failed launch (the launch itself was counted ok).
	FailuresByClass map[string]uint64 `json:"failures_by_class,omitempty"`
}

// State is the whole file.
type State struct {
	Groups   map[string]*Group  `json:"groups"`
	Launches map[string]*Counts `json:"launches"`
}

// New returns an empty state.
func New() *State {
	return &State{Groups: map[string]*Group{}, Launches: map[string]*Counts{}}
}

func (s *State) group(g string) *Group {
	if s.Groups == nil {
		s.Groups = map[string]*Group{}
	}
	if s.Groups[g] == nil {
		s.Groups[g] = &Group{}
	}
	return s.Groups[g]
}

func (s *State) counts(g string) *Counts {
	if s.Launches == nil {
		s.Launches = map[string]*Counts{}
	}
	if s.Launches[g] == nil {
		s.Launches[g] = &Counts{}
	}
	return s.Launches[g]
}

// Get returns a copy of group g's breaker (zero when never used).
func (s *State) Get(g string) Group {
	if b := s.Groups[g]; b != nil {
		return *b
	}
	return Group{}
}

// IsOpen reports whether g's launches are refused.
func (s *State) IsOpen(g string) bool { return s.Groups[g] != nil && s.Groups[g].Open }

// Failure records one bootstrap failure in g (node, its class and
// message) and opens the breaker when threshold consecutive failures are
// reached (threshold 0 = never). Failures count as consecutive while each
// comes within window of the previous one (window 0 = always): without the
// daemon to see successes, rare failures spread over weeks never add up.
// It returns true when this failure opened it. A failure while open only
// updates the last failure.
func (s *State) Failure(g, node, class, msg string, now time.Time, threshold int, window time.Duration) (opened bool) {
	b := s.group(g)
	if !b.Open && window > 0 && !b.LastFailureAt.IsZero() && now.Sub(b.LastFailureAt) > window {
		b.Failures = 0
	}
	b.Failures++
	b.LastFailureAt = now
	b.LastFailure = trim(fmt.Sprintf("node %s: %s: %s", node, class, msg), 300)
	if !b.Open && threshold > 0 && b.Failures >= threshold {
		b.Open, b.OpenedAt = true, now
		return true
	}
	return false
}

// Success records that a node of g came up (registered with Slurm): the
// consecutive count restarts. An open breaker stays open (only a re-arm
// closes it). It returns whether anything changed.
func (s *State) Success(g string) bool {
	b := s.Groups[g]
	if b == nil || b.Open || b.Failures == 0 {
		return false
	}
	b.Failures = 0
	return true
}

// Reset re-arms g by command: closed, count zero. It returns whether g was
// open.
func (s *State) Reset(g string, now time.Time) (wasOpen bool) {
	b := s.group(g)
	wasOpen = b.Open
	b.Open, b.Failures, b.OpenedAt = false, 0, time.Time{}
	b.RearmedAt, b.RearmedBy = now, "command"
	return wasOpen
}

// Expire re-arms every breaker open for at least after (0 = never) and
// returns the groups it re-armed, sorted. Such a re-arm is half-open: the
// count is left at threshold-1, so the next failure opens it again while
// a success resets it.
func (s *State) Expire(now time.Time, after time.Duration, threshold int) []string {
	if after <= 0 {
		return nil
	}
	var out []string
	for _, g := range slices.Sorted(maps.Keys(s.Groups)) {
		b := s.Groups[g]
		if b.Open && !now.Before(b.OpenedAt.Add(after)) {
			b.Open, b.OpenedAt = false, time.Time{}
			b.Failures = max(threshold-1, 0)
			b.RearmedAt, b.RearmedBy = now, "timeout"
			out = append(out, g)
		}
	}
	return out
}

// CountLaunch records one launch of g: ok, or failed with class.
func (s *State) CountLaunch(g string, ok bool, class string) {
	c := s.counts(g)
	if ok {
		c.OK++
		return
	}
	c.Failed++
	s.CountFailure(g, class)
}

// CountFailure records a failure of class in g that is not a launch of its
// own (ResumeTimeout).
func (s *State) CountFailure(g, class string) {
	c := s.counts(g)
	if c.FailuresByClass == nil {
		c.FailuresByClass = map[string]uint64{}
	}
	c.FailuresByClass[class]++
}

// CountRefused records n launches of g refused while its breaker is open.
func (s *State) CountRefused(g string, n int) { s.counts(g).Refused += uint64(n) }

// ErrCorrupt marks a breaker file that is empty or not valid JSON.
var ErrCorrupt = errors.New("corrupt")

// Load reads dir's breaker file; a missing file is an empty state and a
// null entry is absent. An empty or corrupt file gives an empty state and
// an error wrapping ErrCorrupt that names the file (the file is left
// alone: see LoadForUpdate); another read error gives nil and the error.
// Blocks on the disk; it changes nothing.
func Load(dir string) (*State, error) {
	p := filepath.Join(dir, File)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return New(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("breaker state: %w", err)
	}
	s := New()
	if err := json.Unmarshal(b, s); err != nil || len(bytes.TrimSpace(b)) == 0 || bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		if err == nil {
			err = errors.New("empty")
		}
		return New(), fmt.Errorf("breaker state %s: %w: %w", p, ErrCorrupt, err)
	}
	if s.Groups == nil {
		s.Groups = map[string]*Group{}
	}
	if s.Launches == nil {
		s.Launches = map[string]*Counts{}
	}
	maps.DeleteFunc(s.Groups, func(_ string, g *Group) bool { return g == nil })
	maps.DeleteFunc(s.Launches, func(_ string, c *Counts) bool { return c == nil })
	return s, nil
}

// LoadForUpdate is Load for a caller about to Save (it holds the state
// lock, power.lock):
// an empty or corrupt file is logged as an ERROR naming it, moved aside to
// breaker.json.corrupt-<UTC time> (kept for the admin) and the state is
// rebuilt from empty, so the hooks and `breaker reset` keep working.
// Blocks on the disk.
func LoadForUpdate(dir string, log *slog.Logger) (*State, error) {
	s, err := Load(dir)
	if err == nil || !errors.Is(err, ErrCorrupt) {
		return s, err
	}
	p := filepath.Join(dir, File)
	aside, merr := statefile.MoveAside(p, time.Now())
	if merr != nil {
		log.Error("breaker state corrupt and cannot be moved aside: circuit breakers and launch counts start from empty", "path", p, "error", errors.Join(err, merr))
		return s, nil
	}
	log.Error("breaker state corrupt: moved aside, circuit breakers and launch counts start from empty", "path", p, "moved_to", aside, "error", err)
	return s, nil
}

// Save writes s to dir durably (temporary file, fsync, rename, fsync of
// dir: statefile.WriteFile), readable by all (it holds no secret) and,
// when written by root into a directory owned by another user (the admin
// command), owned by that user, so the hooks can go on replacing it. The
// caller holds the state lock (power.lock). Blocks on the disk; idempotent.
func Save(dir string, s *State) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("encode breaker state: %w", err)
	}
	if err := statefile.WriteFile(dir, File, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("breaker state: %w", err)
	}
	return nil
}

// Store is a state directory's breaker file and the lock that guards its
// read-modify-writes.
type Store struct {
	// Dir is the state directory.
	Dir string
	// Lock takes the state lock (internal/nodelock.State on Dir), waiting
	// while ctx allows, and returns its release. nil: no lock (one process
	// owns Dir, as in tests).
	Lock func(ctx context.Context) (release func(), err error)
	// Log gets the ERROR of a corrupt file moved aside (LoadForUpdate).
	Log *slog.Logger
}

// Update reads the state (LoadForUpdate), runs fn on it and saves it, all
// under Lock, which it holds for no longer than that. It returns the state
// fn left, also when saving it failed (with that error); nil and the
// error when the lock was not had by ctx's end or the file could not be
// read. It blocks on the lock and the disk; fn must not block.
func (s *Store) Update(ctx context.Context, fn func(*State)) (*State, error) {
	if s.Lock != nil {
		release, err := s.Lock(ctx)
		if err != nil {
			return nil, fmt.Errorf("breaker state: %w", err)
		}
		defer release()
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := LoadForUpdate(s.Dir, log)
	if err != nil {
		return nil, err
	}
	fn(st)
	return st, Save(s.Dir, st)
}

// MatchOwner gives path the owner of dir when the process runs as root
// and they differ (so a file root creates stays usable by SlurmUser). A
// no-op otherwise. See statefile.MatchOwner.
func MatchOwner(dir, path string) error { return statefile.MatchOwner(dir, path) }

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Message is the text of the BreakerOpen reason for group g: why it is
// open and how to re-arm it (after = breaker.reset, 0 = command
// only).
func Message(g string, b Group, after time.Duration) string {
	rearm := "re-arm: slurm-elastic breaker reset " + g
	if after > 0 && !b.OpenedAt.IsZero() {
		rearm += " (or wait until " + b.OpenedAt.Add(after).UTC().Format(time.RFC3339) + ")"
	}
	return fmt.Sprintf("group %s launches stopped after %d consecutive failures; %s; last %s", g, b.Failures, rearm, b.LastFailure)
}

// Policy is the breaker section of the config: Threshold consecutive
// failures open a group's breaker (0 = never); an open breaker re-arms
// itself, half-open, after Reset (0 = only by command).
type Policy struct {
	Threshold int
	Reset     time.Duration
}

// Gate is the breaker's answer before a run's launches: which groups are
// refused, and which it re-armed on the way.
type Gate struct {
	// Rearmed lists the groups re-armed because Policy.Reset is over.
	Rearmed []string
	// Refused maps each open group asked about to its breaker.
	Refused map[string]Group
}

// Admit is the gate before launches: it re-arms the breakers whose reset
// is over, then refuses every group in want whose breaker is open and
// counts the refused launches (want maps a group to its number of nodes).
// Call it once per run, under the state lock (Store.Update). It does not
// block.
func (s *State) Admit(now time.Time, p Policy, want map[string]int) Gate {
	g := Gate{Rearmed: s.Expire(now, p.Reset, p.Threshold), Refused: map[string]Group{}}
	for group, n := range want {
		if s.IsOpen(group) {
			g.Refused[group] = s.Get(group)
			s.CountRefused(group, n)
		}
	}
	return g
}

// Outcome is one node's result in a run, recorded after the launches.
type Outcome struct {
	Group, Node string
	// Launch: the outcome of a launch (counted ok or failed); false for a
	// failure that is not a launch of its own (ResumeTimeout).
	Launch bool
	// Class is the failure's reason code ("" = success).
	Class string
	Msg   string
	// Bootstrap: the failure counts toward the breaker (launch failures
	// other than Capacity, resume timeouts).
	Bootstrap bool
}

// Verdict is what Record made of one Outcome.
type Verdict struct {
	// Opened: this outcome opened the group's breaker.
	Opened bool
	// Open: the group's breaker is open after this outcome; Breaker is its
	// state then (for the BreakerOpen reason).
	Open    bool
	Breaker Group
}

// Record records a run's outcomes in order, the one record after the
// launches: launch counts, failures by class, and bootstrap failures,
// which may open the breaker. It returns one Verdict per outcome. Call it
// once per run, under the state lock (Store.Update). It does not block.
func (s *State) Record(now time.Time, p Policy, outs []Outcome) []Verdict {
	vs := make([]Verdict, len(outs))
	for i, o := range outs {
		switch {
		case o.Launch:
			s.CountLaunch(o.Group, o.Class == "", o.Class)
		case o.Class != "":
			s.CountFailure(o.Group, o.Class)
		}
		if o.Class == "" || !o.Bootstrap {
			continue
		}
		vs[i].Opened = s.Failure(o.Group, o.Node, o.Class, o.Msg, now, p.Threshold, p.Reset)
		vs[i].Open = s.IsOpen(o.Group)
		vs[i].Breaker = s.Get(o.Group)
	}
	return vs
}
