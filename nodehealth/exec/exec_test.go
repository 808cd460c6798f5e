package exec

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/nodehealth"
)

// sh returns the path of the POSIX shell used to write test scripts; it
// fails the test when there is none.
func sh(t *testing.T) string {
	t.Helper()
	p, err := osexec.LookPath("sh")
	if err != nil {
		t.Fatalf("these tests need /bin/sh: %v", err)
	}
	return p
}

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!"+sh(t)+"\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScript(t *testing.T) {
	tests := []struct {
		name, body string
		status     nodehealth.Status
		msg        string
	}{
		{"ok", "echo all good; exit 0", nodehealth.OK, "all good"},
		{"problem", "echo; echo 'ib0 link down' >&2; exit 1", nodehealth.Fail, "ib0 link down"},
		{"problem without output", "exit 1", nodehealth.Fail, "problem (exit 1)"},
		{"unknown", "echo cannot tell; exit 2", nodehealth.Unknown, "cannot tell"},
		{"other exit", "exit 7", nodehealth.Unknown, "exit 7, want 0, 1 or 2"},
		{"killed", "kill -9 $$", nodehealth.Unknown, "signal: killed"},
		{"argv not shell", `echo "$1"; exit 1`, nodehealth.Fail, "a;b $(x)"},
		{"output capped", `i=0; while [ $i -lt 3000 ]; do printf 'xxxxxxxxxx'; i=$((i+1)); done; exit 1`, nodehealth.Fail, strings.Repeat("x", 200) + "..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Script{CheckName: "ib", Argv: []string{script(t, tc.body), "a;b $(x)"}}
			fs := s.Run(context.Background())
			if len(fs) != 1 || fs[0].Status != tc.status || !strings.Contains(fs[0].Message, tc.msg) {
				t.Fatalf("got %+v, want %s containing %q", fs, tc.status, tc.msg)
			}
			if fs[0].Status == nodehealth.Fail && !fs[0].Drains() {
				t.Fatal("a problem must drain")
			}
		})
	}
}

func TestScriptTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "child-survived")
	// The child would create the marker after the parent was killed.
	body := "(sleep 2; touch " + marker + ") & echo started; sleep 60"
	s := &Script{CheckName: "slow", Argv: []string{script(t, body)}, Timeout: 200 * time.Millisecond}
	fs := s.Run(context.Background())
	if len(fs) != 1 || fs[0].Status != nodehealth.Unknown || !strings.Contains(fs[0].Message, "timed out") {
		t.Fatalf("got %+v", fs)
	}
	// Give an orphan time to do its damage, then look.
	time.Sleep(3 * time.Second)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the script's child outlived the timeout: process group not killed")
	}
}

func TestScriptMissing(t *testing.T) {
	s := &Script{CheckName: "gone", Argv: []string{"/nonexistent/check"}}
	fs := s.Run(context.Background())
	if len(fs) != 1 || fs[0].Status != nodehealth.Unknown {
		t.Fatalf("a missing program is Unknown, never a drain: %+v", fs)
	}
}
