package reconcile

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// fileWorld is a world whose config is a file, loaded as the daemon does.
type fileWorld struct {
	*world
	path string
	log  bytes.Buffer
}

const cpuOnly = "  - name: cpu\n    nodes: cpu[1-2]\n    template:\n      image: img\n      network: n\n"
const withBig = cpuOnly + "  - name: big\n    nodes: big[1-2]\n    template:\n      image: img\n      network: n\n"

// writeConfig writes the config file with groups (YAML list items).
func (w *fileWorld) writeConfig(t *testing.T, groups string) {
	t.Helper()
	yaml := "cluster: t\nstate_dir: " + w.cfg.StateDir + "\nslurm:\n  conf_server: head\npodman:\n  hosts:\n    - name: " + runtimefake.Host +
		"\n      uri: unix:///nonexistent/podman.sock\ndaemon:\n  orphan_grace: 1m\ngroups:\n" + groups
	if err := os.WriteFile(w.path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// load is the daemon's reload on the fakes: the file read and validated
// again, the same fakes as its runtime and Slurm.
func (w *fileWorld) load(ctx context.Context) (Deps, error) {
	cfg, err := conf.Load(w.path)
	if err != nil {
		return Deps{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Deps{}, err
	}
	return Deps{Config: cfg, Runtimes: map[string]runtime.Runtime{"podman": w.rt}, Slurm: w.sc, Now: w.clock.Now}, nil
}

func newFileWorld(t *testing.T, groups string, lock func()) *fileWorld {
	t.Helper()
	dir := t.TempDir()
	w := &fileWorld{world: &world{cfg: &conf.Config{StateDir: filepath.Join(dir, "state")}, rt: runtimefake.New(runtimefake.Options{Cluster: "t"}),
		sc: slurmfake.New("cpu1", "cpu2", "big1", "big2"), clock: &clock{t: time.Now()}}, path: filepath.Join(dir, "config.yaml")}
	w.writeConfig(t, groups)
	d, err := w.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.Log = slog.New(slog.NewJSONHandler(&w.log, nil))
	d.LockNodes = func(ctx context.Context, nodes []string) (func(), map[string]error, error) {
		if lock != nil {
			lock()
		}
		return func() {}, nil, nil
	}
	w.cfg = d.Config
	if w.r, err = New(d); err != nil {
		t.Fatal(err)
	}
	return w
}

func groupNames(c *conf.Config) string {
	var s []string
	for _, g := range c.Groups {
		s = append(s, g.Name)
	}
	return strings.Join(s, ",")
}

// Issue 11, defect 1, the whole story: the daemon started with group cpu;
// the admin added group big to the file; the hooks launched big1 for a
// job. The daemon's next round reloads the file first (it changed), so
// big1 is a node of group big, powering up: nothing to do, and its
// instance stays.
func TestReloadWhenTheFileChanges(t *testing.T) {
	w := newFileWorld(t, cpuOnly, nil)
	w.writeConfig(t, withBig)
	w.launchIn(t, "big", "big1")
	w.up("big1", slurm.StateIdle, slurm.FlagPoweredDown, slurm.FlagPoweringUp)
	w.clock.Add(time.Hour)
	if err := Run(context.Background(), w.r, RunOptions{StateDir: w.cfg.StateDir, Interval: time.Hour, Once: true, Reload: w.load}); err != nil {
		t.Fatalf("round: %v\n%s", err, w.log.String())
	}
	if got := groupNames(w.r.d.Config); got != "cpu,big" {
		t.Fatalf("groups in effect after the file changed: %s\n%s", got, w.log.String())
	}
	if !w.hasInstance("big1") || len(w.r.Events.Events()) != 0 {
		t.Fatalf("big1 instance=%v events=%+v", w.hasInstance("big1"), w.r.Events.Events())
	}
	if w.r.Metrics.ReloadFailed() || !strings.Contains(w.log.String(), `"msg":"config reloaded"`) {
		t.Fatalf("reload not recorded:\n%s", w.log.String())
	}
	var big *GroupStatus
	for _, g := range w.r.Status().Groups {
		if g.Name == "big" {
			big = &g
		}
	}
	if big == nil || big.Instances != 1 || big.States["powering_up"] != 1 {
		t.Fatalf("status groups: %+v", w.r.Status().Groups)
	}
}

// A bad new file keeps the config in effect, is logged as an ERROR naming
// the file and what is wrong, and sets slurm_elastic_config_reload_failed;
// it is reported once, not every round; a good file after it is taken.
func TestReloadBadFileKeepsTheOld(t *testing.T) {
	w := newFileWorld(t, withBig, nil)
	w.writeConfig(t, cpuOnly+"  - name: big\n    nodes: big[1-2]\n    runtime: ec2\n    template:\n      image: img\n")
	if how := w.r.configChanged(); how == "" {
		t.Fatal("file change not seen")
	}
	w.r.reload(context.Background(), w.load, "test")
	if got := groupNames(w.r.d.Config); got != "cpu,big" {
		t.Fatalf("groups in effect: %s", got)
	}
	if !w.r.Metrics.ReloadFailed() {
		t.Fatal("slurm_elastic_config_reload_failed not set")
	}
	logged := w.log.String()
	for _, want := range []string{`"level":"ERROR"`, `"msg":"config reload failed: the config in effect stays"`, w.path, "runtime", "ec2"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
	if how := w.r.configChanged(); how != "" {
		t.Fatalf("the bad version is seen as a change again (%s): it would be reported every round", how)
	}
	// The old config still knows big1.
	w.launchIn(t, "big", "big1")
	w.up("big1", slurm.StateAllocated)
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("round on the old config: %q", got)
	}
	w.writeConfig(t, cpuOnly)
	if how := w.r.configChanged(); how == "" {
		t.Fatal("fixed file not seen")
	}
	w.r.reload(context.Background(), w.load, "test")
	if w.r.Metrics.ReloadFailed() || groupNames(w.r.d.Config) != "cpu" {
		t.Fatalf("good file not taken: groups %s", groupNames(w.r.d.Config))
	}
}

// SIGHUP reloads even when the file looks the same (a config management
// that keeps mtimes), and a round follows.
func TestReloadOnHup(t *testing.T) {
	w := newFileWorld(t, cpuOnly, nil)
	st, err := os.Stat(w.path)
	if err != nil {
		t.Fatal(err)
	}
	w.writeConfig(t, withBig)
	if err := os.Chtimes(w.path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	w.r.stamp, _ = os.Stat(w.path) // as if read at this version: no change to poll
	loaded := make(chan struct{}, 4)
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, w.r, RunOptions{StateDir: w.cfg.StateDir, Interval: time.Hour, Hup: hup,
			Ready: func(string) { close(ready) },
			Reload: func(ctx context.Context) (Deps, error) {
				defer func() { loaded <- struct{}{} }()
				return w.load(ctx)
			}})
	}()
	<-ready
	hup <- os.Interrupt // any signal value: Run only receives
	<-loaded
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := groupNames(w.r.d.Config); got != "cpu,big" {
		t.Fatalf("groups after SIGHUP: %s\n%s", got, w.log.String())
	}
	if !strings.Contains(w.log.String(), `"cause":"SIGHUP"`) {
		t.Fatalf("log:\n%s", w.log.String())
	}
}

// A config change between a round's look and its confirmation (hooks
// may already launch nodes on groups or hosts the daemon does not know
// yet) withdraws every decision: nothing is done on the old config.
func TestConfigChangeUnderTheLockWithdraws(t *testing.T) {
	var w *fileWorld
	w = newFileWorld(t, cpuOnly, func() { w.writeConfig(t, withBig) })
	w.launchIn(t, "cpu", "cpu1") // an orphan once old: cpu1 is powered down
	w.clock.Add(time.Hour)
	if got := kinds(w.round(t)); got != "" {
		t.Fatalf("round: %q", got)
	}
	if !w.hasInstance("cpu1") || !strings.Contains(w.log.String(), "the config file changed since the daemon loaded it") ||
		!strings.Contains(w.log.String(), `"kind":"orphan"`) {
		t.Fatalf("instance=%v log:\n%s", w.hasInstance("cpu1"), w.log.String())
	}
}
