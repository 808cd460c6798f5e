package hookcmd

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// fakeConfig writes a valid config for the fakes: group cloud[1-20],
// resume.timeout 2s, suspend.timeout suspendTimeout, a breaker that opens
// after 2 failures, and extra (YAML) appended.
func fakeConfig(t *testing.T, dir, suspendTimeout, extra string) string {
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
breaker:
  threshold: 2
suspend:
  timeout: ` + suspendTimeout + `
groups:
  - name: cloud
    nodes: cloud[1-20]
    template:
      image: localhost/node:1
      network: net
` + extra
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

// update is one Update call the recording client passed on.
type update struct {
	names    []string
	u        slurm.NodeUpdate
	deadline time.Time // zero: the call had no deadline
}

// recSlurm passes every call to the fake controller and records the
// updates, with their contexts' deadlines, and when the first call came.
type recSlurm struct {
	*slurmfake.Fake
	mu      sync.Mutex
	first   time.Time
	updates []update
}

func (r *recSlurm) seen() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first.IsZero() {
		r.first = time.Now()
	}
}

func (r *recSlurm) Ping(ctx context.Context) error { r.seen(); return r.Fake.Ping(ctx) }

func (r *recSlurm) Nodes(ctx context.Context, names ...string) ([]slurm.Node, error) {
	r.seen()
	return r.Fake.Nodes(ctx, names...)
}

func (r *recSlurm) Update(ctx context.Context, names []string, u slurm.NodeUpdate) error {
	r.seen()
	dl, _ := ctx.Deadline()
	r.mu.Lock()
	r.updates = append(r.updates, update{slices.Clone(names), u, dl})
	r.mu.Unlock()
	return r.Fake.Update(ctx, names, u)
}

type fakes struct {
	sc *recSlurm
	rt *runtimefake.Fake
}

func newFakes(o runtimefake.Options) fakes {
	names, _ := hostlist.Expand("cloud[1-20]")
	o.Cluster = "t"
	return fakes{sc: &recSlurm{Fake: slurmfake.New(names...)}, rt: runtimefake.New(o)}
}

func (f fakes) builder() builder {
	return builder{
		slurm: func(context.Context, *conf.Config, *slog.Logger) (slurm.Client, error) { return f.sc, nil },
		runtimes: func(context.Context, *conf.Config, *slog.Logger) (map[string]runtime.Runtime, error) {
			return map[string]runtime.Runtime{"podman": f.rt}, nil
		},
	}
}

// Defect 4: nodes never launched because the run's deadline passed
// (resume.concurrency 2: four of six never start) and launches the
// deadline cut short are not boot failures: the breaker stays closed and
// counts nothing, and every node is still set DOWN (Code:Interrupted) and
// powered down, so its job is requeued at once.
func TestResumeDeadlineDoesNotOpenTheBreaker(t *testing.T) {
	dir := t.TempDir()
	cfg := fakeConfig(t, dir, "10s", "resume:\n  timeout: 2s\n  concurrency: 2\n")
	f := newFakes(runtimefake.Options{Latency: time.Hour}) // every launch outlives the run
	if err := run(context.Background(), Resume, cfg, "cloud[1-6]", nil, f.builder()); err == nil {
		t.Fatal("resume reported success for nodes it never launched")
	}
	st, err := breaker.Load(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if b := st.Get("cloud"); b.Open || b.Failures != 0 {
		t.Errorf("breaker after a run whose deadline passed: %+v, want closed with no failures", b)
	}
	if c := st.Launches["cloud"]; c != nil && c.Failed != 0 {
		t.Errorf("launch counts %+v: interrupted launches counted as failed", c)
	}
	for i := 1; i <= 6; i++ {
		n, _ := f.sc.Node("cloud" + string(rune('0'+i)))
		if n.State != slurm.StateIdle || !n.Has(slurm.FlagPoweredDown) || !strings.HasPrefix(n.Reason, "slurm-elastic: (Code:Interrupted) ") {
			t.Errorf("%s: state %s flags %v reason %q, want DOWN (Code:Interrupted) then powered down", n.Name, n.State, n.Flags, n.Reason)
		}
	}
}

// Defect 7: twenty nodes whose launches all outlive resume.timeout are
// marked in one Slurm update (not one per node), and no Slurm call of the
// run may last past the run's budget: resume.timeout from the start of the
// run, which is before its first Slurm call.
func TestResumeMarksAllFailuresInOneUpdateWithinTheBudget(t *testing.T) {
	dir := t.TempDir()
	cfg := fakeConfig(t, dir, "10s", "resume:\n  timeout: 2s\n")
	f := newFakes(runtimefake.Options{Latency: time.Hour})
	if err := run(context.Background(), Resume, cfg, "cloud[1-20]", nil, f.builder()); err == nil {
		t.Fatal("resume reported success for nodes it never launched")
	}
	end := f.sc.first.Add(2 * time.Second)
	var downs []update
	for _, u := range f.sc.updates {
		if u.deadline.IsZero() || u.deadline.After(end) {
			t.Errorf("update %v %s: deadline %v, want one no later than the run's end %v", u.names, u.u.State, u.deadline, end)
		}
		if u.u.State == slurm.SetDown {
			downs = append(downs, u)
		}
	}
	if len(downs) != 1 || len(downs[0].names) != 20 {
		for _, u := range downs {
			t.Logf("DOWN %v: %s", u.names, u.u.Reason)
		}
		t.Fatalf("%d DOWN updates, want one for all 20 nodes", len(downs))
	}
}

// Defect 7: a resume of cloud1 that hangs in the runtime does not hold up
// a suspend of cloud2: the suspend removes cloud2's instance and succeeds
// while the resume still runs.
func TestSuspendIsNotHeldUpByAResumeOfAnotherNode(t *testing.T) {
	dir := t.TempDir()
	cfg := fakeConfig(t, dir, "3s", "resume:\n  timeout: 2s\n")
	f := newFakes(runtimefake.Options{})
	ctx := context.Background()
	if r := f.rt.Launch(ctx, []runtime.NodeSpec{{Name: "cloud2", Group: "cloud"}})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.rt.SetFault(func(op, node string) error {
		if op == runtimefake.OpLaunch && node == "cloud1" {
			once.Do(func() { close(entered) })
			<-release // the runtime hangs, deaf to the run's deadline
		}
		return nil
	})
	resumed := make(chan error, 1)
	go func() { resumed <- run(ctx, Resume, cfg, "cloud1", nil, f.builder()) }()
	<-entered
	err := run(ctx, Suspend, cfg, "cloud2", nil, f.builder())
	close(release)
	<-resumed
	if err != nil {
		t.Fatalf("suspend of cloud2 while a resume of cloud1 runs: %v", err)
	}
	for _, in := range f.rt.Instances() {
		if in.Name == "cloud2" {
			t.Fatal("cloud2's instance was not removed")
		}
	}
}
