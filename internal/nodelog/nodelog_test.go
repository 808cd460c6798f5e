package nodelog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Save writes the header and the tail; a second save rotates the first
// to NODE.log.1 and a third drops it; Read returns the older first.
func TestSaveRotateRead(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir, "c1"); !errors.Is(err, ErrNone) || !strings.Contains(err.Error(), filepath.Join(dir, Dir)) {
		t.Fatalf("Read before any save: %v, want ErrNone naming the directory", err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, out := range []string{"first boot\n", "second boot\n", "third boot"} {
		path, err := Save(dir, Entry{Time: at, Node: "c1", Why: "launch failed: exited", ID: "abc", Image: "node:1", Host: "h1", Tail: []byte(out)})
		if err != nil || path != Path(dir, "c1") {
			t.Fatalf("save %d: %q, %v", i, path, err)
		}
	}
	files, err := Read(dir, "c1")
	if err != nil || len(files) != 2 {
		t.Fatalf("Read: %d files, %v; want 2", len(files), err)
	}
	if !bytes.Contains(files[0].Data, []byte("second boot")) || !bytes.HasSuffix(files[1].Data, []byte("third boot\n")) {
		t.Errorf("rotation: older %q, latest %q", files[0].Data, files[1].Data)
	}
	for _, want := range []string{"# time:      2026-01-02T03:04:05Z", "# node:      c1", "# why:       launch failed: exited",
		"# instance:  abc", "# image:     node:1", "# host:      h1", "the whole log (10 bytes)"} {
		if !bytes.Contains(files[1].Data, []byte(want)) {
			t.Errorf("header lacks %q:\n%s", want, files[1].Data)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, Dir))
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("nodelogs dir: %v, %v; want mode 0750", fi, err)
	}
}

// A tail longer than MaxTail keeps its end only, and says so.
func TestSaveCutsTail(t *testing.T) {
	dir := t.TempDir()
	tail := append(bytes.Repeat([]byte("x"), MaxTail), []byte("END\n")...)
	if _, err := Save(dir, Entry{Node: "c1", Tail: tail}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(Path(dir, "c1"))
	if len(b) > MaxTail+1024 || !bytes.HasSuffix(b, []byte("END\n")) || !bytes.Contains(b, []byte("earlier output dropped")) {
		t.Errorf("cut tail: %d bytes, end %q", len(b), b[len(b)-8:])
	}
}

// All saved logs together stay under the total cap: the oldest files go,
// the one just written stays.
func TestPruneOldest(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, Dir)
	if err := os.Mkdir(d, 0o750); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for i, n := range []string{"a.log", "a.log.1", "b.log", ".b.log.tmp"} {
		p := filepath.Join(d, n)
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), 100), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old.Add(time.Duration(i)*time.Minute), old.Add(time.Duration(i)*time.Minute))
	}
	if err := prune(d, 250, filepath.Join(d, "a.log")); err != nil {
		t.Fatal(err)
	}
	var left []string
	des, _ := os.ReadDir(d)
	for _, de := range des {
		left = append(left, de.Name())
	}
	// a.log is the oldest but is kept (just written); a.log.1 goes first;
	// the temporary file is never counted or removed.
	if got := strings.Join(left, " "); got != ".b.log.tmp a.log b.log" {
		t.Errorf("left %q, want %q", got, ".b.log.tmp a.log b.log")
	}
}

// Names that are not one file name are refused: a node name never writes
// outside nodelogs.
func TestBadNames(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"", "../x", "a/b", ".hidden", ".."} {
		if _, err := Save(dir, Entry{Node: n}); !errors.Is(err, ErrName) {
			t.Errorf("Save(%q): %v, want ErrName", n, err)
		}
		if _, err := Read(dir, n); !errors.Is(err, ErrName) {
			t.Errorf("Read(%q): %v, want ErrName", n, err)
		}
	}
}
