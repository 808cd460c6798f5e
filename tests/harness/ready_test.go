package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartReportsFailedInit gives head a package dpkg cannot install: Start must fail with
// the init's reason (not a "not running" guess while init is still busy), carry the head's
// log tail, and leave nothing behind.
func TestStartReportsFailedInit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm head in Podman: not run with -short")
	}
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bad := filepath.Join(t.TempDir(), "slurm-elastic_0-1_amd64.deb")
	if err := os.WriteFile(bad, []byte("not a Debian package\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := "se-harness-badinit"
	c, err := Start(ctx, Options{Name: name, Debs: []string{bad}, Log: t.Output()})
	if err == nil {
		c.Stop(ctx)
		t.Fatal("Start succeeded with a head whose init cannot install its package")
	}
	msg := err.Error()
	t.Logf("Start: %v", err)
	for _, want := range []string{
		"head init failed: ",             // the phase, not a guess from a stopped daemon
		"dpkg -i",                        // the step that failed
		"--- head logs ---",              // the log tail
		"[slurm-elastic-head status]",    // the status with the phase
		"phase failed: ",                 // ... as the script printed it
		"is not a Debian format archive", // dpkg's own words, from the container log
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Start error lacks %q", want)
		}
	}
	if strings.Contains(msg, "is not running") {
		t.Errorf("Start blamed a daemon, not the failed init")
	}
	stateDir, runD := dirsOf(name)
	for _, d := range []string{stateDir, runD} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind after the failed Start (%v)", d, err)
		}
	}
}
