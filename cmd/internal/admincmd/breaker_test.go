package admincmd

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelock"
)

func TestBreakerListAndReset(t *testing.T) {
	cfgPath, stateDir := stateDirWithRound(t)
	if out := runApp(t, "--config", cfgPath, "breaker"); !strings.Contains(out, "cloud  closed   0/5") || strings.Contains(out, "re-arm with") {
		t.Fatalf("breaker, nothing failed:\n%s", out)
	}
	st := breaker.New()
	for range 5 {
		st.Failure("cloud", "cloud1", "Config", "image not found", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), 5, 0)
	}
	if err := breaker.Save(stateDir, st); err != nil {
		t.Fatal(err)
	}
	out := runApp(t, "--config", cfgPath, "breaker")
	for _, want := range []string{"cloud  OPEN", "5/5", "2026-11-28T12:00:00Z (re-arms 2026-11-28T12:30:00Z)", "node cloud1: Config: image not found", "re-arm with: slurm-elastic breaker reset GROUP"} {
		if !strings.Contains(out, want) {
			t.Errorf("breaker lacks %q:\n%s", want, out)
		}
	}

	if out := runApp(t, "--config", cfgPath, "status"); !strings.Contains(out, "OPEN since 2026-11-28T12:00:00Z (5 failures)") {
		t.Errorf("status does not show the open breaker:\n%s", out)
	}

	var buf bytes.Buffer
	err := App(&buf).Run([]string{"slurm-elastic", "--config", cfgPath, "breaker", "reset", "nosuch"})
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), `no group "nosuch"`) {
		t.Fatalf("reset of an unknown group: %v", err)
	}
	if err := App(&buf).Run([]string{"slurm-elastic", "--config", cfgPath, "breaker", "reset"}); err == nil {
		t.Fatal("reset with no group and no --all succeeded")
	}
	// Held power.lock (a resume running): the reset waits, then fails.
	l := flock.New(filepath.Join(stateDir, nodelock.StateFile))
	if ok, err := l.TryLock(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	start := time.Now()
	if err := App(&buf).Run([]string{"slurm-elastic", "--config", cfgPath, "breaker", "reset", "--wait", "5s", "cloud"}); err == nil || !strings.Contains(err.Error(), "power.lock") || exitcode.Of(err) != exitcode.Busy {
		t.Fatalf("reset under a held lock: %v (exit %d, want %d)", err, exitcode.Of(err), exitcode.Busy)
	}
	if st, _ := breaker.Load(stateDir); !st.IsOpen("cloud") {
		t.Fatalf("reset changed the state without the lock: %+v", st.Get("cloud"))
	}
	if d := time.Since(start); d < 4*time.Second {
		t.Fatalf("gave up after %v without waiting", d)
	}
	l.Unlock()
	if out := runApp(t, "--config", cfgPath, "breaker", "reset", "cloud"); !strings.Contains(out, "cloud: re-armed (was open)") {
		t.Fatalf("reset:\n%s", out)
	}
	if st, _ := breaker.Load(stateDir); st.IsOpen("cloud") || st.Get("cloud").Failures != 0 {
		t.Fatalf("%+v", st.Get("cloud"))
	}
	if out := runApp(t, "--config", cfgPath, "breaker", "reset", "--all"); !strings.Contains(out, "cloud: failure count cleared (was closed)") {
		t.Fatalf("reset --all:\n%s", out)
	}
	if out := runApp(t, "--config", cfgPath, "status"); !strings.Contains(out, "BREAKER") {
		t.Fatalf("status:\n%s", out)
	}
}
