package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/hostdeps"
)

// probeEnv makes the test binary act as a tiny Podman API client (TestMain): the smoke test
// copies it into BinDir and runs it in head as the slurm user, a real API call over
// /run/podman/podman.sock without curl in the image.
const probeEnv = "SE_HARNESS_PROBE"

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) == "podman-ps" {
		os.Exit(podmanProbe())
	}
	os.Exit(m.Run())
}

// podmanProbe pings the Podman API at PodmanSocketInHead and prints the names of all
// containers, one a line.
func podmanProbe() int {
	hc := unixClient(PodmanSocketInHead)
	resp, err := hc.Get("http://d/v4.0.0/libpod/_ping")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ping:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "ping:", resp.Status)
		return 1
	}
	resp, err = hc.Get("http://d/v4.0.0/libpod/containers/json?all=true")
	if err != nil {
		fmt.Fprintln(os.Stderr, "list:", err)
		return 1
	}
	defer resp.Body.Close()
	var list []struct{ Names []string }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "list:", resp.Status, err)
		return 1
	}
	for _, c := range list {
		fmt.Println(strings.Join(c.Names, ","))
	}
	return 0
}

// requireTools fails (never skips) when a host tool of the one list (tests/hostdeps, what
// `make deps` installs) is missing, naming each tool and its Debian package.
func requireTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the test cluster harness needs root (podman rootful, ip route, debootstrap)")
	}
	if err := hostdeps.Require("/"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(initPath()); err != nil {
		t.Fatalf("%s not found: install the Debian package catatonit", initPath())
	}
}

// TestSmoke starts a cluster with one static node container started here with the podman
// CLI, runs jobs on it, pings slurmrestd over loopback, shows that the non-root SlurmUser
// reaches the Podman API, and checks that Stop leaves nothing behind.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster in Podman: not run with -short")
	}
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	logw := t.Output()

	// Image: the first call may build (cold), the second is the cached fast path.
	t0 := time.Now()
	ref, err := BuildImage(ctx, "", logw)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(t0)
	t0 = time.Now()
	if ref2, err := BuildImage(ctx, "", logw); err != nil || ref2 != ref {
		t.Fatalf("second BuildImage: %q, %v; want %q", ref2, err, ref)
	}
	t.Logf("MEASURE image: first BuildImage %s, cached BuildImage %s (%s)", first.Round(time.Millisecond),
		time.Since(t0).Round(time.Millisecond), ref)

	// The probe: this test binary, run in head as slurm.
	binDir := t.TempDir()
	if err := os.Chmod(binDir, 0o755); err != nil { // the mount's root keeps these bits in head
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, self, filepath.Join(binDir, "se-probe"), 0o755)

	name := "se-harness-smoke"
	subnet, err := FreeSubnet(name)
	if err != nil {
		t.Fatal(err)
	}
	nodeIP, _ := SubnetHost(subnet, 10)
	t0 = time.Now()
	c, err := Start(ctx, Options{
		Name:   name,
		Subnet: subnet,
		BinDir: binDir,
		Config: "# smoke test config\nlog: /var/log/slurm-elastic/hooks.log\n",
		SlurmConf: "NodeName=static1 NodeAddr=" + nodeIP + " CPUs=1 RealMemory=500 State=UNKNOWN\n" +
			"PartitionName=static Nodes=static1 Default=YES MaxTime=INFINITE State=UP\n",
		Log: logw,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE Start: %s", time.Since(t0).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if stopped {
			return
		}
		if t.Failed() {
			t.Logf("diagnostics:\n%s", c.Diagnostics(context.Background()))
		}
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})

	// Static node container, started with the podman CLI on the private store.
	node := name + "-static1"
	t0 = time.Now()
	if _, err := c.Podman(ctx, "run", "-d", "--pull=never", "--name", node, "--hostname", "static1",
		"--network", c.Network, "--ip", nodeIP, "--dns", "none",
		"--label", LabelCluster+"="+name,
		"--env", "SLURM_ELASTIC_NODE=static1", "--env", "SLURM_CONF_SERVER="+c.HeadIP,
		"--volume", c.MungeKey+":"+MungeKeyInNode+":ro", c.Image); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "static1 idle", 3*time.Minute, func() (bool, string, error) {
		out, err := c.Exec(ctx, "sinfo", "-h", "-n", "static1", "-o", "%T")
		if err != nil {
			return false, err.Error(), nil
		}
		return strings.TrimSpace(out) == "idle", out, nil
	})
	t.Logf("MEASURE node container start -> idle: %s", time.Since(t0).Round(time.Millisecond))

	// srun from head.
	t0 = time.Now()
	out, err := c.Exec(ctx, "srun", "-w", "static1", "hostname")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "static1" {
		t.Fatalf("srun -w static1 hostname printed %q, want static1", out)
	}
	t.Logf("MEASURE srun -w static1 hostname: %s wall", time.Since(t0).Round(time.Millisecond))

	// sbatch: output lands on the node.
	t0 = time.Now()
	out, err = c.Exec(ctx, "sbatch", "--parsable", "-w", "static1", "-o", "/tmp/job-%j.out", "--wrap", "hostname")
	if err != nil {
		t.Fatal(err)
	}
	jobID := strings.TrimSpace(strings.Split(out, ";")[0])
	var started time.Duration
	var job string
	waitFor(ctx, t, "job "+jobID+" completed", 3*time.Minute, func() (bool, string, error) {
		out, err := c.Exec(ctx, "scontrol", "show", "job", jobID)
		if err != nil {
			return false, err.Error(), nil
		}
		job = out
		switch st := field(out, "JobState"); st {
		case "RUNNING", "COMPLETING", "COMPLETED":
			if started == 0 {
				started = time.Since(t0)
			}
			return st == "COMPLETED", st, nil
		case "PENDING", "CONFIGURING":
			return false, st, nil
		default:
			return false, out, fmt.Errorf("job %s is %s", jobID, st)
		}
	})
	t.Logf("MEASURE sbatch -> seen running: %s, -> completed: %s (24.11, idle static node); Slurm: SubmitTime=%s StartTime=%s EndTime=%s",
		started.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond),
		field(job, "SubmitTime"), field(job, "StartTime"), field(job, "EndTime"))
	if out, err = c.Podman(ctx, "exec", node, "cat", "/tmp/job-"+jobID+".out"); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "static1" {
		t.Fatalf("batch job output %q, want static1", out)
	}

	// REST over loopback with Go's net/http.
	if !strings.HasPrefix(c.RESTURL, "http://127.0.0.1:") {
		t.Fatalf("RESTURL %s is not on loopback", c.RESTURL)
	}
	tok, err := c.Token(ctx, "root", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ping struct {
		Pings []struct {
			Hostname string `json:"hostname"`
			Pinged   string `json:"pinged"`
		} `json:"pings"`
	}
	restGet(ctx, t, c.RESTURL+"/slurm/v0.0.42/ping", tok, &ping)
	if len(ping.Pings) == 0 || ping.Pings[0].Pinged != "UP" {
		t.Fatalf("REST ping: %+v, want one controller UP", ping)
	}
	var nodes struct {
		Nodes []struct {
			Name  string   `json:"name"`
			State []string `json:"state"`
		} `json:"nodes"`
	}
	restGet(ctx, t, c.RESTURL+"/slurm/v0.0.42/nodes", tok, &nodes)
	if len(nodes.Nodes) != 1 || nodes.Nodes[0].Name != "static1" {
		t.Fatalf("REST nodes: %+v, want static1", nodes)
	}
	// A bad token is refused (/ping would answer 200 with "pinged": "DOWN").
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.RESTURL+"/slurm/v0.0.42/nodes", nil)
	req.Header.Set("X-SLURM-USER-NAME", "root")
	req.Header.Set("X-SLURM-USER-TOKEN", "not-a-token")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("REST nodes with a bad token answered 200")
		}
	}
	// slurmrestd is published on loopback only.
	out, err = c.Podman(ctx, "port", c.Head)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != fmt.Sprintf("6820/tcp -> 127.0.0.1:%d", c.RESTPort) {
		t.Fatalf("head publishes %q, want only 6820/tcp on 127.0.0.1:%d", out, c.RESTPort)
	}

	// No name server: lookups /etc/hosts cannot answer stay inside the container.
	if out, err = c.Exec(ctx, "cat", "/etc/resolv.conf"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("head /etc/resolv.conf: %q %v, want empty", out, err)
	}

	// The daemons do not run as root.
	for daemon, user := range map[string]string{"slurmctld": "slurm", "slurmrestd": "slurmrestd", "munged": "munge"} {
		out, err := c.Exec(ctx, "ps", "-o", "user=", "-C", daemon)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(out); len(got) == 0 || got[0] != user {
			t.Fatalf("%s runs as %q, want %s", daemon, out, user)
		}
	}
	// config.yaml and the files WriteFileInHead writes.
	if out, err = c.Exec(ctx, "stat", "-c", "%a %U %G", ConfigInHead); err != nil || strings.TrimSpace(out) != "640 root slurm" {
		t.Fatalf("%s: %q %v, want 640 root slurm", ConfigInHead, out, err)
	}
	if err := c.WriteFileInHead(ctx, "/etc/slurm-elastic/extra/token", []byte("secret\n"), 0o600, "slurm:slurm"); err != nil {
		t.Fatal(err)
	}
	if out, err = c.ExecAs(ctx, "slurm", "cat", "/etc/slurm-elastic/extra/token"); err != nil || out != "secret\n" {
		t.Fatalf("file written in head: %q %v", out, err)
	}
	if out, err = c.Exec(ctx, "stat", "-c", "%a %U %G", "/etc/slurm-elastic/extra/token"); err != nil || strings.TrimSpace(out) != "600 slurm slurm" {
		t.Fatalf("file written in head: %q %v, want 600 slurm slurm", out, err)
	}
	// Hook logs: writable by slurm in head, visible on the host.
	if _, err := c.ExecAs(ctx, "slurm", "touch", LogDirInHead+"/probe.log"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.LogDir, "probe.log")); err != nil {
		t.Fatalf("hook log dir: %v", err)
	}

	// The non-root SlurmUser reaches Podman through the socket's group ...
	if _, err := c.ExecAs(ctx, "slurm", "test", "-w", PodmanSocketInHead); err != nil {
		t.Fatalf("slurm cannot write %s: %v", PodmanSocketInHead, err)
	}
	out, err = c.ExecAs(ctx, "slurm", "env", probeEnv+"=podman-ps", BinDirInHead+"/se-probe")
	if err != nil {
		t.Fatalf("Podman API call as slurm: %v", err)
	}
	if !strings.Contains(out, node) || !strings.Contains(out, c.Head) {
		t.Fatalf("Podman API as slurm lists %q, want %s and %s", out, c.Head, node)
	}
	// ... and a user outside that group does not.
	if _, err := c.ExecAs(ctx, "slurmrestd", "env", probeEnv+"=podman-ps", BinDirInHead+"/se-probe"); err == nil {
		t.Fatal("user slurmrestd reached the Podman socket; want it refused (socket is root:slurm 0660)")
	}

	// The scontrol wrapper on the host.
	w := exec.CommandContext(ctx, c.ScontrolWrapper(), "show", "node", "static1")
	w.Env = []string{"PATH=/usr/bin:/bin"} // a hook-like, almost empty environment
	if out, err := w.CombinedOutput(); err != nil || !strings.Contains(string(out), "NodeName=static1") {
		t.Fatalf("scontrol wrapper: %s %v", out, err)
	}

	// Stop leaves nothing.
	ids, err := c.Podman(ctx, "ps", "-a", "--format", "{{.ID}}", "--no-trunc")
	if err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	t.Logf("MEASURE Stop: %s", time.Since(t0).Round(time.Millisecond))
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	checkGone(ctx, t, c, strings.Fields(ids))
}

// checkGone asserts that no container, network, bridge, process or directory of c is left.
func checkGone(ctx context.Context, t *testing.T, c *Cluster, ids []string) {
	t.Helper()
	if len(ids) < 2 {
		t.Fatalf("want head and node container ids, got %q", ids)
	}
	st, err := buildStore()
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.run(ctx, nil, "ps", "-a", "--external", "--no-trunc", "--format", "{{.ID}}")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if strings.Contains(out, id) {
			t.Errorf("container %s still in the shared storage", id)
		}
		if _, err := os.Stat(filepath.Join("/run/runc", id)); err == nil {
			t.Errorf("runc state of container %s is left", id)
		}
	}
	for _, p := range []string{c.StateDir, c.RunDir, "/sys/class/net/" + c.Bridge} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left", p)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		s := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		hit := strings.Contains(s, c.RunDir+"/") || strings.Contains(s, c.StateDir+"/")
		for _, id := range ids {
			hit = hit || strings.Contains(s, id)
		}
		if hit {
			t.Errorf("process %s is left: %s", filepath.Dir(p), s)
		}
	}
	for _, table := range []string{"filter", "nat"} {
		out, err := exec.CommandContext(ctx, "iptables", "-t", table, "-S").Output()
		if err != nil {
			t.Fatalf("iptables -t %s -S: %v", table, err)
		}
		if strings.Contains(string(out), c.Subnet) {
			t.Errorf("iptables %s rules for %s are left", table, c.Subnet)
		}
	}
	if out, err := exec.CommandContext(ctx, "ip", "-o", "-4", "route", "show", c.Subnet).Output(); err == nil &&
		strings.Contains(string(out), " dev ") {
		t.Errorf("a route to %s through a device is left: %s", c.Subnet, out)
	}
}

// waitFor polls f until it reports done, fails the test when f returns an error (a state
// that cannot become done) or when limit passes (a bound against hangs, not a timing check).
func waitFor(ctx context.Context, t *testing.T, what string, limit time.Duration, f func() (done bool, last string, fatal error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		ok, last, err := f()
		if ok {
			return
		}
		if err != nil {
			t.Fatalf("waiting for %s: %v\n%s", what, err, last)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last: %q)", what, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func restGet(ctx context.Context, t *testing.T, url, tok string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-SLURM-USER-NAME", "root")
	req.Header.Set("X-SLURM-USER-TOKEN", tok)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			if host != "127.0.0.1" { // network-safety rule: loopback only
				return nil, fmt.Errorf("refusing to dial %s", addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

func field(scontrolOut, key string) string {
	for _, f := range strings.Fields(scontrolOut) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
