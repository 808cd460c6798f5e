package breaker

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A null entry (hand-edited file) is absent, not a crash.
func TestLoadNullEntriesAreAbsent(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, File), []byte(`{"groups":{"cpu":null,"gpu":{"open":true,"failures":3,"opened_at":"2026-11-28T12:00:00Z"}},"launches":{"cpu":null}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Groups["cpu"]; ok {
		t.Fatalf("null group kept: %+v", s.Groups)
	}
	if _, ok := s.Launches["cpu"]; ok {
		t.Fatalf("null counts kept: %+v", s.Launches)
	}
	s.Expire(t0, time.Hour, 5) // ranges over every group: panicked on a nil entry
	s.CountRefused("cpu", 1)
	if !s.IsOpen("gpu") || s.IsOpen("cpu") {
		t.Fatalf("%+v", s.Groups)
	}
}

// An empty or corrupt file: Load hands back an empty state with an error
// naming the file; LoadForUpdate logs it, keeps the bad file aside and
// rebuilds from empty.
func TestCorruptFileIsMovedAsideAndRebuilt(t *testing.T) {
	for _, bad := range []string{"", "{", "null", "\x00\x00\x00"} {
		dir := t.TempDir()
		p := filepath.Join(dir, File)
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Load(dir)
		if s == nil || len(s.Groups) != 0 || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
			t.Fatalf("%q: Load = %+v, %v", bad, s, err)
		}
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		s, err = LoadForUpdate(dir, log)
		if err != nil || s == nil || len(s.Groups) != 0 {
			t.Fatalf("%q: LoadForUpdate = %+v, %v", bad, s, err)
		}
		if !strings.Contains(buf.String(), `"level":"ERROR"`) || !strings.Contains(buf.String(), p) {
			t.Fatalf("%q: not logged as an ERROR naming %s: %s", bad, p, buf.String())
		}
		aside, _ := filepath.Glob(p + ".corrupt-*")
		if len(aside) != 1 {
			t.Fatalf("%q: bad file not kept aside: %v", bad, aside)
		}
		if b, _ := os.ReadFile(aside[0]); string(b) != bad {
			t.Fatalf("%q: aside holds %q", bad, b)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%q: bad file still in place: %v", bad, err)
		}
		s.Failure("g", "n1", "Config", "x", t0, 1, 0)
		if err := Save(dir, s); err != nil {
			t.Fatal(err)
		}
		if s, err := LoadForUpdate(dir, log); err != nil || !s.IsOpen("g") {
			t.Fatalf("%q: after rebuild: %+v %v", bad, s, err)
		}
	}
}
