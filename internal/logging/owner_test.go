package logging

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Root creating the log in SlurmUser's log directory gives it to
// SlurmUser; an existing file keeps its owner.
func TestOpenGivesNewLogTheDirOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "log")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 64030, 64031); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "se.log")
	_, c, err := Open(p, "info", "t")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 64030 || st.Gid != 64031 {
		t.Fatalf("%s owned by %d:%d, want 64030:64031", p, st.Uid, st.Gid)
	}
}
