// Package kube gives tests a real single-node Kubernetes on this machine: Kubernetes
// (Version, built once from the Go module proxy and cached), etcd and containerd from
// Debian, openssl certificates, a CNI bridge on its own /24. Start brings a named cluster
// up and waits until pods can be scheduled; Stop removes everything it made. Root only.
// See README.md.
package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
	"github.com/slurm-elastic/slurm-elastic/tests/hostdeps"
)

// Where clusters live: state (certs, etcd, kubelet, containerd root, logs) under
// libRoot/<name>, runtime state (containerd state and socket, runc root, pid files, the
// subnet claim) under runRoot/kube-<name> (a directory the Podman harness reads subnet
// claims from), built binaries under cacheRoot.
const (
	cacheRoot = "/var/cache/slurm-elastic-test/kube"
	libRoot   = "/var/lib/slurm-elastic-test/kube"
	runRoot   = "/run/slurm-elastic-test"
)

// ServiceCIDR is the cluster's Service range. There is no kube-proxy: Service IPs lead
// nowhere (pods have no default route), use pod IPs.
const ServiceCIDR = "10.96.0.0/24"

// EnvName names the environment variable the tests read the cluster name from
// (default "se-kube-t").
const EnvName = "SE_KUBE_NAME"

// Options configures Start.
type Options struct {
	// Name of the cluster: 1-20 of [a-z0-9-], starting with a letter. Everything the
	// cluster makes carries it; a leftover of an earlier run of the same name is removed.
	Name string
	// Subnet is the pods' /24 inside 10.222.0.0/16 (default: harness.FreeSubnet).
	Subnet string
	// PodRoutes are further networks (e.g. a harness cluster's Podman network, its
	// Subnet: a Slurm head) that pods and that network reach each other on by their own
	// addresses: pods get a route to each through the bridge's gateway (they have no
	// default route), and the host forwards that network's traffic to pods with its
	// source address kept (harness.KeepSource: not masqueraded as netavark would), as the
	// operations guide asks of a head and its node pods. Remove undoes both.
	PodRoutes []string
	// APIOnGateway makes the API server listen on Gateway (the node's address, on the
	// pods' bridge) instead of 127.0.0.1: where a Slurm head in a Podman container (a
	// harness cluster, whose own loopback is not the host's) reaches it, as it reaches a
	// real cluster's API server on a node address. APIURL and every kubeconfig then name
	// Gateway. Pods reach it there too (a real cluster's pods reach theirs).
	APIOnGateway bool
	// Log receives progress lines (nil: discarded).
	Log io.Writer
}

// Cluster is a running cluster. Its fields are facts for tests and are not changed.
type Cluster struct {
	Name       string
	NodeName   string   // the one node: Name
	APIURL     string   // https://127.0.0.1:PORT (https://Gateway:PORT with Options.APIOnGateway)
	Kubeconfig string   // admin (system:masters) kubeconfig with file paths
	CAFile     string   // the cluster CA (API server and kubelet serving certificates)
	CertFile   string   // admin client certificate
	KeyFile    string   // its key
	Subnet     string   // the pods' /24
	Gateway    string   // the bridge's address in Subnet (.1): the host as pods see it
	Bridge     string   // the CNI bridge's interface name
	PodRoutes  []string // Options.PodRoutes
	StateDir   string   // libRoot/<Name>
	RunDir     string   // /run/slurm-elastic-test/kube-<Name>
	Socket     string   // containerd's socket
	LogDir     string   // one <daemon>.log per daemon

	log io.Writer
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// tools are the host tools Start needs (tests/hostdeps/debian12.txt).
var tools = []string{"containerd", "ctr", "etcd", "openssl", "ip", "runc",
	"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"}

// paths returns the directories of cluster name.
func paths(name string) (state, run string) {
	return filepath.Join(libRoot, name), filepath.Join(runRoot, "kube-"+name)
}

// bridgeName is the CNI bridge of cluster name (≤ 15 characters, unlike the harness's "se…").
func bridgeName(name string) string { return "sk" + shortHash(name) }

// netName is the CNI network name (names libcni's cache files).
func netName(name string) string { return "se-kube-" + name }

// cgroupName is the kubelet's cgroupRoot: pods' cgroups live below it in every hierarchy.
func cgroupName(name string) string { return "se-kube-" + name }

// ports of the daemons, all on 127.0.0.1.
type ports struct {
	EtcdClient, EtcdPeer, API, Kubelet, ControllerManager, Scheduler int
}

// Start brings cluster o.Name up: removes a leftover of the same name, builds or reuses
// the binaries (Binaries: minutes when cold), makes certificates, claims the subnet (the
// unreachable route first, then the bridge), starts etcd, kube-apiserver, then
// kube-controller-manager and kube-scheduler, containerd (pause image imported) and the
// kubelet, and waits until the node is Ready without taints and the default ServiceAccount
// exists. It blocks (about 10-20 s warm). The daemons outlive the calling process; Stop or
// Remove ends them. On error it removes what it made.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if !nameRE.MatchString(o.Name) {
		return nil, fmt.Errorf("kube: cluster name %q: want 1-20 of [a-z0-9-] starting with a letter", o.Name)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("kube: Start needs root")
	}
	if err := hostdeps.Require("/", tools...); err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	if err := Remove(ctx, o.Name, logw); err != nil {
		return nil, fmt.Errorf("kube: remove the leftover of %s: %w", o.Name, err)
	}
	bin, err := Binaries(ctx, logw)
	if err != nil {
		return nil, err
	}
	state, run := paths(o.Name)
	c := &Cluster{Name: o.Name, NodeName: o.Name, StateDir: state, RunDir: run,
		Socket: filepath.Join(run, "containerd.sock"), LogDir: filepath.Join(state, "log"),
		Bridge: bridgeName(o.Name), log: logw}
	defer func() {
		if err != nil {
			err = fmt.Errorf("kube: start %s: %w%s", o.Name, err, c.logTails())
			if rerr := Remove(context.WithoutCancel(ctx), o.Name, logw); rerr != nil {
				err = fmt.Errorf("%w (and removing it: %v)", err, rerr)
			}
		}
	}()
	t0 := time.Now()
	for _, d := range []string{state, run, c.LogDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := recordSharedDirs(run); err != nil {
		return nil, err
	}
	if err := c.claimSubnet(ctx, o); err != nil {
		return nil, err
	}
	var p ports
	for _, q := range []*int{&p.EtcdClient, &p.EtcdPeer, &p.API, &p.Kubelet, &p.ControllerManager, &p.Scheduler} {
		if *q, err = freePort(); err != nil {
			return nil, err
		}
	}
	pki := filepath.Join(state, "pki")
	if err := makeCerts(ctx, pki, c.NodeName, c.Gateway); err != nil {
		return nil, err
	}
	apiAddr := "127.0.0.1"
	if o.APIOnGateway {
		apiAddr = c.Gateway
	}
	c.APIURL = "https://" + net.JoinHostPort(apiAddr, strconv.Itoa(p.API))
	c.CAFile, c.CertFile, c.KeyFile = filepath.Join(pki, "ca.crt"), filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key")
	c.Kubeconfig = filepath.Join(state, "admin.kubeconfig")
	for _, u := range []string{"admin", "scheduler", "controller-manager", "node"} {
		if err := os.WriteFile(filepath.Join(state, u+".kubeconfig"), []byte(kubeconfig(c.APIURL, pki, u)), 0o600); err != nil {
			return nil, err
		}
	}
	if err := c.writeConfigs(o, p, bin); err != nil {
		return nil, err
	}
	if err := c.saveFacts(); err != nil {
		return nil, err
	}
	hc, err := c.HTTPClient()
	if err != nil {
		return nil, err
	}

	if err := c.spawn("etcd", "/usr/bin/etcd", "--name", "se", "--data-dir", filepath.Join(state, "etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", p.EtcdClient),
		"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", p.EtcdClient),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", p.EtcdPeer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", p.EtcdPeer),
		"--initial-cluster", fmt.Sprintf("se=http://127.0.0.1:%d", p.EtcdPeer),
		"--log-level", "warn"); err != nil {
		return nil, err
	}
	if err := c.spawn("kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", p.EtcdClient),
		"--bind-address="+apiAddr, "--advertise-address="+apiAddr, "--secure-port="+strconv.Itoa(p.API),
		"--service-cluster-ip-range="+ServiceCIDR,
		"--client-ca-file="+c.CAFile,
		"--tls-cert-file="+filepath.Join(pki, "apiserver.crt"), "--tls-private-key-file="+filepath.Join(pki, "apiserver.key"),
		"--service-account-key-file="+filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--kubelet-client-certificate="+filepath.Join(pki, "apiserver-kubelet-client.crt"),
		"--kubelet-client-key="+filepath.Join(pki, "apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority="+c.CAFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--endpoint-reconciler-type=none", "--allow-privileged=true", "--profiling=false",
		"--v=1"); err != nil {
		return nil, err
	}
	if err := c.waitHTTP(ctx, hc, c.APIURL+"/readyz", "kube-apiserver", "etcd"); err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "kube: %s: API server ready at %s after %s\n", o.Name, c.APIURL, time.Since(t0).Round(time.Millisecond))
	if err := c.spawn("kube-controller-manager", filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig="+filepath.Join(state, "controller-manager.kubeconfig"),
		"--authentication-kubeconfig="+filepath.Join(state, "controller-manager.kubeconfig"),
		"--authorization-kubeconfig="+filepath.Join(state, "controller-manager.kubeconfig"),
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(p.ControllerManager),
		"--leader-elect=false", "--use-service-account-credentials=true",
		"--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--root-ca-file="+c.CAFile, "--profiling=false", "--v=1"); err != nil {
		return nil, err
	}
	if err := c.spawn("kube-scheduler", filepath.Join(bin, "kube-scheduler"),
		"--kubeconfig="+filepath.Join(state, "scheduler.kubeconfig"),
		"--authentication-kubeconfig="+filepath.Join(state, "scheduler.kubeconfig"),
		"--authorization-kubeconfig="+filepath.Join(state, "scheduler.kubeconfig"),
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(p.Scheduler),
		"--leader-elect=false", "--profiling=false", "--v=1"); err != nil {
		return nil, err
	}
	if err := c.spawn("containerd", "/usr/bin/containerd", "--config", filepath.Join(state, "containerd.toml")); err != nil {
		return nil, err
	}
	if err := c.waitSocket(ctx, c.Socket, "containerd"); err != nil {
		return nil, err
	}
	if err := c.ctrImportFile(ctx, filepath.Join(bin, "pause.tar")); err != nil {
		return nil, err
	}
	if err := c.spawn("kubelet", filepath.Join(bin, "kubelet"),
		"--config="+filepath.Join(state, "kubelet.yaml"),
		"--kubeconfig="+filepath.Join(state, "node.kubeconfig"),
		"--root-dir="+filepath.Join(state, "kubelet"),
		"--hostname-override="+c.NodeName, "--node-ip="+c.Gateway, "--v=1"); err != nil {
		return nil, err
	}
	if err := c.waitSchedulable(ctx, hc); err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "kube: %s: node %s Ready, default ServiceAccount there, after %s\n", o.Name, c.NodeName, time.Since(t0).Round(time.Millisecond))
	return c, nil
}

// claimSubnet picks the pods' subnet, writes the claim the Podman harness honours, adds
// the unreachable guard route and then creates the bridge with the gateway address (so
// the subnet is visibly in use, and the host reaches pods, before the first pod).
func (c *Cluster) claimSubnet(ctx context.Context, o Options) error {
	subnet := o.Subnet
	if subnet == "" {
		var err error
		if subnet, err = harness.FreeSubnet("kube-" + o.Name); err != nil {
			return err
		}
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil || p.Bits() != 24 || !p.Addr().Is4() || p.Masked() != p || !projectNet.Contains(p.Addr()) {
		return fmt.Errorf("subnet %q: want a /24 network inside %s", subnet, projectNet)
	}
	for _, r := range o.PodRoutes {
		q, err := netip.ParsePrefix(r)
		if err != nil || !projectNet.Contains(q.Addr()) || q.Bits() < 16 || q.Masked() != q {
			return fmt.Errorf("pod route %q: want a network inside %s", r, projectNet)
		}
	}
	c.Subnet, c.PodRoutes = subnet, o.PodRoutes
	gw, _ := harness.SubnetHost(subnet, 1)
	c.Gateway = gw
	if err := os.WriteFile(filepath.Join(c.RunDir, "subnet"), []byte(subnet+"\n"), 0o644); err != nil {
		return err
	}
	if err := harness.AddGuardRoute(ctx, subnet); err != nil {
		return err
	}
	// The head networks' traffic to pods keeps its source: recorded first, so that
	// Remove finds every rule even after a crash half way.
	if err := os.WriteFile(filepath.Join(c.RunDir, keepSourceFile), []byte(strings.Join(o.PodRoutes, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	for _, r := range o.PodRoutes {
		if err := harness.KeepSource(ctx, r, subnet); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"link", "add", c.Bridge, "type", "bridge"},
		{"addr", "add", gw + "/24", "dev", c.Bridge},
		{"link", "set", c.Bridge, "up"},
	} {
		if err := ipCmd(ctx, args...); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.log, "kube: %s: pod subnet %s on bridge %s\n", c.Name, subnet, c.Bridge)
	return nil
}

// keepSourceFile (in RunDir) lists the PodRoutes whose traffic to pods keeps its source
// (harness.KeepSource), for Remove.
const keepSourceFile = "keep-source"

// projectNet is where every project subnet lives (network rule; tests/harness).
var projectNet = netip.MustParsePrefix("10.222.0.0/16")

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// spawn starts a daemon detached (own session, outlives this process) with its output in
// LogDir/<name>.log and its pid in RunDir/<name>.pid.
func (c *Cluster) spawn(name, path string, args ...string) error {
	lf, err := os.OpenFile(filepath.Join(c.LogDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = c.StateDir
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + c.StateDir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	go cmd.Wait() // reap while this process lives; init reaps afterwards
	return os.WriteFile(filepath.Join(c.RunDir, name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

// alive reports whether the daemon of pid file RunDir/<name>.pid runs.
func (c *Cluster) alive(name string) bool {
	pid, ok := harness.ReadPid(filepath.Join(c.RunDir, name+".pid"))
	return ok && harness.ProcessAlive(pid)
}

// waitHTTP polls url until it answers 200, failing early when one of the daemons died.
func (c *Cluster) waitHTTP(ctx context.Context, hc *http.Client, url string, daemons ...string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if err := c.checkAlive(daemons...); err != nil {
			return err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("wait for %s: %w", url, err)
		}
	}
}

func (c *Cluster) waitSocket(ctx context.Context, path, daemon string) error {
	for {
		if conn, err := net.Dial("unix", path); err == nil {
			conn.Close()
			return nil
		}
		if err := c.checkAlive(daemon); err != nil {
			return err
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("wait for %s: %w", path, err)
		}
	}
}

func (c *Cluster) checkAlive(daemons ...string) error {
	for _, d := range daemons {
		if !c.alive(d) {
			return fmt.Errorf("%s exited (log %s)", d, filepath.Join(c.LogDir, d+".log"))
		}
	}
	return nil
}

// waitSchedulable waits until the node is Ready with no taints and the default
// ServiceAccount exists (before that, pods stay Pending or are refused).
func (c *Cluster) waitSchedulable(ctx context.Context, hc *http.Client) error {
	all := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet"}
	for {
		var node struct {
			Spec struct {
				Taints []struct{ Key string } `json:"taints"`
			} `json:"spec"`
			Status struct {
				Conditions []struct{ Type, Status string } `json:"conditions"`
			} `json:"status"`
		}
		ready := false
		if c.getJSON(ctx, hc, "/api/v1/nodes/"+c.NodeName, &node) == nil && len(node.Spec.Taints) == 0 {
			for _, cond := range node.Status.Conditions {
				ready = ready || (cond.Type == "Ready" && cond.Status == "True")
			}
		}
		if ready && c.getJSON(ctx, hc, "/api/v1/namespaces/default/serviceaccounts/default", &struct{}{}) == nil {
			return nil
		}
		if err := c.checkAlive(all...); err != nil {
			return err
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("wait for node %s Ready without taints and the default ServiceAccount: %w", c.NodeName, err)
		}
	}
}

func (c *Cluster) getJSON(ctx context.Context, hc *http.Client, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", c.APIURL+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// HTTPClient returns an HTTP client that trusts the cluster CA and presents the admin
// (system:masters) client certificate: for raw REST calls to c.APIURL. It does not block.
func (c *Cluster) HTTPClient() (*http.Client, error) {
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("kube: %s: no certificate", c.CAFile)
	}
	kp, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("kube: admin certificate: %w", err)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12},
	}}, nil
}

// saveFacts writes the cluster's facts to RunDir/cluster.json for Attach.
func (c *Cluster) saveFacts() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.RunDir, "cluster.json"), b, 0o644)
}

// Attach returns the running cluster name started by another process (se-kube up). It
// reads one file and does not block.
func Attach(name string, logw io.Writer) (*Cluster, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("kube: cluster name %q: want 1-20 of [a-z0-9-] starting with a letter", name)
	}
	_, run := paths(name)
	b, err := os.ReadFile(filepath.Join(run, "cluster.json"))
	if err != nil {
		return nil, fmt.Errorf("kube: cluster %s is not running: %w", name, err)
	}
	c := &Cluster{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("kube: %s: %w", filepath.Join(run, "cluster.json"), err)
	}
	c.log = logw
	if c.log == nil {
		c.log = io.Discard
	}
	return c, nil
}

// Env returns the cluster's facts as KEY=VALUE lines (se-kube env). It does not block.
func (c *Cluster) Env() []string {
	return []string{"KUBECONFIG=" + c.Kubeconfig, "SE_KUBE_API=" + c.APIURL, "SE_KUBE_CA=" + c.CAFile,
		"SE_KUBE_CERT=" + c.CertFile, "SE_KUBE_KEY=" + c.KeyFile, "SE_KUBE_NODE=" + c.NodeName,
		"SE_KUBE_SUBNET=" + c.Subnet, "SE_KUBE_GATEWAY=" + c.Gateway, "SE_KUBE_BRIDGE=" + c.Bridge,
		"SE_KUBE_CONTAINERD=" + c.Socket, "SE_KUBE_LOGS=" + c.LogDir}
}

// logTails returns the last lines of every daemon log (for errors).
func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, d := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet"} {
		data, err := os.ReadFile(filepath.Join(c.LogDir, d+".log"))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		fmt.Fprintf(&b, "\n--- %s.log (tail) ---\n%s", d, strings.Join(lines, "\n"))
	}
	return b.String()
}

// Stop removes the cluster (Remove). Idempotent; it blocks for seconds.
func (c *Cluster) Stop(ctx context.Context) error { return Remove(ctx, c.Name, c.log) }

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
