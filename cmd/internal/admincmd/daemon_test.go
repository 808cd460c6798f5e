package admincmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofrs/flock"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/reconcile"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// stateDirWithRound writes a config and the state of one reconcile round
// (run on fakes) where cloud2 was found dead.
func stateDirWithRound(t *testing.T) (cfgPath, stateDir string) {
	t.Helper()
	dir := t.TempDir()
	stateDir = filepath.Join(dir, "state")
	cfgPath = filepath.Join(dir, "config.yaml")
	yaml := "cluster: t\nstate_dir: " + stateDir + "\nslurm:\n  conf_server: head\npodman:\n  hosts:\n    - name: local\n      uri: unix:///nonexistent/podman.sock\n" +
		"groups:\n  - name: cloud\n    nodes: cloud[1-3]\n    template:\n      image: img\n      network: n\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sc := slurmfake.New("cloud1", "cloud2", "cloud3")
	sc.Put(slurm.Node{Name: "cloud2", State: slurm.StateAllocated, Flags: []string{slurm.FlagCloud}})
	r, err := reconcile.New(reconcile.Deps{Config: cfg, Runtimes: map[string]runtime.Runtime{"podman": runtimefake.New(runtimefake.Options{})}, Slurm: sc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := r.SaveState(stateDir); err != nil {
		t.Fatal(err)
	}
	return cfgPath, stateDir
}

func runApp(t *testing.T, args ...string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := App(&buf).Run(append([]string{"slurm-elastic"}, args...)); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, buf.String())
	}
	return buf.String()
}

func TestStatusAndEvents(t *testing.T) {
	cfgPath, stateDir := stateDirWithRound(t)
	out := runApp(t, "--config", cfgPath, "status")
	t.Log("\n" + out)
	for _, want := range []string{"daemon: not running", "ok in", "1 actions", "cloud  3      0          -         ", "allocated=1", "powered_down=2",
		"cloud2  cloud  allocated", "(2 powered-down nodes", "last events:", "dead", "set DOWN"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if out := runApp(t, "--config", cfgPath, "status", "--all"); !strings.Contains(out, "cloud1  cloud  powered_down") {
		t.Errorf("status --all:\n%s", out)
	}

	out = runApp(t, "--config", cfgPath, "events", "--kind", "dead", "--json")
	var e reconcile.Event
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Node != "cloud2" || e.Kind != reconcile.KindDead {
		t.Fatalf("events --json: %v\n%s", err, out)
	}
	if out := runApp(t, "--config", cfgPath, "events", "--node", "cloud1"); strings.Contains(out, "cloud2") {
		t.Errorf("events --node cloud1 shows cloud2:\n%s", out)
	}

	// A daemon holding the lock shows as running.
	l := flock.New(filepath.Join(stateDir, reconcile.LockFile))
	if ok, err := l.TryLock(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	defer l.Unlock()
	if out := runApp(t, "--config", cfgPath, "status"); !strings.Contains(out, "daemon: running") {
		t.Errorf("status with the lock held:\n%s", out)
	}
}

func TestStatusBeforeAnyRound(t *testing.T) {
	cfgPath, stateDir := stateDirWithRound(t)
	os.Remove(filepath.Join(stateDir, reconcile.StatusFile))
	if out := runApp(t, "--config", cfgPath, "status"); !strings.Contains(out, "no round recorded") {
		t.Errorf("status:\n%s", out)
	}
}
