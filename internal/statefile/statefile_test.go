package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWriteFileTouchOwnedAsTheirDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 64030, 64031); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dir, "s.json", []byte("{}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Touch(filepath.Join(dir, "x.lock"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"s.json", "x.lock"} {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 64030 || st.Gid != 64031 {
			t.Errorf("%s owned by %d:%d", n, st.Uid, st.Gid)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "s.json")); string(b) != "{}\n" {
		t.Fatalf("%q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

func TestMoveAsideAndUnusable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "b.json")
	os.WriteFile(p, []byte("{"), 0o644)
	aside, err := MoveAside(p, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil || !strings.HasPrefix(aside, p+".corrupt-20260102T030405") {
		t.Fatalf("%q %v", aside, err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	err = Unusable(aside, os.ErrPermission)
	wants := []string{aside, "owned by ", "permission denied", "fix: chown"}
	if os.Geteuid() == 0 {
		wants = append(wants, "owned by 0:0 (root:root)")
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}
