// Package timeline keeps the cold-start records of jobs and nodes that
// `slurm-elastic trace JOBID` shows: when the resume hook was called for a
// job, when each node's instance started and was addressed, when the
// PrologSlurmctld saw each node registered and let the job go. The hooks
// and the prolog are short-lived processes running side by side, so the
// records are JSON lines appended to one file in the state directory with
// one write(2) each (O_APPEND: concurrent writers never interleave), and
// the file is rotated once it passes MaxSize (one old file kept), which
// bounds the disk it takes to 2×MaxSize.
package timeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/statefile"
)

// File is the timeline's name in the state directory; File+".1" is the
// rotated one.
const File = "timeline.jsonl"

// MaxSize is the size past which the file is rotated.
const MaxSize = 4 << 20

// Events of a record.
const (
	Resume     = "resume"      // the resume hook was called for a job's nodes (Job, Nodes)
	Launched   = "launched"    // a node's instance runs (Node, Detail: host and instance)
	Addressed  = "addressed"   // Slurm took a node's address (Node, Detail: address)
	Failed     = "failed"      // a node could not be started (Node, Detail: why)
	PrologWait = "prolog_wait" // the prolog started waiting for a job's nodes (Job, Nodes)
	Registered = "registered"  // the prolog saw a node registered (Job, Node)
	PrologDone = "prolog_done" // the prolog let the job go (Job, Detail: outcome)
)

// Record is one line of the timeline.
type Record struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Job    string    `json:"job,omitempty"`
	Node   string    `json:"node,omitempty"`
	Nodes  string    `json:"nodes,omitempty"` // a hostlist expression
	Detail string    `json:"detail,omitempty"`
}

// Append adds recs to the timeline in dir with one write, rotating the
// file first when it has passed MaxSize. A new file gets the owner of dir
// (statefile.Create), so a root run never locks SlurmUser out. It blocks
// for one open and one write; it is not idempotent (each call appends).
func Append(dir string, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	var buf []byte
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
		buf = append(append(buf, b...), '\n')
	}
	path := filepath.Join(dir, File)
	if st, err := os.Stat(path); err == nil && st.Size() > MaxSize {
		// Two writers may both see a full file: the second rename fails
		// (ENOENT) or moves a fresh, tiny file; either way nothing grows
		// past the bound.
		_ = os.Rename(path, path+".1")
	}
	f, err := statefile.Create(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	_, err = f.Write(buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("timeline: write %s: %w", path, err)
	}
	return nil
}

// Read returns the records of the timeline in dir (the rotated file first)
// for which keep returns true, in file order. Lines that do not parse are
// skipped and counted in bad. Missing files are no error. It blocks for
// reading both files; read-only.
func Read(dir string, keep func(Record) bool) (recs []Record, bad int, err error) {
	path := filepath.Join(dir, File)
	for _, p := range []string{path + ".1", path} {
		f, oerr := os.Open(p)
		if errors.Is(oerr, fs.ErrNotExist) {
			continue
		}
		if oerr != nil {
			return recs, bad, fmt.Errorf("timeline: %w", oerr)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var r Record
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.Event == "" {
				bad++
				continue
			}
			if keep == nil || keep(r) {
				recs = append(recs, r)
			}
		}
		serr := sc.Err()
		f.Close()
		if serr != nil {
			return recs, bad, fmt.Errorf("timeline: read %s: %w", p, serr)
		}
	}
	return recs, bad, nil
}

// UpDir is the directory, in the state directory, of the up markers: one
// empty file per node whose instance the resume hook started and Slurm
// took the address of, its mtime the time it was addressed. The suspend
// and resume-fail hooks remove them. The PrologSlurmctld reads them to
// tell, without asking Slurm, that a job's nodes have been up a while (and
// to ask Slurm often only once a node it waits for is addressed). A stale
// marker only costs that speed-up, never a job: the prolog exits and Slurm
// starts the job on its own schedule.
const UpDir = "up"

// MarkUp records that node was addressed now. It blocks for a few file
// operations and is idempotent (the mtime moves on).
func MarkUp(dir, node string) error {
	d := filepath.Join(dir, UpDir)
	if err := os.Mkdir(d, 0o755); err == nil {
		if err := statefile.MatchOwner(dir, d); err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("timeline: %w", err)
	}
	p := filepath.Join(d, filepath.Base(node))
	now := time.Now()
	if err := os.Chtimes(p, now, now); err == nil {
		return nil
	}
	f, err := statefile.Create(p, os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return f.Close()
}

// ClearUp removes the up markers of nodes; missing ones are no error. It
// blocks for one unlink per node and is idempotent.
func ClearUp(dir string, nodes ...string) error {
	var errs []error
	for _, n := range nodes {
		err := os.Remove(filepath.Join(dir, UpDir, filepath.Base(n)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return nil
}

// UpSince returns when node was last addressed, and false when it has no
// up marker. It blocks for one stat and is read-only.
func UpSince(dir, node string) (time.Time, bool) {
	st, err := os.Stat(filepath.Join(dir, UpDir, filepath.Base(node)))
	if err != nil {
		return time.Time{}, false
	}
	return st.ModTime(), true
}
