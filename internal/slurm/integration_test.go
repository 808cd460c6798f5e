package slurm

// Integration tests: both backends against a real Slurm cluster (24.11, or the release in
// $SE_SLURM: 22.05, 26.05)
// (tests/harness: slurmctld and slurmrestd in a Podman container). They run
// with `make test` and are left out by -short.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// testSlurmConf is appended to the harness's base slurm.conf (which has
// PrivateData=cloud). The power-save programs do nothing: these tests only
// watch slurmctld's state machine.
const testSlurmConf = `
NodeName=cloud[1-4] CPUs=1 RealMemory=500 State=CLOUD Feature=gpu,fast
NodeName=static1 CPUs=2 RealMemory=1000 State=FUTURE
NodeName=down1 CPUs=1 RealMemory=100 NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=cloud Nodes=cloud[1-4] Default=YES MaxTime=INFINITE State=UP
PartitionName=other Nodes=down1,cloud1 MaxTime=INFINITE State=UP
SuspendProgram=/bin/true
ResumeProgram=/bin/true
SuspendTime=600
SuspendTimeout=5
ResumeTimeout=600
`

// clusterName is se-slurmtest, with the release appended when $SE_SLURM names one, so
// that runs on several releases at once do not replace each other's cluster.
var clusterName = "se-slurmtest" + strings.ReplaceAll(os.Getenv(harness.EnvSlurm), ".", "")

// wantParser is the data parser the REST backend must pick on each release's live
// slurmrestd ("": none, Negotiate fails with ErrRESTUnsupported).
var wantParser = map[string]string{"22.05": "", "24.11": "v0.0.42", "26.05": "v0.0.45"}

// restWorks reports whether the REST backend can drive c's Slurm; on 22.05 it cannot
// (TestIntegrationRESTParser proves the refusal).
func restWorks(c *harness.Cluster) bool { return wantParser[c.Slurm] != "" }

var (
	clusterOnce sync.Once
	cluster     *harness.Cluster
	clusterErr  error
)

func init() {
	integrationMain = func(m *testing.M) int {
		code := m.Run()
		if cluster != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := cluster.Stop(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL: stop test cluster:", err)
				code = 1
			}
		}
		return code
	}
}

// needCluster starts the shared test cluster once (tens of seconds; a few
// minutes when the image is built) and fails the test if it cannot.
func needCluster(t *testing.T) *harness.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration: needs the Slurm test cluster; run without -short")
	}
	clusterOnce.Do(func() {
		var log bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		cluster, clusterErr = harness.Start(ctx, harness.Options{Name: clusterName, SlurmConf: testSlurmConf, Log: &log})
		if clusterErr != nil {
			clusterErr = fmt.Errorf("%w\n--- harness log ---\n%s", clusterErr, log.String())
		}
	})
	if clusterErr != nil {
		t.Fatalf("start the Slurm test cluster (needs root and podman, runc, debootstrap: `make deps`): %v", clusterErr)
	}
	return cluster
}

// backend is one Client under test and the two nodes its scenarios change
// (the backends change different nodes, so neither sees the other's state).
type backend struct {
	name   string
	client Client
	a, b   string
}

func backends(t *testing.T, c *harness.Cluster) []backend {
	t.Helper()
	tokFile := writeToken(t, c)
	r, err := NewREST(RESTOptions{URL: c.RESTURL, TokenFile: tokFile, User: "root", Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScontrol(ScontrolOptions{Path: c.ScontrolWrapper(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	bes := []backend{{name: "scontrol", client: s, a: "cloud3", b: "cloud4"}}
	if restWorks(c) {
		bes = append(bes, backend{name: "rest", client: r, a: "cloud1", b: "cloud2"})
	}
	return bes
}

// The REST backend negotiates the newest data parser of the live slurmrestd: v0.0.45 on
// 26.05, v0.0.42 on 24.11; on 22.05 (v0.0.36–v0.0.38, no node update) it refuses, naming
// what slurmrestd serves.
func TestIntegrationRESTParser(t *testing.T) {
	c := needCluster(t)
	want, ok := wantParser[c.Slurm]
	if !ok {
		t.Fatalf("no expected data parser for Slurm %s", c.Slurm)
	}
	r, err := NewREST(RESTOptions{URL: c.RESTURL, TokenFile: writeToken(t, c), User: "root", Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Negotiate(context.Background())
	if want == "" {
		if !errors.Is(err, ErrRESTUnsupported) || !strings.Contains(err.Error(), "v0.0.38") {
			t.Fatalf("Slurm %s: Negotiate = %q, %v; want ErrRESTUnsupported naming v0.0.38", c.Slurm, v, err)
		}
		t.Logf("Slurm %s: %v", c.Slurm, err)
		return
	}
	if err != nil || v != want {
		t.Fatalf("Slurm %s: Negotiate = %q, %v; want %s", c.Slurm, v, err, want)
	}
}

// writeToken writes a fresh root token to a new file and returns its path.
func writeToken(t *testing.T, c *harness.Cluster) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slurm.jwt")
	rotateToken(t, c, path)
	return path
}

// rotateToken replaces the token in path by a new one, as a rotation job
// would (write a new file, rename it over the old one).
func rotateToken(t *testing.T, c *harness.Cluster, path string) {
	t.Helper()
	tok, err := c.Token(context.Background(), "root", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".new", []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func getNode(t *testing.T, c Client, name string) Node {
	t.Helper()
	nodes, err := c.Nodes(context.Background(), name)
	if err != nil {
		t.Fatalf("Nodes(%s): %v", name, err)
	}
	if len(nodes) != 1 || nodes[0].Name != name {
		t.Fatalf("Nodes(%s) = %+v", name, nodes)
	}
	return nodes[0]
}

// eventually polls node name until ok holds; slurmctld applies power
// changes in its power-save thread, not in the update RPC.
func eventually(t *testing.T, c Client, name, what string, ok func(Node) bool) Node {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := getNode(t, c, name)
		if ok(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s never became %s; last: %s %v reason %q", name, what, n.State, n.Flags, n.Reason)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func mustUpdate(t *testing.T, c Client, names []string, u NodeUpdate) {
	t.Helper()
	if err := c.Update(context.Background(), names, u); err != nil {
		t.Fatalf("Update(%v, %+v): %v", names, u, err)
	}
}

// scenario is one step of the table both backends run.
type scenario struct {
	name string
	run  func(t *testing.T, c *harness.Cluster, be backend)
}

var scenarios = []scenario{
	{"ping", func(t *testing.T, _ *harness.Cluster, be backend) {
		if err := be.client.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	}},
	{"list all", func(t *testing.T, _ *harness.Cluster, be backend) {
		nodes, err := be.client.Nodes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range nodes {
			names = append(names, n.Name)
			switch {
			case strings.HasPrefix(n.Name, "cloud"):
				if !n.Has(FlagCloud) || n.CPUs != 1 || n.RealMemoryMB != 500 || !slices.Contains(n.Partitions, "cloud") ||
					!slices.Equal(n.Features, []string{"gpu", "fast"}) {
					t.Errorf("cloud node: %+v", n)
				}
			case n.Name == "static1":
				if n.State != StateFuture || n.CPUs != 2 || n.RealMemoryMB != 1000 {
					t.Errorf("static1: %+v", n)
				}
			}
		}
		slices.Sort(names)
		if want := []string{"cloud1", "cloud2", "cloud3", "cloud4", "down1", "static1"}; !slices.Equal(names, want) {
			t.Errorf("nodes %v, want %v", names, want)
		}
	}},
	{"list named", func(t *testing.T, _ *harness.Cluster, be backend) {
		nodes, err := be.client.Nodes(context.Background(), be.b, "static1", be.a)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range nodes {
			names = append(names, n.Name)
		}
		if want := []string{be.b, "static1", be.a}; !slices.Equal(names, want) {
			t.Errorf("nodes %v, want %v", names, want)
		}
		if n := nodes[2]; n.State != StateIdle || !n.Has(FlagCloud) || !n.Has(FlagPoweredDown) || n.Addr != be.a || n.Hostname != be.a {
			t.Errorf("fresh cloud node: %+v", n)
		}
	}},
	{"unknown node", func(t *testing.T, _ *harness.Cluster, be backend) {
		nodes, err := be.client.Nodes(context.Background(), be.a, "nosuch7")
		if !errors.Is(err, ErrNodeNotFound) || !strings.Contains(err.Error(), "nosuch7") {
			t.Errorf("Nodes: err = %v, want ErrNodeNotFound naming nosuch7", err)
		}
		if len(nodes) != 1 || nodes[0].Name != be.a {
			t.Errorf("Nodes returned %+v, want %s", nodes, be.a)
		}
		err = be.client.Update(context.Background(), []string{"nosuch7"}, NodeUpdate{State: SetDown, Reason: "x"})
		if !errors.Is(err, ErrNodeNotFound) || !strings.Contains(err.Error(), "nosuch7") {
			t.Errorf("Update: err = %v, want ErrNodeNotFound naming nosuch7", err)
		}
	}},
	{"down with reason, resume", func(t *testing.T, _ *harness.Cluster, be backend) {
		reason := "slurm-elastic: (Code:Config) " + be.name + ": image x:1 not found [id=7]"
		mustUpdate(t, be.client, []string{be.a}, NodeUpdate{State: SetDown, Reason: reason})
		n := getNode(t, be.client, be.a)
		if n.State != StateDown || n.Reason != reason {
			t.Errorf("after DOWN: %s %v reason %q, want DOWN %q", n.State, n.Flags, n.Reason, reason)
		}
		mustUpdate(t, be.client, []string{be.a}, NodeUpdate{State: SetDown, Reason: reason}) // idempotent
		mustUpdate(t, be.client, []string{be.a}, NodeUpdate{State: SetResume})
		n = getNode(t, be.client, be.a)
		if n.Has(StateDown) || n.Has(FlagDrain) || !n.Has(FlagPoweredDown) {
			t.Errorf("after RESUME: %s %v", n.State, n.Flags)
		}
	}},
	{"drain, undrain", func(t *testing.T, _ *harness.Cluster, be backend) {
		mustUpdate(t, be.client, []string{be.a, be.b}, NodeUpdate{State: SetDrain, Reason: "slurm-elastic: health gpu3"})
		for _, name := range []string{be.a, be.b} {
			if n := getNode(t, be.client, name); !n.Has(FlagDrain) || n.Reason != "slurm-elastic: health gpu3" {
				t.Errorf("after DRAIN: %+v", n)
			}
		}
		mustUpdate(t, be.client, []string{be.a, be.b}, NodeUpdate{State: SetUndrain})
		for _, name := range []string{be.a, be.b} {
			if n := getNode(t, be.client, name); n.Has(FlagDrain) {
				t.Errorf("after UNDRAIN: %+v", n)
			}
		}
	}},
	{"address and hostname", func(t *testing.T, c *harness.Cluster, be backend) {
		addr, err := harness.SubnetHost(c.Subnet, 200+len(be.name))
		if err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, be.client, []string{be.a}, NodeUpdate{Addr: addr, Hostname: be.a + "-ct"})
		n := getNode(t, be.client, be.a)
		if n.Addr != addr || n.Hostname != be.a+"-ct" {
			t.Errorf("after address update: addr %q hostname %q", n.Addr, n.Hostname)
		}
		if n.State != StateIdle || !n.Has(FlagPoweredDown) {
			t.Errorf("address update changed the state: %s %v", n.State, n.Flags)
		}
		mustUpdate(t, be.client, []string{be.a}, NodeUpdate{Addr: be.a, Hostname: be.a})
		if n := getNode(t, be.client, be.a); n.Addr != be.a || n.Hostname != be.a {
			t.Errorf("after reset: addr %q hostname %q", n.Addr, n.Hostname)
		}
	}},
	{"power up, power down", func(t *testing.T, _ *harness.Cluster, be backend) {
		mustUpdate(t, be.client, []string{be.b}, NodeUpdate{State: SetPowerUp})
		eventually(t, be.client, be.b, "POWERING_UP", func(n Node) bool { return n.Has(FlagPoweringUp) })
		// POWER_DOWN on a node still powering up is queued ("!").
		mustUpdate(t, be.client, []string{be.b}, NodeUpdate{State: SetPowerDown})
		eventually(t, be.client, be.b, "POWER_DOWN pending", func(n Node) bool { return n.Has(FlagPowerDown) })
		// What resume-fail does: force it down now.
		mustUpdate(t, be.client, []string{be.b}, NodeUpdate{State: SetPowerDownForce, Reason: "slurm-elastic: resume failed"})
		n := eventually(t, be.client, be.b, "POWERED_DOWN", func(n Node) bool {
			return n.Has(FlagPoweredDown) && !n.Has(FlagPoweringUp) && !n.Has(FlagPoweringDown)
		})
		if n.State != StateIdle || n.Reason != "slurm-elastic: resume failed" {
			t.Errorf("after POWER_DOWN_FORCE: %s %v reason %q", n.State, n.Flags, n.Reason)
		}
	}},
}

func TestIntegrationBackends(t *testing.T) {
	c := needCluster(t)
	for _, be := range backends(t, c) {
		t.Run(be.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.run(t, c, be) })
			}
		})
	}
}

// A rotated token file is used by the next request, no restart needed.
func TestIntegrationTokenRotation(t *testing.T) {
	c := needCluster(t)
	if !restWorks(c) {
		t.Skipf("Slurm %s: no REST backend (TestIntegrationRESTParser)", c.Slurm)
	}
	tokFile := writeToken(t, c)
	r, err := NewREST(RESTOptions{URL: c.RESTURL, TokenFile: tokFile, User: "root"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Nodes(ctx, "cloud1"); err != nil {
		t.Fatal(err)
	}
	// A bad token in place of the good one: the next call must use it and fail.
	if err := os.WriteFile(tokFile+".new", []byte("not-a-jwt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tokFile+".new", tokFile); err != nil {
		t.Fatal(err)
	}
	// slurmrestd 24.11 passes the token on; slurmctld refuses it.
	_, err = r.Nodes(ctx, "cloud1")
	var re *RESTError
	if !errors.As(err, &re) || !(re.Status == 401 || re.hasErrno(slurmProtocolAuthError)) {
		t.Fatalf("with a bad token: err = %v, want an authentication error", err)
	}
	if strings.Contains(err.Error(), "not-a-jwt") {
		t.Errorf("error shows the token: %v", err)
	}
	// A new valid token: the same client works again.
	rotateToken(t, c, tokFile)
	if _, err := r.Nodes(ctx, "cloud1"); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
}

// An unreachable controller gives a clear error within the timeout.
func TestIntegrationUnreachable(t *testing.T) {
	c := needCluster(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr)
	l.Close()
	ctx := context.Background()

	t.Run("rest", func(t *testing.T) {
		r, err := NewREST(RESTOptions{URL: fmt.Sprintf("http://%s", closed), TokenFile: writeToken(t, c), Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range []func() error{
			func() error { return r.Ping(ctx) },
			func() error { _, err := r.Nodes(ctx, "cloud1"); return err },
			func() error { return r.Update(ctx, []string{"cloud1"}, NodeUpdate{State: SetResume}) },
		} {
			err := call()
			if err == nil || errors.Is(err, ErrNodeNotFound) || !strings.Contains(err.Error(), closed.String()) ||
				!strings.Contains(err.Error(), "connection refused") {
				t.Errorf("err = %v, want connection refused naming %s", err, closed)
			}
		}
	})
	t.Run("scontrol", func(t *testing.T) {
		// The host's scontrol with a slurm.conf whose controller port is closed.
		host, err := LookScontrol("scontrol")
		if err != nil {
			t.Fatalf("host scontrol (apt-get install slurm-client): %v", err)
		}
		confPath := filepath.Join(t.TempDir(), "slurm.conf")
		confText := fmt.Sprintf("ClusterName=unreach\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=%d\nAuthType=auth/none\nCredType=cred/none\nNodeName=cloud1 State=CLOUD\nPartitionName=p Nodes=cloud1\n", closed.Port)
		if err := os.WriteFile(confPath, []byte(confText), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := NewScontrol(ScontrolOptions{Path: host, Env: []string{"SLURM_CONF=" + confPath}, Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), "scontrol ping") {
			t.Errorf("ping: err = %v", err)
		}
		_, err = s.Nodes(ctx, "cloud1")
		if err == nil || errors.Is(err, ErrNodeNotFound) || !strings.Contains(err.Error(), "scontrol") {
			t.Errorf("nodes: err = %v, want a controller error", err)
		}
	})
}

// New picks the backend as configured.
func TestIntegrationNew(t *testing.T) {
	c := needCluster(t)
	ctx := context.Background()
	tokFile := writeToken(t, c)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	base := conf.SlurmConf{RESTURL: c.RESTURL, TokenFile: tokFile, User: "root", Scontrol: c.ScontrolWrapper(), Timeout: 5 * time.Second}

	check := func(backend string, mutate func(*conf.SlurmConf), wantREST bool) {
		t.Helper()
		cfg := base
		cfg.Backend = backend
		if mutate != nil {
			mutate(&cfg)
		}
		logBuf.Reset()
		cl, err := New(ctx, cfg, log)
		if err != nil {
			t.Fatalf("New(%s): %v", backend, err)
		}
		if _, isREST := cl.(*REST); isREST != wantREST {
			t.Errorf("New(%s) = %T", backend, cl)
		}
		if err := cl.Ping(ctx); err != nil {
			t.Errorf("New(%s): ping: %v", backend, err)
		}
		if !strings.Contains(logBuf.String(), "slurm backend") {
			t.Errorf("New(%s) logged no choice: %s", backend, logBuf.String())
		}
		if strings.Contains(logBuf.String(), "eyJ") {
			t.Errorf("log shows a token: %s", logBuf.String())
		}
	}
	if restWorks(c) {
		check("", nil, true)
		check("auto", nil, true)
		check("rest", nil, true)
	} else {
		check("auto", nil, false)
		if !strings.Contains(logBuf.String(), "no data parser with a node update") {
			t.Errorf("Slurm %s: auto's scontrol choice not logged with its reason: %s", c.Slurm, logBuf.String())
		}
		cfg := base
		cfg.Backend = "rest"
		if _, err := New(ctx, cfg, log); !errors.Is(err, ErrRESTUnsupported) || !strings.Contains(err.Error(), "slurm.backend rest") {
			t.Errorf("Slurm %s: New(rest) = %v; want ErrRESTUnsupported naming slurm.backend rest", c.Slurm, err)
		}
	}
	check("scontrol", nil, false)
	check("auto", func(c *conf.SlurmConf) { c.RESTURL = "" }, false)
	check("auto", func(c *conf.SlurmConf) { c.RESTURL = "http://127.0.0.1:1" }, false)
	if !strings.Contains(logBuf.String(), "slurmrestd unusable") {
		t.Errorf("fallback not logged as such: %s", logBuf.String())
	}
	if _, err := New(ctx, conf.SlurmConf{Backend: "carrier-pigeon"}, log); err == nil {
		t.Error("unknown backend accepted")
	}
}

// Slurm 24.11 takes equal-length NodeName/NodeAddr/NodeHostName lists and
// pairs them by position, in the order given (not sorted): the scontrol
// backend's address batches rely on it. A batch with an unknown node fails
// as a whole and falls back to one update per node.
func TestIntegrationScontrolAddrBatch(t *testing.T) {
	c := needCluster(t)
	s, err := NewScontrol(ScontrolOptions{Path: c.ScontrolWrapper(), Timeout: 20 * time.Second, AddrBatchWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i int) string {
		a, err := harness.SubnetHost(c.Subnet, i)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	want := func(name, addr, host string) {
		t.Helper()
		if n := getNode(t, s, name); n.Addr != addr || n.Hostname != host {
			t.Errorf("%s: addr %q hostname %q, want %q %q", name, n.Addr, n.Hostname, addr, host)
		}
	}
	t.Cleanup(func() {
		for _, n := range []string{"cloud3", "cloud4"} {
			if err := s.Update(context.Background(), []string{n}, NodeUpdate{Addr: n, Hostname: n}); err != nil {
				t.Errorf("reset %s: %v", n, err)
			}
		}
	})

	// Out of order, as a batch is when cloud4 starts first.
	batch := []*addrReq{
		{name: "cloud4", addr: addr(224), host: "cloud4-b", done: make(chan error, 1)},
		{name: "cloud3", addr: addr(223), host: "cloud3-b", done: make(chan error, 1)},
	}
	s.batch.run(batch)
	for _, r := range batch {
		if err := <-r.done; err != nil {
			t.Fatalf("batched update: %v", err)
		}
	}
	want("cloud4", addr(224), "cloud4-b")
	want("cloud3", addr(223), "cloud3-b")

	// Through Update, concurrently: one batch.
	var wg sync.WaitGroup
	for i, n := range []string{"cloud3", "cloud4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Update(context.Background(), []string{n}, NodeUpdate{Addr: addr(233 + i), Hostname: n + "-c"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	want("cloud3", addr(233), "cloud3-c")
	want("cloud4", addr(234), "cloud4-c")
	if s.batch.runs != 2 || s.batch.failures != 0 {
		t.Errorf("batched runs %d, failed %d; want 2 and 0", s.batch.runs, s.batch.failures)
	}

	// An unknown node fails the batch; its neighbour is still set.
	errs := make([]error, 2)
	for i, n := range []string{"nosuch9", "cloud3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(context.Background(), []string{n}, NodeUpdate{Addr: addr(243 + i), Hostname: n + "-d"})
		}()
	}
	wg.Wait()
	if !errors.Is(errs[0], ErrNodeNotFound) || !strings.Contains(errs[0].Error(), "nosuch9") {
		t.Errorf("nosuch9: err = %v, want ErrNodeNotFound", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("cloud3 beside an unknown node: %v", errs[1])
	}
	want("cloud3", addr(244), "cloud3-d")
	if s.batch.runs != 3 || s.batch.failures != 1 {
		t.Errorf("batched runs %d, failed %d; want 3 and 1", s.batch.runs, s.batch.failures)
	}
}
