package hookcmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelock"
)

// writeConfig writes a valid config whose log and state live in dir.
func writeConfig(t *testing.T, dir string, timeout string) string {
	t.Helper()
	cfg := `cluster: t
slurm:
  backend: scontrol
  scontrol: /bin/false
  conf_server: head
podman:
  hosts:
    - name: local
      uri: unix://` + filepath.Join(dir, "no-such.sock") + `
log:
  file: ` + filepath.Join(dir, "log", "se.log") + `
state_dir: ` + filepath.Join(dir, "state") + `
suspend:
  timeout: ` + timeout + `
groups:
  - name: cloud
    nodes: cloud[1-4]
    template:
      image: localhost/node:1
      network: net
`
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func readLog(t *testing.T, dir string) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(dir, "log", "se.log"))
	return string(b)
}

func TestRunRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	// It parses (so its log file is known) but is invalid: no groups.
	p := filepath.Join(dir, "config.yaml")
	os.WriteFile(p, []byte("cluster: t\nlog:\n  file: "+filepath.Join(dir, "log", "se.log")+"\n"), 0o640)
	err := Run(context.Background(), Suspend, p, "cloud1", nil)
	if exitcode.Of(err) != exitcode.Config || !strings.Contains(err.Error(), "config.yaml") {
		t.Fatalf("err = %v, want a config error (exit %d) naming the file", err, exitcode.Config)
	}
	if l := readLog(t, dir); !strings.Contains(l, "configuration is invalid") {
		t.Fatalf("log:\n%s", l)
	}
}

func TestRunRejectsBadHostlistAsUsage(t *testing.T) {
	dir := t.TempDir()
	err := Run(context.Background(), Suspend, writeConfig(t, dir, "5s"), "cloud[1-", nil)
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "cloud[1-") {
		t.Fatalf("err = %v, want a usage error (exit %d) naming the hostlist", err, exitcode.Usage)
	}
	if l := readLog(t, dir); !strings.Contains(l, "invalid hostlist argument") {
		t.Fatalf("log:\n%s", l)
	}
}

func TestRunWaitsForTheLockNoLongerThanItsTimeout(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "1s")
	lockFile := nodelock.Path(filepath.Join(dir, "state"), "cloud1")
	os.MkdirAll(filepath.Dir(lockFile), 0o750)
	l := flock.New(lockFile)
	if err := l.Lock(); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), Suspend, cfg, "cloud1", nil) }()
	select {
	case err := <-done:
		if exitcode.Of(err) != exitcode.Busy || !strings.Contains(err.Error(), lockFile) {
			t.Fatalf("err = %v, want a lock error (exit %d)", err, exitcode.Busy)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not give up on a held lock")
	}
}

func TestMainExitCodes(t *testing.T) {
	if code := Main(context.Background(), Suspend, []string{"slurm-elastic-suspend"}); code != exitcode.Usage {
		t.Errorf("no hostlist: exit %d, want %d", code, exitcode.Usage)
	}
	if code := Main(context.Background(), Suspend, []string{"slurm-elastic-suspend", "--bogus", "cloud1"}); code != exitcode.Usage {
		t.Errorf("unknown option: exit %d, want %d", code, exitcode.Usage)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "config.yaml") // parses, so its log file is known, but has no groups
	os.WriteFile(bad, []byte("cluster: t\nlog:\n  file: "+filepath.Join(dir, "se.log")+"\n"), 0o640)
	if code := Main(context.Background(), Suspend, []string{"slurm-elastic-suspend", "--config", bad, "cloud1"}); code != exitcode.Config {
		t.Errorf("invalid config: exit %d, want %d", code, exitcode.Config)
	}
	if code := Main(context.Background(), Suspend, []string{"slurm-elastic-suspend", "--version"}); code != exitcode.OK {
		t.Errorf("--version: exit %d, want 0", code)
	}
}
