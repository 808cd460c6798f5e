package hookcmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelock"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// slurmUID stands for SlurmUser: a non-root owner of the state and log
// directories.
const slurmUID, slurmGID = 65534, 65534

func owner(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

// A hook whose log file cannot be opened still does its work (logging to
// stderr): here it gets as far as taking its node's lock and building the
// runtimes, instead of returning at once with a config error.
func TestRunWithUnopenableLogStillWorks(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "5s")
	// A directory where the log file should be: no one can open it.
	if err := os.MkdirAll(filepath.Join(dir, "log", "se.log"), 0o750); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), Suspend, cfg, "cloud1", nil)
	if exitcode.Of(err) == exitcode.Config || (err != nil && strings.Contains(err.Error(), "log file")) {
		t.Fatalf("hook gave up on its log file: %v", err)
	}
	if _, serr := os.Stat(nodelock.Path(filepath.Join(dir, "state"), "cloud1")); serr != nil {
		t.Fatalf("hook body did not run (no node lock): %v (Run: %v)", serr, err)
	}
}

// Run as root (an admin trying a hook by hand), a hook creates its log
// and lock files (the node locks and their directory, the state lock)
// owned by the owner of their directories (SlurmUser), so the hooks Slurm
// runs next can open them.
func TestRunAsRootCreatesFilesForSlurmUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "5s")
	for _, d := range []string{"log", "state"} {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, slurmUID, slurmGID); err != nil {
			t.Fatal(err)
		}
	}
	f := newFakes(runtimefake.Options{})
	_ = run(context.Background(), Suspend, cfg, "cloud1", nil, f.builder())
	// A resume-fail takes the state lock too (for the breaker record).
	_ = run(context.Background(), ResumeFail, cfg, "cloud2", nil, f.builder())
	state := filepath.Join(dir, "state")
	for _, p := range []string{filepath.Join(dir, "log", "se.log"), filepath.Join(state, nodelock.Dir),
		nodelock.Path(state, "cloud1"), nodelock.Path(state, "cloud2"), filepath.Join(state, nodelock.StateFile)} {
		if u, g := owner(t, p); u != slurmUID || g != slurmGID {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, u, g, slurmUID, slurmGID)
		}
	}
}
