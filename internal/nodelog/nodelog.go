// Package nodelog keeps the evidence of failed nodes: the tail of the log
// of a node's instance, saved just before a failed instance is removed
// (launch failed, resume timeout, dead, stuck or unhealthy node), so the
// admin can read it with `slurm-elastic logs NODE` after the instance is
// gone. Files live in the state directory, nodelogs/NODE.log (the latest)
// and NODE.log.1 (the one before), each at most MaxTail bytes of log plus a
// header; all of them together at most MaxTotal bytes (the oldest files go
// first). They are written with internal/statefile (durable, owned as
// their directory). Standard library and internal/statefile only.
package nodelog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/statefile"
)

// Dir is the directory of the saved logs, inside the state directory.
const Dir = "nodelogs"

// Limits.
const (
	// MaxTail is the most bytes of one instance's log kept in one file.
	MaxTail = 64 << 10
	// MaxTotal is the most bytes all saved logs take together; beyond it
	// the oldest files are deleted.
	MaxTotal = 16 << 20
)

// Errors Read and Save wrap.
var (
	// ErrNone: no log of the node was saved.
	ErrNone = errors.New("no saved log")
	// ErrName: the name is not one file name (empty, a path, hidden).
	ErrName = errors.New("not a node name")
)

// Entry is one failed instance's log and what identifies it.
type Entry struct {
	Time  time.Time // when it was saved; zero: now
	Node  string
	Why   string // why the instance was removed
	ID    string // instance (container) ID
	Image string
	Host  string // runtime host that ran it
	// Tail is the end of the instance's output; only its last MaxTail
	// bytes are kept.
	Tail []byte
	// Truncated: the output was longer than Tail.
	Truncated bool
}

// Path returns the file of node's latest saved log under stateDir.
func Path(stateDir, node string) string {
	return filepath.Join(stateDir, Dir, node+".log")
}

// Hint is what a node's reason says about its saved log: where to look.
func Hint(node string) string { return "log: slurm-elastic logs " + node }

// checkNode rejects a node name that is not one file name.
func checkNode(node string) error {
	if node == "" || node == "." || node == ".." || strings.HasPrefix(node, ".") || strings.ContainsAny(node, "/\\\x00") {
		return fmt.Errorf("node name %q: %w", node, ErrName)
	}
	return nil
}

// Save writes e as stateDir/nodelogs/NODE.log, the previous one becoming
// NODE.log.1 (and the one before that dropped), then deletes the oldest
// saved logs while all of them together exceed MaxTotal. The nodelogs
// directory is created (0750, owned as stateDir) when missing; stateDir
// must exist. It returns the file written. Blocks on the disk; each call
// adds one log.
func Save(stateDir string, e Entry) (string, error) {
	if err := checkNode(e.Node); err != nil {
		return "", fmt.Errorf("save node log: %w", err)
	}
	dir := filepath.Join(stateDir, Dir)
	if err := mkdir(stateDir, dir); err != nil {
		return "", fmt.Errorf("save node log of %s: %w", e.Node, err)
	}
	path := Path(stateDir, e.Node)
	if err := os.Rename(path, path+".1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("save node log of %s: rotate: %w", e.Node, err)
	}
	if err := statefile.WriteFile(dir, e.Node+".log", render(e), 0o640); err != nil {
		return "", fmt.Errorf("save node log of %s: %w", e.Node, err)
	}
	if err := prune(dir, MaxTotal, path); err != nil {
		return path, fmt.Errorf("save node log of %s: keep %s under %d bytes: %w", e.Node, dir, MaxTotal, err)
	}
	return path, nil
}

// mkdir creates dir (0750) with the owner of its parent when missing.
func mkdir(parent, dir string) error {
	if err := os.Mkdir(dir, 0o750); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return statefile.MatchOwner(parent, dir)
}

// render is e's file: a header of "# key: value" lines, a separator, the
// tail.
func render(e Entry) []byte {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	tail := e.Tail
	if len(tail) > MaxTail {
		tail, e.Truncated = tail[len(tail)-MaxTail:], true
	}
	kept := fmt.Sprintf("the whole log (%d bytes)", len(tail))
	if e.Truncated {
		kept = fmt.Sprintf("its last %d bytes (earlier output dropped)", len(tail))
	}
	var b strings.Builder
	line := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&b, "# %-10s %s\n", k+":", strings.Join(strings.Fields(v), " "))
	}
	b.WriteString("# slurm-elastic: the log of a failed node's instance, saved before it was removed\n")
	line("time", e.Time.UTC().Format(time.RFC3339))
	line("node", e.Node)
	line("why", e.Why)
	line("instance", e.ID)
	line("image", e.Image)
	line("host", e.Host)
	line("kept", kept)
	b.WriteString("# ----\n")
	b.Write(tail)
	if len(tail) > 0 && tail[len(tail)-1] != '\n' {
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// prune deletes the oldest saved logs of dir (by modification time, never
// keep) while they take more than max bytes together. Files of other
// names (a write's temporary file) are left alone.
func prune(dir string, max int64, keep string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type file struct {
		path string
		size int64
		mod  time.Time
	}
	var files []file
	var total int64
	for _, de := range des {
		n := de.Name()
		if !de.Type().IsRegular() || strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".log") || strings.HasSuffix(n, ".log.1")) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		files = append(files, file{filepath.Join(dir, n), fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	slices.SortFunc(files, func(a, b file) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
	var errs []error
	for _, f := range files {
		if total <= max {
			break
		}
		if f.path == keep {
			continue
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		total -= f.size
	}
	return errors.Join(errs...)
}

// File is one saved log of a node.
type File struct {
	Path string
	Data []byte
}

// Read returns node's saved logs under stateDir, the older (NODE.log.1)
// first and the latest last. None: an error wrapping ErrNone that names
// the directory. Blocks on the disk; changes nothing.
func Read(stateDir, node string) ([]File, error) {
	if err := checkNode(node); err != nil {
		return nil, err
	}
	path := Path(stateDir, node)
	var out []File
	for _, p := range []string{path + ".1", path} {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read node log: %w", err)
		}
		out = append(out, File{Path: p, Data: b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("node %s: %w in %s: a log is kept only when a node's instance failed (launch, resume timeout, dead, stuck or unhealthy node) and was removed", node, ErrNone, filepath.Join(stateDir, Dir))
	}
	return out, nil
}
