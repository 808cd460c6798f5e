package podman

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containers/podman/v4/pkg/bindings/containers"
	"github.com/containers/podman/v4/pkg/specgen"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Integration tests against the real Podman services of env_test.go.

func node(name string) runtime.NodeSpec {
	return runtime.NodeSpec{Name: name, Group: "grp", Template: runtime.Template{
		Image:   testImage,
		Network: testNet,
		Env:     map[string]string{"FOO": "bar"},
	}}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustLaunch(t *testing.T, p *Podman, ctx context.Context, specs ...runtime.NodeSpec) []runtime.Instance {
	t.Helper()
	var out []runtime.Instance
	for _, r := range p.Launch(ctx, specs) {
		if r.Err != nil {
			t.Fatalf("launch %s: %v", r.Name, r.Err)
		}
		out = append(out, r.Instance)
	}
	return out
}

func inSubnet(t *testing.T, addr string) {
	t.Helper()
	_, n, _ := net.ParseCIDR(subnet)
	if ip := net.ParseIP(addr); ip == nil || !n.Contains(ip) {
		t.Fatalf("address %q is not in %s", addr, subnet)
	}
}

func TestIntegrationLaunchParallel(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	p := e.newRuntime(t, "rt-par", e.host(0))
	data := t.TempDir()
	specs := []runtime.NodeSpec{node("cloud1"), node("cloud2"), node("cloud3")}
	for i := range specs {
		specs[i].Template.CPUs = 0.5
		specs[i].Template.MemoryMB = 64
		specs[i].Template.Mounts = []runtime.Mount{{Source: data, Destination: "/data", ReadOnly: true}}
	}
	insts := mustLaunch(t, p, ctx, specs...)
	addrs := map[string]bool{}
	for i, in := range insts {
		if in.Name != specs[i].Name || in.Group != "grp" || in.Host != "h0" || in.State != runtime.StateRunning || in.ID == "" {
			t.Fatalf("instance %d: %+v", i, in)
		}
		inSubnet(t, in.Addr)
		if addrs[in.Addr] {
			t.Fatalf("address %s given twice", in.Addr)
		}
		addrs[in.Addr] = true

		d, err := containers.Inspect(e.conns[0], in.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "rt-par-"+in.Name || d.Config.Hostname != in.Name {
			t.Fatalf("name %q hostname %q", d.Name, d.Config.Hostname)
		}
		if d.Config.Labels[runtime.LabelCluster] != "rt-par" || d.Config.Labels[runtime.LabelNode] != in.Name || d.Config.Labels[runtime.LabelGroup] != "grp" {
			t.Fatalf("labels %v", d.Config.Labels)
		}
		// The node contract: node name, controller, munge key.
		for _, kv := range []string{runtime.EnvNode + "=" + in.Name, runtime.EnvConfServer + "=" + testConfServer, "FOO=bar"} {
			if !slices.Contains(d.Config.Env, kv) {
				t.Fatalf("env %v lacks %s", d.Config.Env, kv)
			}
		}
		if d.HostConfig.CpuQuota != 50000 || d.HostConfig.CpuPeriod != 100000 || d.HostConfig.Memory != 64<<20 {
			t.Fatalf("limits: quota %d period %d memory %d", d.HostConfig.CpuQuota, d.HostConfig.CpuPeriod, d.HostConfig.Memory)
		}
		if d.HostConfig.Privileged || d.HostConfig.RestartPolicy != nil && d.HostConfig.RestartPolicy.Name != "" && d.HostConfig.RestartPolicy.Name != "no" {
			t.Fatalf("privileged %v restart %+v", d.HostConfig.Privileged, d.HostConfig.RestartPolicy)
		}
		if len(d.NetworkSettings.Networks) != 1 || d.NetworkSettings.Networks[testNet] == nil {
			t.Fatalf("networks %v", d.NetworkSettings.Networks)
		}
		var ro, key bool
		for _, m := range d.Mounts {
			if m.Destination == "/data" && m.Source == data && !m.RW {
				ro = true
			}
			if m.Destination == runtime.MungeKeyPath && m.Source == e.mungeKey && !m.RW {
				key = true
			}
		}
		if !ro || !key {
			t.Fatalf("mounts %+v: want %s read-only at /data and %s read-only at %s", d.Mounts, data, e.mungeKey, runtime.MungeKeyPath)
		}
	}

	list, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("List = %+v, want 3", list)
	}
	for _, in := range list {
		if in.State != runtime.StateRunning || !addrs[in.Addr] || in.Host != "h0" {
			t.Fatalf("listed %+v", in)
		}
	}

	for _, r := range p.Terminate(ctx, []string{"cloud1", "cloud2", "cloud3"}) {
		if r.Err != nil {
			t.Fatalf("terminate %s: %v", r.Name, r.Err)
		}
	}
	if ids := e.ctrsOf(t, 0, "rt-par"); len(ids) != 0 {
		t.Fatalf("containers left after Terminate: %v", ids)
	}
	if list, err := p.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List after Terminate = %v, %v", list, err)
	}
}

func TestIntegrationRelaunchIdempotent(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	p := e.newRuntime(t, "rt-idem", e.host(0), e.host(1))
	first := mustLaunch(t, p, ctx, node("n1"))[0]

	again := mustLaunch(t, p, ctx, node("n1"))[0]
	if again.ID != first.ID || again.Addr != first.Addr || again.Host != first.Host {
		t.Fatalf("relaunch = %+v, want the running %+v", again, first)
	}
	// A fresh runtime (another hook invocation) finds it too.
	p2 := e.newRuntime(t, "rt-idem", e.host(0), e.host(1))
	if got := mustLaunch(t, p2, ctx, node("n1"))[0]; got.ID != first.ID {
		t.Fatalf("relaunch from a new runtime gave %s, want %s", got.ID, first.ID)
	}
	// Concurrent launches of one node: one container.
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := p.Launch(ctx, []runtime.NodeSpec{node("n2")})[0]; r.Err == nil {
				ids[i] = r.Instance.ID
			} else {
				t.Errorf("concurrent launch: %v", r.Err)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent launches of one node gave %v", ids)
		}
	}
	if n := len(e.ctrsOf(t, 0, "rt-idem")) + len(e.ctrsOf(t, 1, "rt-idem")); n != 2 {
		t.Fatalf("%d containers for 2 nodes", n)
	}
}

func TestIntegrationExitedReplaced(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	p := e.newRuntime(t, "rt-exit", e.host(0))
	first := mustLaunch(t, p, ctx, node("n1"))[0]
	if err := containers.Stop(e.conns[0], first.ID, new(containers.StopOptions).WithTimeout(0)); err != nil {
		t.Fatal(err)
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != 1 || list[0].State != runtime.StateExited || list[0].Addr != "" {
		t.Fatalf("List of stopped node = %+v, %v", list, err)
	}
	second := mustLaunch(t, p, ctx, node("n1"))[0]
	if second.ID == first.ID || second.State != runtime.StateRunning {
		t.Fatalf("relaunch of exited node = %+v (old %s)", second, first.ID)
	}
	if ok, err := containers.Exists(e.conns[0], first.ID, nil); err != nil || ok {
		t.Fatalf("old container still exists (%v, %v)", ok, err)
	}
	if ids := e.ctrsOf(t, 0, "rt-exit"); len(ids) != 1 || ids[0] != second.ID {
		t.Fatalf("containers %v, want only %s", ids, second.ID)
	}
}

func TestIntegrationConfigErrors(t *testing.T) {
	e := getEnv(t)
	tests := []struct {
		name   string
		mutate func(*runtime.Template)
		key    string // Options.MungeKey; "" = the test key
		want   string // in the error
	}{
		{"missing image", func(t *runtime.Template) { t.Image = "localhost/slurm-elastic-test/absent:1" }, "", "check image"},
		{"missing network", func(t *runtime.Template) { t.Network = "se-rt-absent" }, "", "check network"},
		{"bad CDI device", func(t *runtime.Template) { t.GPUs = 1 }, "", "start"},
		{"bad command", func(t *runtime.Template) { t.Command = []string{"/bin/absent"} }, "", "start"},
		{"missing munge key", func(*runtime.Template) {}, "/nonexistent/slurm-elastic/munge.key", "/nonexistent/slurm-elastic/munge.key"},
		// A command that exits right after it started is caught only when
		// it is gone by the inspect that follows start: a race, so it is
		// not tested here.
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			cluster := "rt-cfg-" + strings.ReplaceAll(tt.name, " ", "-")
			key := tt.key
			if key == "" {
				key = e.mungeKey
			}
			h := e.host(0)
			h.GPUs = []string{"example.com/gpu=0"} // no CDI spec provides it
			p := e.newRuntimeKey(t, cluster, key, h)
			n := node("bad1")
			tt.mutate(&n.Template)
			r := p.Launch(ctx, []runtime.NodeSpec{n})[0]
			// On the only host: the template's problem, not one host's.
			if r.Class() != runtime.ClassConfig || runtime.HostOf(r.Err) != "" {
				t.Fatalf("class %q, host %q, err %v; want Config, not host-scoped", r.Class(), runtime.HostOf(r.Err), r.Err)
			}
			msg := r.Err.Error()
			if !strings.Contains(msg, "node bad1 on host h0") || !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q does not name node, host and %q", msg, tt.want)
			}
			if ids := e.ctrsOf(t, 0, cluster); len(ids) != 0 {
				t.Fatalf("failed launch left containers %v", ids)
			}
			// The failed launch holds no capacity.
			if got := p.rooms(time.Now())[0].nodes; got != 0 {
				t.Fatalf("failed launch still counts %d nodes on h0", got)
			}
		})
	}
}

func TestIntegrationCapacityMaxNodes(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	h := e.host(0)
	h.MaxNodes = 2
	p := e.newRuntime(t, "rt-cap", h)
	// Five single-node launches at once, as resume's worker pool does.
	var wg sync.WaitGroup
	res := make([]runtime.Result, 5)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = p.Launch(ctx, []runtime.NodeSpec{node(fmt.Sprintf("c%d", i))})[0]
		}()
	}
	wg.Wait()
	ok, full := 0, 0
	for _, r := range res {
		switch r.Class() {
		case "":
			ok++
		case runtime.ClassCapacity:
			full++
		default:
			t.Fatalf("launch %s: %v", r.Name, r.Err)
		}
	}
	if ok != 2 || full != 3 {
		t.Fatalf("%d launched, %d refused; want 2 and 3: %+v", ok, full, res)
	}
	if ids := e.ctrsOf(t, 0, "rt-cap"); len(ids) != 2 {
		t.Fatalf("%d containers, want 2", len(ids))
	}
	// Terminating one frees its slot.
	var gone string
	for _, r := range res {
		if r.Err == nil {
			gone = r.Name
			break
		}
	}
	if r := p.Terminate(ctx, []string{gone})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	mustLaunch(t, p, ctx, node("late"))
	// A new runtime (another process) counts what runs: still full.
	p2 := e.newRuntime(t, "rt-cap", h)
	if r := p2.Launch(ctx, []runtime.NodeSpec{node("later")})[0]; r.Class() != runtime.ClassCapacity {
		t.Fatalf("launch on a full host from a new runtime: %v", r.Err)
	}
}

func TestIntegrationTwoHostsSpread(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	h0, h1 := e.host(0), e.host(1)
	h0.CPUs, h1.CPUs = 1, 4
	p := e.newRuntime(t, "rt-spread", h0, h1)
	count := map[string]int{}
	for i := range 6 {
		n := node(fmt.Sprintf("s%d", i))
		n.Template.CPUs = 1
		r := p.Launch(ctx, []runtime.NodeSpec{n})[0]
		if i == 5 {
			if r.Class() != runtime.ClassCapacity {
				t.Fatalf("sixth 1-CPU node on 1+4 CPUs: %v, want Capacity", r.Err)
			}
			if !strings.Contains(r.Err.Error(), "h0") || !strings.Contains(r.Err.Error(), "h1") {
				t.Fatalf("capacity error does not describe the hosts: %v", r.Err)
			}
			continue
		}
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		inSubnet(t, r.Instance.Addr)
		count[r.Instance.Host]++
	}
	// Most free room first: h1 (free 3/4, 2/4, 1/4) until it is as full as
	// h0 would be (0/1 vs 0/4: a tie, fewer nodes wins: h0), then h1's last.
	if count["h0"] != 1 || count["h1"] != 4 {
		t.Fatalf("placement %v, want h0:1 h1:4", count)
	}
	if len(e.ctrsOf(t, 0, "rt-spread")) != 1 || len(e.ctrsOf(t, 1, "rt-spread")) != 4 {
		t.Fatal("containers on the hosts do not match the placement")
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != 5 {
		t.Fatalf("List = %v, %v", list, err)
	}
	// Terminate finds each node on whichever host runs it.
	var names []string
	for _, in := range list {
		names = append(names, in.Name)
	}
	for _, r := range p.Terminate(ctx, names) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if len(e.ctrsOf(t, 0, "rt-spread"))+len(e.ctrsOf(t, 1, "rt-spread")) != 0 {
		t.Fatal("containers left after Terminate")
	}
}

func TestIntegrationTerminateAbsent(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	p := e.newRuntime(t, "rt-absent", e.host(0), e.host(1))
	for _, r := range p.Terminate(ctx, []string{"never1", "never2"}) {
		if r.Err != nil {
			t.Fatalf("terminate of absent %s: %v", r.Name, r.Err)
		}
	}
	mustLaunch(t, p, ctx, node("once"))
	for range 2 {
		if r := p.Terminate(ctx, []string{"once"})[0]; r.Err != nil {
			t.Fatalf("terminate (twice): %v", r.Err)
		}
	}
}

func TestIntegrationOwnership(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	// A container of another cluster for the same node name.
	s := specgen.NewSpecGenerator(testImage, false)
	s.Name = "rt-other-f1"
	s.Labels = map[string]string{runtime.LabelCluster: "rt-other", runtime.LabelNode: "f1", runtime.LabelGroup: "grp"}
	s.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	cr, err := containers.CreateWithSpec(e.conns[0], s, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = containers.Remove(e.conns[0], cr.ID, new(containers.RemoveOptions).WithForce(true).WithIgnore(true).WithTimeout(0))
	})
	if err := containers.Start(e.conns[0], cr.ID, nil); err != nil {
		t.Fatal(err)
	}

	p := e.newRuntime(t, "rt-own", e.host(0))
	if list, err := p.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List sees a foreign container: %+v, %v", list, err)
	}
	if r := p.Terminate(ctx, []string{"f1"})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	mine := mustLaunch(t, p, ctx, node("f1"))[0]
	if mine.ID == cr.ID {
		t.Fatal("Launch returned the foreign container")
	}
	if r := p.Terminate(ctx, []string{"f1"})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	d, err := containers.Inspect(e.conns[0], cr.ID, nil)
	if err != nil || !d.State.Running {
		t.Fatalf("foreign container was touched: %v (running %v)", err, d != nil && d.State.Running)
	}
}

func TestIntegrationUnreachableHost(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	dead := Host{Name: "hx", URI: "unix://" + e.sockDir + "/absent.sock"}
	t.Run("only host", func(t *testing.T) {
		p := e.newRuntime(t, "rt-unreach", dead)
		r := p.Launch(ctx, []runtime.NodeSpec{node("u1")})[0]
		if r.Class() != runtime.ClassTransient || !strings.Contains(r.Err.Error(), "hx") {
			t.Fatalf("launch: class %q err %v; want Transient naming hx", r.Class(), r.Err)
		}
		if _, err := p.List(ctx); runtime.ClassOf(err) != runtime.ClassTransient || !strings.Contains(err.Error(), "hx") {
			t.Fatalf("List: %v; want Transient naming hx", err)
		}
		if r := p.Terminate(ctx, []string{"u1"})[0]; r.Class() != runtime.ClassTransient {
			t.Fatalf("terminate: %v; want Transient", r.Err)
		}
	})
	// One host of two unreachable: the other is used (issue 11, defect 5),
	// and what could not be seen is said.
	t.Run("one of two", func(t *testing.T) {
		p := e.newRuntime(t, "rt-unreach", e.host(0), dead)
		r := p.Launch(ctx, []runtime.NodeSpec{node("u1")})[0]
		if r.Err != nil || r.Instance.Host != "h0" {
			t.Fatalf("launch: %+v; want it on h0", r)
		}
		insts, err := p.List(ctx)
		var pe *runtime.PartialError
		if !errors.As(err, &pe) || len(pe.Hosts) != 1 || pe.Hosts[0] != "hx" || len(insts) != 1 {
			t.Fatalf("List: %v, %+v; want u1 and a PartialError naming hx", err, insts)
		}
		if r := p.Terminate(ctx, []string{"u1"})[0]; r.Err != nil {
			t.Fatalf("terminate of a node found on h0: %v", r.Err)
		}
		if r := p.Terminate(ctx, []string{"u9"})[0]; r.Class() != runtime.ClassTransient || runtime.HostOf(r.Err) != "hx" {
			t.Fatalf("terminate of a node found nowhere: %v; want Transient naming hx", r.Err)
		}
		if len(e.ctrsOf(t, 0, "rt-unreach")) != 0 {
			t.Fatal("containers left on h0")
		}
	})
	// Bounded by ctx: an already-expired context fails at once, classified.
	p := e.newRuntime(t, "rt-unreach", dead)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if r := p.Launch(cctx, []runtime.NodeSpec{node("u2")})[0]; r.Class() != runtime.ClassTransient {
		t.Fatalf("launch with cancelled ctx: %v", r.Err)
	}
}

// BenchmarkLaunch launches and terminates one node per iteration on one
// host (find, create, start, inspect; then find, stop, remove) and reports
// the two halves.
func BenchmarkLaunch(b *testing.B) {
	e := getEnv(b)
	ctx := context.Background()
	p := e.newRuntime(b, "rt-bench", e.host(0))
	n := node("b1")
	var launch, term time.Duration
	for b.Loop() {
		t0 := time.Now()
		if r := p.Launch(ctx, []runtime.NodeSpec{n})[0]; r.Err != nil {
			b.Fatal(r.Err)
		}
		t1 := time.Now()
		if r := p.Terminate(ctx, []string{"b1"})[0]; r.Err != nil {
			b.Fatal(r.Err)
		}
		launch += t1.Sub(t0)
		term += time.Since(t1)
	}
	b.ReportMetric(float64(launch.Milliseconds())/float64(b.N), "launch-ms/op")
	b.ReportMetric(float64(term.Milliseconds())/float64(b.N), "terminate-ms/op")
}

// TestIntegrationImageName: a node started from one of its group's named
// images carries the name (label, env SLURM_ELASTIC_IMAGE, Instance.Image
// from Launch and List); the default image carries none. A named image the
// host lacks fails that node only: the host is not cooled down, so the
// default image still starts there.
func TestIntegrationImageName(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	p := e.newRuntime(t, "rt-img", e.host(0))

	bad := node("img0")
	bad.Image, bad.Template.Image = "absent", "localhost/slurm-elastic-test/absent:1"
	if r := p.Launch(ctx, []runtime.NodeSpec{bad})[0]; r.Class() != runtime.ClassConfig || !strings.Contains(r.Err.Error(), "not found") {
		t.Fatalf("launch of a missing named image: class %q err %v", r.Class(), r.Err)
	}
	named := node("img1")
	named.Image = "marked"
	insts := mustLaunch(t, p, ctx, named, node("img2")) // the only host is still in placement
	if insts[0].Image != "marked" || insts[1].Image != "" {
		t.Fatalf("launched images %q %q, want marked and the default", insts[0].Image, insts[1].Image)
	}
	list, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if want := map[string]string{"img1": "marked"}[in.Name]; in.Image != want {
			t.Errorf("listed %s with image %q, want %q", in.Name, in.Image, want)
		}
	}
	env, err := run(0, "podman", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", ContainerName("rt-img", "img1"))
	if err != nil || !strings.Contains(env, runtime.EnvImage+"=marked\n") {
		t.Fatalf("img1's env lacks %s=marked: %v\n%s", runtime.EnvImage, err, env)
	}
	env, err = run(0, "podman", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", ContainerName("rt-img", "img2"))
	if err != nil || strings.Contains(env, runtime.EnvImage+"=") {
		t.Fatalf("img2 (default image) has %s: %v\n%s", runtime.EnvImage, err, env)
	}
}
