package kube

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
	"github.com/slurm-elastic/slurm-elastic/tests/hostdeps"
)

func TestUnits(t *testing.T) {
	for _, n := range []string{"a", "se-kube-t", "x1-2"} {
		if !nameRE.MatchString(n) {
			t.Errorf("name %q refused", n)
		}
	}
	for _, n := range []string{"", "1a", "A", "a/b", "a..", "abcdefghijklmnopqrstu"} {
		if nameRE.MatchString(n) {
			t.Errorf("name %q accepted", n)
		}
	}
	if got := bridgeName("se-kube-t"); len(got) > 15 || !strings.HasPrefix(got, "sk") {
		t.Errorf("bridge name %q", got)
	}
	m := goMod()
	for _, s := range []string{"require k8s.io/kubernetes " + Version, "replace k8s.io/client-go => k8s.io/client-go v0.34.4",
		"replace k8s.io/sample-apiserver => k8s.io/sample-apiserver v0.34.4"} {
		if !strings.Contains(m, s) {
			t.Errorf("go.mod lacks %q:\n%s", s, m)
		}
	}
	if ld := ldflags(); !strings.Contains(ld, "k8s.io/component-base/version.gitVersion="+Version) ||
		!strings.Contains(ld, "k8s.io/client-go/pkg/version.gitMinor=34") {
		t.Errorf("ldflags %q", ld)
	}
	if m := cniResultRE.FindStringSubmatch("se-kube-a-b-" + strings.Repeat("0f", 32) + "-eth0"); m == nil || m[1] != netName("a-b") || m[1] == netName("a") {
		t.Errorf("libcni result name parsed as %q", m)
	}
	if ownedBy(os.Getpid(), "/var/lib/slurm-elastic-test/kube/zz") {
		t.Error("the test process counts as a cluster process")
	}
}

// TestCluster starts a real cluster, imports the Slurm node image, runs a pod from it,
// reaches the pod's IP from the host over TCP, deletes the pod, starts the cluster again
// over the running one (a crashed run's leftover, with a pod running), and checks that
// Stop leaves nothing behind. Name: $SE_KUBE_NAME, default se-kube-t.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Kubernetes (minutes when cold) and starts a cluster: not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root")
	}
	if err := hostdeps.Require("/", tools...); err != nil {
		t.Fatal(err)
	}
	name := os.Getenv(EnvName)
	if name == "" {
		name = "se-kube-t"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	logw := t.Output()

	t0 := time.Now()
	if _, err := Binaries(ctx, logw); err != nil {
		t.Fatal(err)
	}
	t.Logf("figure: binaries ready in %s", time.Since(t0).Round(time.Millisecond))
	ref, err := harness.BuildImage(ctx, "", logw)
	if err != nil {
		t.Fatal(err)
	}

	before := sharedEntries()
	t0 = time.Now()
	c, err := Start(ctx, Options{Name: name, Log: logw})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figure: start to schedulable %s", time.Since(t0).Round(time.Millisecond))
	stopped := false
	defer func() {
		if !stopped {
			c.Stop(context.WithoutCancel(ctx))
		}
	}()
	if c.Bridge != bridgeName(name) || !linkExists(c.Bridge) || !hasGuardRoute(c.Subnet) {
		t.Fatalf("bridge %s or guard route %s missing", c.Bridge, c.Subnet)
	}
	hc, err := c.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	var ver struct{ GitVersion string }
	if err := c.getJSON(ctx, hc, "/version", &ver); err != nil || ver.GitVersion != Version {
		t.Fatalf("API server version %q (%v), want %s", ver.GitVersion, err, Version)
	}

	t0 = time.Now()
	if err := c.ImportImage(ctx, ref); err != nil {
		t.Fatal(err)
	}
	t.Logf("figure: import %s %s", ref, time.Since(t0).Round(time.Millisecond))

	// A pod from the node image that answers on TCP 7777.
	t0 = time.Now()
	ip := runPod(ctx, t, c, hc, "probe", ref)
	t.Logf("figure: pod create to Running %s", time.Since(t0).Round(time.Millisecond))
	sub := netip.MustParsePrefix(c.Subnet)
	if a, err := netip.ParseAddr(ip); err != nil || !sub.Contains(a) {
		t.Fatalf("pod IP %q not in the pod subnet %s", ip, c.Subnet)
	}
	if got := dialPod(ctx, t, ip); got != "se-kube-ok" {
		t.Fatalf("pod %s:7777 answered %q", ip, got)
	}
	// Logs (like exec) go API server → kubelet at the node's InternalIP.
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.APIURL+"/api/v1/namespaces/default/pods/probe/log", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("pod log: %s: %s", resp.Status, b)
		}
		if strings.Contains(string(b), "se-kube-log se-kube-ok") {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			t.Fatalf("pod log %q lacks the pod's line: %v", b, err)
		}
	}
	if len(cgroupProcs(cgroupName(name))) == 0 {
		t.Fatal("no process in the kubelet's cgroup root while a pod runs: Leftovers could not see pods")
	}
	t0 = time.Now()
	deletePod(ctx, t, c, hc, "probe")
	t.Logf("figure: pod delete to gone %s", time.Since(t0).Round(time.Millisecond))

	// A leftover with a running pod: Start over it removes it first.
	// Network rule: pods have no default route (192.0.2.1 is TEST-NET-1, never routed).
	orphan := runPodScript(ctx, t, c, hc, "orphan", ref, `$h = IO::Socket::INET->new(PeerAddr => "192.0.2.1", `+
		`PeerPort => 9, Timeout => 3); $r = $h ? "default-route" : "no-route: $!";`)
	if got := dialPod(ctx, t, orphan); got != "no-route: Network is unreachable" {
		t.Fatalf("a pod connecting outside its routes: %q, want no-route: Network is unreachable", got)
	}
	if len(c.Leftovers()) == 0 {
		t.Fatal("Leftovers is empty while the cluster runs")
	}
	old := clusterProcs(c.StateDir, c.RunDir)
	oldPods := cgroupProcs(cgroupName(name))
	t0 = time.Now()
	c2, err := Start(ctx, Options{Name: name, Log: logw})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figure: remove a running leftover + start again %s", time.Since(t0).Round(time.Millisecond))
	c = c2
	for _, pid := range append(old, oldPods...) {
		if harness.ProcessAlive(pid) && !ownedBy(pid, c.StateDir, c.RunDir) {
			t.Errorf("process %d of the first run survived the second Start", pid)
		}
	}
	if hc, err = c.HTTPClient(); err != nil {
		t.Fatal(err)
	}
	if err := c.getJSON(ctx, hc, "/api/v1/namespaces/default/pods/orphan", &struct{}{}); err == nil {
		t.Fatal("the second Start kept the first run's pod (etcd not fresh)")
	}

	t0 = time.Now()
	stopped = true
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("figure: Stop %s", time.Since(t0).Round(time.Millisecond))
	if l := c.Leftovers(); len(l) > 0 {
		t.Fatalf("left after Stop: %s", strings.Join(l, "; "))
	}
	for _, e := range sharedEntries() {
		if !slices.Contains(before, e) && !ownedByOthers(e, name) {
			t.Errorf("left after Stop in a shared directory: %s", e)
		}
	}
	if err := Remove(ctx, name, logw); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

// ownedByOthers reports whether entry of a shared directory belongs to another cluster
// of this package that runs now (other tests or helpers may run one beside this test).
func ownedByOthers(entry, self string) bool {
	runs, _ := filepath.Glob(filepath.Join(runRoot, "kube-*"))
	for _, r := range runs {
		other := strings.TrimPrefix(filepath.Base(r), "kube-")
		if other == self || !nameRE.MatchString(other) {
			continue
		}
		state, run := paths(other)
		if slices.Contains(sharedDirs, entry) || strings.HasPrefix(entry, sharedKubeletDir+"/") {
			return true // a shared directory itself, or "the" kubelet's socket and checkpoint
		}
		if slices.Contains(shimAddresses(run), entry) || slices.Contains(cniResults(other), entry) ||
			slices.Contains(linksInto("/var/log/containers", filepath.Join(state, "pod-logs")+"/"), entry) {
			return true
		}
		for _, id := range sandboxIDs(state, run) {
			if entry == filepath.Join("/var/lib/cni/results", "cni-loopback-"+id+"-lo") {
				return true
			}
		}
	}
	return false
}

// sharedEntries lists the shared directories (sharedDirs) that exist and their entries.
func sharedEntries() []string {
	var out []string
	for _, d := range sharedDirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		out = append(out, d)
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	return out
}

// TestHeadReachesPods starts a Podman harness cluster (the Slurm head) and a Kubernetes
// cluster whose pods get a route to the harness's network, runs a pod that connects to
// slurmctld's port on the head, and reads that pod's answer from the head by pod IP: both
// directions between the Podman network and the CNI bridge. Names: $SE_KUBE_NAME-x (Kubernetes)
// and $SE_KUBE_NAME-hc (harness).
func TestHeadReachesPods(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster in Podman and a Kubernetes cluster: not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root")
	}
	if err := hostdeps.Require("/", tools...); err != nil {
		t.Fatal(err)
	}
	name := os.Getenv(EnvName)
	if name == "" {
		name = "se-kube-t"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	logw := t.Output()
	hcl, err := harness.Start(ctx, harness.Options{Name: name + "-hc", Log: logw})
	if err != nil {
		t.Fatal(err)
	}
	defer hcl.Stop(context.WithoutCancel(ctx))
	c, err := Start(ctx, Options{Name: name + "-x", PodRoutes: []string{hcl.Subnet}, APIOnGateway: true, Log: logw})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.WithoutCancel(ctx))
	if err := c.ImportImage(ctx, hcl.Image); err != nil {
		t.Fatal(err)
	}
	hc, err := c.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	prelude := fmt.Sprintf(`$h = IO::Socket::INET->new(PeerAddr => "%s", PeerPort => 6817, Timeout => 10); `+
		`$r = $h ? "head-ok" : "head-unreachable: $!"; close $h if $h; $p = 1;`, hcl.HeadIP)
	ip := runPodScript(ctx, t, c, hc, "reach", hcl.Image, prelude)
	var out string
	for ctx.Err() == nil { // until perl listens
		out, err = hcl.Exec(ctx, "bash", "-c", `exec 3<>"/dev/tcp/$0/7777" && head -n1 <&3`, ip)
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("head %s cannot reach pod %s:7777: %v", hcl.HeadIP, ip, err)
	}
	// The pod answers whether it reached slurmctld, and whom the head's connection came
	// from: the head's own address (PodRoutes keeps the source; not masqueraded).
	if got := strings.TrimSpace(out); got != "head-ok from "+hcl.HeadIP {
		t.Fatalf("pod %s reaching slurmctld on head %s:6817, and the head's connection as the pod saw it: %q, want %q",
			ip, hcl.HeadIP, got, "head-ok from "+hcl.HeadIP)
	}
	// APIOnGateway: the head reaches the API server (TCP; the hooks' TLS is
	// runtime/kubernetes's and tests/kubee2e's).
	api, err := url.Parse(c.APIURL)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := hcl.Exec(ctx, "bash", "-c", `exec 3<>"/dev/tcp/$0/$1"`, api.Hostname(), api.Port()); err != nil {
		t.Fatalf("head cannot reach the API server at %s: %v %s", c.APIURL, err, out)
	}
	t.Logf("head %s (Podman network %s) and pod %s (CNI bridge %s) reach each other", hcl.HeadIP, hcl.Subnet, ip, c.Subnet)
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if l := c.Leftovers(); len(l) > 0 {
		t.Fatalf("left after Stop: %s", strings.Join(l, "; "))
	}
}

// runPod creates pod name (the image's perl answers "se-kube-ok" on TCP 7777) and waits
// until it runs with an IP, which it returns.
func runPod(ctx context.Context, t *testing.T, c *Cluster, hc *http.Client, name, image string) string {
	t.Helper()
	return runPodScript(ctx, t, c, hc, name, image, `$r = "se-kube-ok";`)
}

// runPodScript runs pod name whose perl runs prelude, then answers $r on TCP 7777.
func runPodScript(ctx context.Context, t *testing.T, c *Cluster, hc *http.Client, name, image, prelude string) string {
	t.Helper()
	script := prelude + ` $| = 1; print "se-kube-log $r\n"; $s = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => 7777, Listen => 5, ReuseAddr => 1) or die "listen: $!"; ` +
		`while ($c = $s->accept) { print $c ($p ? "$r from " . $c->peerhost : $r) . "\n"; close $c }`
	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec": map[string]any{
			"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "enableServiceLinks": false,
			"containers": []any{map[string]any{
				"name": "node", "image": image, "imagePullPolicy": "Never",
				"command": []string{"perl", "-MIO::Socket::INET", "-e", script},
			}},
		},
	}
	b, _ := json.Marshal(pod)
	req, _ := http.NewRequestWithContext(ctx, "POST", c.APIURL+"/api/v1/namespaces/default/pods", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create pod %s: %s: %s", name, resp.Status, body)
	}
	for {
		var p struct {
			Status struct {
				Phase, PodIP, Reason, Message string
				ContainerStatuses             []json.RawMessage
			}
		}
		if err := c.getJSON(ctx, hc, "/api/v1/namespaces/default/pods/"+name, &p); err != nil {
			t.Fatal(err)
		}
		switch {
		case p.Status.Phase == "Running" && p.Status.PodIP != "":
			return p.Status.PodIP
		case p.Status.Phase == "Failed" || p.Status.Phase == "Succeeded":
			t.Fatalf("pod %s ended: %+v%s", name, p.Status, c.logTails())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod %s never ran: %+v%s", name, p.Status, c.logTails())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dialPod reads the first line pod ip serves on TCP 7777 (retrying until perl listens).
func dialPod(ctx context.Context, t *testing.T, ip string) string {
	t.Helper()
	var lastErr error
	for ctx.Err() == nil {
		d := net.Dialer{Timeout: 2 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, "7777"))
		if err == nil {
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if err == nil {
				return strings.TrimSpace(line)
			}
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("dial pod %s:7777: %v", ip, lastErr)
	return ""
}

// deletePod deletes pod name and waits until the API no longer has it.
func deletePod(ctx context.Context, t *testing.T, c *Cluster, hc *http.Client, name string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "DELETE", c.APIURL+"/api/v1/namespaces/default/pods/"+name, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("delete pod %s: %s", name, resp.Status)
	}
	for {
		err := c.getJSON(ctx, hc, "/api/v1/namespaces/default/pods/"+name, &struct{}{})
		if err != nil && strings.Contains(err.Error(), "404") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod %s still there: %v", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
