package resume

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/power"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// testConfig has a working group cloud[1-4] and a group ghost[1-2] whose
// image the fake runtime does not know.
func testConfig() *conf.Config {
	c := conf.Default()
	c.Cluster = "t"
	c.File = "/etc/slurm-elastic/config.yaml"
	c.Resume.Concurrency = 8
	c.Groups = []conf.Group{
		{Name: "cloud", Nodes: "cloud[1-4]", Template: conf.Template{Image: "node:1", Network: "net"}},
		{Name: "ghost", Nodes: "ghost[1-2]", Template: conf.Template{Image: "missing:1", Network: "net"}},
	}
	c.ApplyDefaults()
	return &c
}

type env struct {
	d  power.Deps
	rt *runtimefake.Fake
	sc *slurmfake.Fake
}

func newEnv(t *testing.T, o runtimefake.Options) env {
	t.Helper()
	o.Cluster = "t"
	if o.Images == nil {
		o.Images = []string{"node:1"}
	}
	rt := runtimefake.New(o)
	sc := slurmfake.New("cloud1", "cloud2", "cloud3", "cloud4", "ghost1", "ghost2", "stray1")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	cfg := testConfig()
	cfg.StateDir = t.TempDir() // failed nodes' logs (internal/nodelog)
	return env{d: power.Deps{Config: cfg, Runtimes: map[string]runtime.Runtime{"podman": rt}, Slurm: sc, Log: log}, rt: rt, sc: sc}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e env) node(t *testing.T, name string) slurm.Node {
	t.Helper()
	n, ok := e.sc.Node(name)
	if !ok {
		t.Fatalf("node %s missing from fake slurm", name)
	}
	return n
}

func (e env) instances(t *testing.T) map[string]runtime.Instance {
	t.Helper()
	list, err := e.rt.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]runtime.Instance{}
	for _, in := range list {
		if _, dup := m[in.Name]; dup {
			t.Fatalf("two instances for node %s", in.Name)
		}
		m[in.Name] = in
	}
	return m
}

func TestResumeLaunchesAndAddresses(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	ctx := context.Background()
	names := []string{"cloud1", "cloud2", "cloud3"}
	if err := Resume(ctx, e.d, names, nil); err != nil {
		t.Fatal(err)
	}
	inst := e.instances(t)
	for _, n := range names {
		in, ok := inst[n]
		if !ok || in.State != runtime.StateRunning {
			t.Fatalf("node %s: instance %+v", n, in)
		}
		sn := e.node(t, n)
		if sn.Addr != in.Addr || sn.Hostname != n || sn.State == slurm.StateDown {
			t.Errorf("node %s in slurm: %+v, instance addr %s", n, sn, in.Addr)
		}
	}
	if len(inst) != 3 {
		t.Fatalf("%d instances, want 3", len(inst))
	}
	// Again (slurmctld restarted): the same instances, no duplicates.
	before := inst["cloud1"].ID
	if err := Resume(ctx, e.d, names, nil); err != nil {
		t.Fatal(err)
	}
	inst = e.instances(t)
	if len(inst) != 3 || inst["cloud1"].ID != before {
		t.Fatalf("second resume changed instances: %+v", inst)
	}
}

func TestResumeMarksFailuresDownWithClass(t *testing.T) {
	e := newEnv(t, runtimefake.Options{Capacity: 2})
	err := Resume(context.Background(), e.d, []string{"cloud1", "ghost1", "stray1", "cloud2", "cloud3"}, nil)
	if err == nil {
		t.Fatal("want an error for the failed nodes")
	}
	for _, n := range []string{"ghost1", "stray1"} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error does not name %s: %v", n, err)
		}
	}
	want := map[string]string{
		"ghost1": "slurm-elastic: (Code:Config) ",
		"stray1": "slurm-elastic: (Code:UnknownNode) node stray1 is in no node group of /etc/slurm-elastic/config.yaml",
	}
	for n, prefix := range want {
		sn := e.node(t, n)
		if sn.State != slurm.StateDown || !strings.HasPrefix(sn.Reason, prefix) {
			t.Errorf("node %s: state %s reason %q, want DOWN with %q", n, sn.State, sn.Reason, prefix)
		}
	}
	// ghost2 would fail the same way: it is taken out of scheduling too.
	if sn := e.node(t, "ghost2"); sn.State != slurm.StateDown || !strings.HasPrefix(sn.Reason, "slurm-elastic: (Code:Config) group ghost cannot start nodes: ") {
		t.Errorf("ghost2: state %s reason %q, want DOWN with the group's Config reason", sn.State, sn.Reason)
	}
	// Capacity 2: exactly one of the three cloud nodes was refused, with
	// the Capacity class.
	// It was set DOWN (its job requeued) and powered down again, so it
	// returns to the pool: capacity may come back.
	var capDown int
	for _, n := range []string{"cloud1", "cloud2", "cloud3"} {
		if sn := e.node(t, n); strings.HasPrefix(sn.Reason, "slurm-elastic: (Code:Capacity) ") {
			if sn.State != slurm.StateIdle || !sn.Has(slurm.FlagPoweredDown) {
				t.Errorf("node %s: %s %v, want IDLE+POWERED_DOWN after a Capacity failure", n, sn.State, sn.Flags)
			}
			capDown++
		}
	}
	inst := e.instances(t)
	if capDown != 1 || len(inst) != 2 {
		t.Fatalf("capacity: %d nodes down, %d instances; want 1 and 2", capDown, len(inst))
	}
	if _, ok := inst["ghost1"]; ok {
		t.Fatal("failed node ghost1 left an instance behind")
	}
}

func TestResumeRetriesTransientFailures(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	var fails atomic.Int32
	e.rt.SetFault(func(op, node string) error {
		if op == "launch" && node == "cloud2" && fails.Add(1) <= 2 {
			return runtime.Errorf(runtime.ClassTransient, "connection refused")
		}
		return nil
	})
	if err := Resume(context.Background(), e.d, []string{"cloud1", "cloud2"}, nil); err != nil {
		t.Fatalf("two transient failures then success should succeed: %v", err)
	}
	if fails.Load() != 3 {
		t.Fatalf("cloud2 launch tried %d times, want 3", fails.Load())
	}
	if e.node(t, "cloud2").Addr != "fake-cloud2" {
		t.Fatalf("cloud2 not addressed: %+v", e.node(t, "cloud2"))
	}
}

func TestResumeRemovesInstanceSlurmCannotAddress(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.sc.SetFault(func(op string, names []string, u slurm.NodeUpdate) error {
		if op == "update" && u.Addr != "" && names[0] == "cloud3" {
			return errors.New("slurmctld: Unable to contact slurm controller")
		}
		return nil
	})
	err := Resume(context.Background(), e.d, []string{"cloud3", "cloud4"}, nil)
	if err == nil || !strings.Contains(err.Error(), "cloud3") {
		t.Fatalf("err = %v, want one naming cloud3", err)
	}
	inst := e.instances(t)
	if _, ok := inst["cloud3"]; ok {
		t.Fatal("cloud3's instance was left running though Slurm never learned its address")
	}
	if _, ok := inst["cloud4"]; !ok {
		t.Fatal("cloud4 should run")
	}
	if st := e.rt.Stats(); st.Launched != 2 {
		t.Errorf("%d launches, want 2: a node whose address Slurm refused must not be launched again", st.Launched)
	}
	if sn := e.node(t, "cloud3"); !sn.Has(slurm.FlagPoweredDown) || !strings.Contains(sn.Reason, "(Code:SlurmUpdate)") {
		t.Fatalf("cloud3: %+v", sn)
	}
}

// A run whose launches outlive its budget ends by the budget: the nodes
// are failed as interrupted (not a launch failure), in one DOWN and one
// POWER_DOWN_FORCE call for both.
func TestResumeBoundedByContext(t *testing.T) {
	e := newEnv(t, runtimefake.Options{Latency: time.Hour})
	e.d.Budget = power.NewBudget(time.Now(), time.Second)
	err := Resume(context.Background(), e.d, []string{"cloud1", "cloud2"}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	for _, n := range []string{"cloud1", "cloud2"} {
		if sn := e.node(t, n); !reason.Has(sn.Reason, reason.Interrupted) || !strings.Contains(sn.Reason, "launch cut short") || !sn.Has(slurm.FlagPoweredDown) {
			t.Errorf("node %s after timeout: %+v", n, sn)
		}
	}
	if got := e.sc.Calls("update"); got != 2 {
		t.Errorf("%d Slurm updates, want 2: DOWN and POWER_DOWN_FORCE, each for both nodes", got)
	}
}

func TestResumeFailRemovesAndRecords(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	ctx := context.Background()
	if err := Resume(ctx, e.d, []string{"cloud1"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := ResumeFail(ctx, e.d, []string{"cloud1", "cloud2"}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.instances(t)); n != 0 {
		t.Fatalf("%d instances left", n)
	}
	c1, c2 := e.node(t, "cloud1"), e.node(t, "cloud2")
	if c1.State != slurm.StateDown || !strings.Contains(c1.Reason, "(Code:ResumeTimeout)") || !strings.Contains(c1.Reason, "instance was running") {
		t.Errorf("cloud1: %+v", c1)
	}
	if !strings.Contains(c2.Reason, "no instance was found") {
		t.Errorf("cloud2: %+v", c2)
	}
}

func TestResumeFailKeepsOurEarlierReason(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	ctx := context.Background()
	_ = Resume(ctx, e.d, []string{"ghost1"}, nil)
	before := e.node(t, "ghost1").Reason
	if !strings.Contains(before, "(Code:Config)") {
		t.Fatalf("ghost1 reason %q", before)
	}
	if err := ResumeFail(ctx, e.d, []string{"ghost1"}); err != nil {
		t.Fatal(err)
	}
	if after := e.node(t, "ghost1"); after.Reason != before || after.State != slurm.StateDown {
		t.Fatalf("resume-fail replaced the cause: %q -> %q (%s)", before, after.Reason, after.State)
	}
}

func TestParseResumeFileBothShapes(t *testing.T) {
	tests := []struct {
		name, in, all, nodes string
		job                  int64
	}{
		{"21.08", `{"all_nodes":"cloud[1-2]","jobs":[{"job_id":7,"nodes":"cloud[1-2]"}]}`, "cloud[1-2]", "cloud[1-2]", 7},
		{"23.02", `{"all_nodes_resume":"cloud[1-3]","jobs":[{"extra":"","features":"x","job_id":9,"nodes_alloc":"cloud[1-3]","nodes_resume":"cloud[2-3]","oversubscribe":"OK","partition":"cloud","reservation":""}]}`, "cloud[1-3]", "cloud[2-3]", 9},
		{"26.05", `{"all_nodes_resume":"c1","jobs":[{"job_id":1,"nodes_resume":"c1","exclusive":"NO","priority":10}]}`, "c1", "c1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rf, err := ParseResumeFile([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if rf.AllNodes != tt.all || len(rf.Jobs) != 1 || rf.Jobs[0].Nodes != tt.nodes || rf.Jobs[0].JobID != tt.job {
				t.Fatalf("%+v", rf)
			}
		})
	}
	if _, err := ParseResumeFile([]byte(`{"jobs": [`)); err == nil {
		t.Fatal("truncated file parsed")
	}
}

// TestResumeHostScopedConfigKeepsSiblings (issue 11, defect 5): a Config
// failure confined to one runtime host (the image or a device missing
// there) fails that node only; the group's idle siblings stay in
// scheduling, unlike a failure of the template itself.
func TestResumeHostScopedConfigKeepsSiblings(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.rt.SetFault(func(op, node string) error {
		if op == runtimefake.OpLaunch && node == "cloud1" {
			return runtime.HostErrorf(runtime.ClassConfig, "h1", "node cloud1 on host h1: check image: image %q not found", "node:1")
		}
		return nil
	})
	if err := Resume(context.Background(), e.d, []string{"cloud1"}, nil); err == nil {
		t.Fatal("want an error for cloud1")
	}
	if sn := e.node(t, "cloud1"); sn.State != slurm.StateDown || !strings.HasPrefix(sn.Reason, "slurm-elastic: (Code:Config) ") {
		t.Errorf("cloud1: %s %q, want DOWN with a Config reason", sn.State, sn.Reason)
	}
	for _, n := range []string{"cloud2", "cloud3", "cloud4"} {
		if sn := e.node(t, n); sn.State == slurm.StateDown || sn.Reason != "" {
			t.Errorf("%s: %s %q: a host's problem took an idle sibling out of scheduling", n, sn.State, sn.Reason)
		}
	}
}
