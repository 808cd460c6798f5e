// Package harness runs a real Slurm test cluster (22.05, 24.11 or 26.05) in Podman on this machine: a private
// Podman store and API service, a project network with an explicit subnet in 10.222.0.0/16
// guarded by an unreachable route, and a head container with munged, slurmctld (SlurmUser
// slurm, not root) and slurmrestd (JWT, published on 127.0.0.1 only). Node containers are
// started from the same image (entrypoint /usr/local/sbin/slurm-elastic-node) by our Podman
// runtime through the cluster's API socket, which the head's slurm user can reach.
//
// The e2e tests, internal/slurm's integration tests and `make demo` (cmd/se-cluster) use it.
// Every call runs as root on the host. Nothing talks to any address but loopback and the
// cluster's own containers.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Labels put on what the harness creates. Node containers carry the runtime's own
// slurm-elastic.cluster label.
const (
	labelHarness = "slurm-elastic.harness"
	// LabelCluster is the runtime's ownership label (runtime.LabelCluster); Stop removes
	// every container of the cluster's store, these included.
	LabelCluster = "slurm-elastic.cluster"
)

// Fixed paths inside the head container.
const (
	PodmanSocketInHead = "/run/podman/podman.sock"
	BinDirInHead       = "/usr/libexec/slurm-elastic"
	// AdminCLIInHead is slurm-elastic, the admin CLI and reconciler, where the package
	// installs it; with Options.BinDir, BinDir's slurm-elastic is mounted there.
	AdminCLIInHead = "/usr/bin/slurm-elastic"
	LogDirInHead   = "/var/log/slurm-elastic"
	ConfigInHead   = "/etc/slurm-elastic/config.yaml"
	// MungeKeyInNode is where a node container expects the cluster's munge key (read-only).
	MungeKeyInNode = "/run/slurm-elastic/munge.key"
	restPortInHead = 6820
	headInputDir   = "/run/slurm-elastic" // munge.key, jwt.key, slurm.conf, config.yaml (ro)
)

// Options describe a cluster to start. Zero values take the documented defaults.
type Options struct {
	Name   string // prefix of every object (network, containers, state dir, labels); default "se-e2e"
	Subnet string // a /24 in 10.222.0.0/16; default FreeSubnet(Name)
	BinDir string // host dir with our static binaries, mounted read-only at /usr/libexec/slurm-elastic in head (its slurm-elastic also at /usr/bin/slurm-elastic); "" = none
	// Debs are host paths of .deb packages (slurm-elastic's own, from `make
	// deb`) that head installs with dpkg before its daemons start, as an admin
	// would; with Debs, BinDir must be "" (the package brings the hooks).
	Debs []string
	// NodeNames are the cloud node names of slurm.conf. Head resolves each to 127.0.0.1
	// (its /etc/hosts), where no slurmd listens: an RPC to a node whose NodeAddr is its
	// name (before its first launch, after a failed one, after a power down) fails at
	// once. Unresolvable, such a name stalls slurmctld: Debian's Slurm retries
	// getaddrinfo once a second, ten times (its retry-getaddrinfo patch), and answers no
	// RPC meanwhile.
	NodeNames []string
	Config    string // content of /etc/slurm-elastic/config.yaml in head (mode 0640 root:slurm); "" = none
	SlurmConf string // extra slurm.conf lines appended to the base (NodeName/PartitionName/power-save lines)
	// HelpersConf is the content of /etc/slurm/helpers.conf in head (node_features/helpers,
	// for groups with images); "" = none.
	HelpersConf string
	RESTPort    int // 127.0.0.1 port published for slurmrestd; 0 = pick a free one
	// Slurm is the Slurm release, "22.05", "24.11" or "26.05" (an image from the Debian
	// suite that ships it, see tests/image); "" = $SE_SLURM, else 24.11.
	Slurm string
	// Log receives progress lines of Start and Stop; nil discards them.
	Log io.Writer
}

// Cluster is a running test cluster. Its fields are read-only.
type Cluster struct {
	Name, Network, Subnet string
	HeadIP                string   // head address on the project network (what node containers use)
	RESTURL               string   // http://127.0.0.1:PORT (slurmrestd, published on loopback only)
	PodmanSocket          string   // host path of this cluster's private Podman API socket
	PodmanSocketInHead    string   // the same socket's path inside head (/run/podman/podman.sock)
	StateDir              string   // host dir: munge.key, jwt key, logs, scontrol wrapper
	LogDir                string   // host dir mounted at /var/log/slurm-elastic in head (hook logs land here), writable by slurm
	Image                 string   // the Slurm image reference (localhost/slurm-elastic-slurm:<Slurm>-<hash>)
	Slurm                 string   // the Slurm release: 22.05, 24.11 or 26.05
	RESTParser            string   // the newest data parser its slurmrestd serves (v0.0.38, v0.0.42, v0.0.45)
	Env                   []string // CONTAINERS_CONF / CONTAINERS_STORAGE_CONF for podman CLI calls on the private store

	Head        string // head container name (<Name>-head), also its hostname
	Bridge      string // host bridge interface of Network
	RESTPort    int    // the published 127.0.0.1 port
	MungeKey    string // host path of the munge key; mount it read-only at MungeKeyInNode in node containers
	SlurmLogDir string // host dir mounted at /var/log/slurm in head (slurmctld.log, slurmrestd.log)
	RunDir      string // host dir under /run: socket, pid file, libpod tmp dir
	SlurmUID    int    // uid and gid of the slurm user (SlurmUser) in the image
	SlurmGID    int

	st     *store
	logw   io.Writer
	svc    *exec.Cmd
	svcEnd chan struct{}
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// hostRE is a host name podman --add-host takes (node names are checked by conf first).
var hostRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// MungeKeyPath is the host path where Start writes the munge key of the cluster called
// name (Cluster.MungeKey), known before Start: an admin's config names it as the Podman
// host's key. It does not block.
func MungeKeyPath(name string) string {
	stateDir, _ := dirsOf(name)
	return filepath.Join(stateDir, "head", "munge.key")
}

func dirsOf(name string) (stateDir, runD string) {
	return filepath.Join(libDir, "clusters", name), filepath.Join(runDir, name)
}

// Start removes what an earlier cluster of the same Name left, then builds (or reuses) the
// image of o.Slurm and starts a cluster, and returns once `scontrol ping` answers in head
// and slurmrestd answers GET /slurm/<RESTParser>/ping with a token. It blocks (tens of seconds; more
// on a cold image) and honours ctx; readiness waits are bounded. On failure it removes
// everything it made and returns an error carrying the head's log tail. Not idempotent: a
// second Start of the same Name replaces the first cluster.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	t0 := time.Now()
	if o.Name == "" {
		o.Name = "se-e2e"
	}
	if !nameRE.MatchString(o.Name) {
		return nil, fmt.Errorf("start cluster: name %q: want [a-z][a-z0-9-]{0,39}", o.Name)
	}
	if o.BinDir != "" && len(o.Debs) > 0 {
		return nil, fmt.Errorf("start cluster %s: BinDir and Debs both set: the package installs the hooks where BinDir would be mounted", o.Name)
	}
	for _, n := range o.NodeNames {
		if !hostRE.MatchString(n) {
			return nil, fmt.Errorf("start cluster %s: NodeNames: %q is not a host name", o.Name, n)
		}
	}
	for _, d := range o.Debs {
		if fi, err := os.Stat(d); err != nil || !fi.Mode().IsRegular() || !strings.HasSuffix(d, ".deb") {
			return nil, fmt.Errorf("start cluster %s: Debs: %s is not a .deb file", o.Name, d)
		}
	}
	if o.BinDir != "" {
		if fi, err := os.Stat(o.BinDir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("start cluster %s: BinDir %s is not a directory", o.Name, o.BinDir)
		}
		if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
			return nil, fmt.Errorf("start cluster %s: BinDir: %w", o.Name, err)
		}
	}
	logw := orDiscard(o.Log)
	stateDir, runD := dirsOf(o.Name)
	c := &Cluster{
		Name:               o.Name,
		Network:            o.Name + "-net",
		Head:               o.Name + "-head",
		Bridge:             bridgeName(o.Name),
		PodmanSocketInHead: PodmanSocketInHead,
		StateDir:           stateDir,
		RunDir:             runD,
		LogDir:             filepath.Join(stateDir, "log"),
		SlurmLogDir:        filepath.Join(stateDir, "slurm-log"),
		MungeKey:           MungeKeyPath(o.Name),
		PodmanSocket:       filepath.Join(runD, "podman.sock"),
		logw:               logw,
	}
	recipe, err := SlurmRecipe(o.Slurm)
	if err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	c.Slurm, c.RESTParser = recipe.Slurm, recipe.RESTParser
	c.logf("starting cluster (Slurm %s)", c.Slurm)

	info, err := buildImage(ctx, recipe, logw)
	if err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	c.Image, c.SlurmUID, c.SlurmGID = info.Ref, info.SlurmUID, info.SlurmGID

	if err := removeCluster(ctx, o.Name, logw, nil, nil); err != nil {
		return nil, fmt.Errorf("start cluster %s: remove leftovers: %w", o.Name, err)
	}
	defer func() {
		if err != nil {
			diag := c.headLogTail()
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if rerr := c.Stop(cctx); rerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up after failed start: %w", rerr))
			}
			if diag != "" {
				err = fmt.Errorf("%w\n--- head logs ---\n%s", err, diag)
			}
		}
	}()
	if err := c.prepareDirs(o); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	if c.st, err = openStore(filepath.Join(stateDir, "containers.conf"), filepath.Join(stateDir, "libpod"),
		filepath.Join(runD, "libpod"), filepath.Join(stateDir, "networks"), filepath.Join(stateDir, "volumes")); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	c.Env = c.st.env

	if err := c.setupNetwork(ctx, o.Subnet); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	if c.HeadIP, err = SubnetHost(c.Subnet, 2); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	if err := c.writeHeadInput(o); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	if c.RESTPort = o.RESTPort; c.RESTPort == 0 {
		if c.RESTPort, err = freePort(); err != nil {
			return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
		}
	}
	c.RESTURL = "http://127.0.0.1:" + strconv.Itoa(c.RESTPort)
	if err := c.startService(ctx); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	if err := c.runHead(ctx, o); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	if err := c.writeWrapper(); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	if err := c.saveState(); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	if err := c.waitReady(ctx, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", o.Name, err)
	}
	c.logf("cluster up in %s: head %s at %s, REST %s, podman socket %s",
		time.Since(t0).Round(time.Millisecond), c.Head, c.HeadIP, c.RESTURL, c.PodmanSocket)
	return c, nil
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.logw, "harness[%s]: %s\n", c.Name, fmt.Sprintf(format, args...))
}

func (c *Cluster) prepareDirs(o Options) error {
	for _, d := range []string{c.StateDir, c.RunDir, filepath.Join(c.StateDir, "head"), filepath.Join(c.StateDir, "bin")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	// Writable by slurm through the mounts; the head's init sets the owner again inside.
	for _, d := range []string{c.LogDir, c.SlurmLogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := os.Chown(d, c.SlurmUID, c.SlurmGID); err != nil {
			return fmt.Errorf("chown %s: %w", d, err)
		}
	}
	return nil
}

func (c *Cluster) setupNetwork(ctx context.Context, subnet string) error {
	l, err := LockFile(ctx, filepath.Join(runDir, "network.lock"))
	if err != nil {
		return err
	}
	defer l.Unlock()
	if subnet == "" {
		if subnet, err = FreeSubnet(c.Name); err != nil {
			return err
		}
	} else {
		if _, err := parseSubnet(subnet); err != nil {
			return err
		}
		used, err := usedSubnets(c.Name)
		if err != nil {
			return err
		}
		if p, _ := parseSubnet(subnet); used[p] {
			return fmt.Errorf("subnet %s is in use on this host", subnet)
		}
	}
	c.Subnet = subnet
	if err := os.WriteFile(filepath.Join(c.RunDir, "subnet"), []byte(subnet+"\n"), 0o644); err != nil {
		return fmt.Errorf("claim subnet: %w", err)
	}
	// The guard route first, then the network.
	if err := AddGuardRoute(ctx, subnet); err != nil {
		return err
	}
	if err := createNetwork(ctx, c.st, c.Name, c.Network, subnet, filepath.Join(c.StateDir, "networks")); err != nil {
		return err
	}
	c.logf("network %s %s (bridge %s, guarded by an unreachable route)", c.Network, subnet, c.Bridge)
	return nil
}

// writeHeadInput writes the keys, slurm.conf and config.yaml mounted read-only into head.
func (c *Cluster) writeHeadInput(o Options) error {
	dir := filepath.Join(c.StateDir, "head")
	munge := make([]byte, 1024)
	jwt := make([]byte, 64)
	rand.Read(munge)
	rand.Read(jwt)
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"munge.key", munge, 0o400},
		{"jwt.key", jwt, 0o400},
		{"slurm.conf", []byte(c.slurmConf(o.SlurmConf)), 0o644},
	}
	if o.Config != "" {
		files = append(files, struct {
			name string
			data []byte
			mode os.FileMode
		}{"config.yaml", []byte(o.Config), 0o640})
	}
	if o.HelpersConf != "" {
		files = append(files, struct {
			name string
			data []byte
			mode os.FileMode
		}{"helpers.conf", []byte(o.HelpersConf), 0o644})
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	// Packages go to pkgs/, which head's init installs with dpkg.
	if len(o.Debs) > 0 {
		pkgs := filepath.Join(dir, "pkgs")
		if err := os.MkdirAll(pkgs, 0o755); err != nil {
			return err
		}
		for _, d := range o.Debs {
			b, err := os.ReadFile(d)
			if err != nil {
				return fmt.Errorf("read package: %w", err)
			}
			if err := os.WriteFile(filepath.Join(pkgs, filepath.Base(d)), b, 0o644); err != nil {
				return fmt.Errorf("copy package: %w", err)
			}
		}
	}
	return nil
}

// slurmConf is the base slurm.conf followed by extra. It sets no power-save program: those
// lines come from extra.
func (c *Cluster) slurmConf(extra string) string {
	return fmt.Sprintf(`# slurm.conf of the slurm-elastic test cluster %[1]s (written by tests/harness).
ClusterName=%[1]s
SlurmctldHost=%[2]s(%[3]s)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=/etc/slurm/jwt.key
CredType=cred/munge
SlurmctldParameters=enable_configless,idle_on_node_suspend
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
PrivateData=cloud
TreeWidth=65533
SlurmctldTimeout=10
SlurmdTimeout=60
MessageTimeout=5
InactiveLimit=0
KillWait=5
MinJobAge=300
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmctldDebug=info
SlurmdDebug=info
# --- extra lines (Options.SlurmConf) ---
%[4]s
`, c.Name, c.Head, c.HeadIP, strings.TrimSpace(extra))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startService starts `podman system service` on the private store as a detached child
// (it outlives the calling process, so `se-cluster up` can exit) and makes its socket
// reachable by the slurm group.
func (c *Cluster) startService(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(c.StateDir, "podman-service.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("podman service log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(c.st.podman, "system", "service", "--time=0", "unix://"+c.PodmanSocket)
	cmd.Env = append(os.Environ(), c.st.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start podman system service: %w", err)
	}
	c.svc, c.svcEnd = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(c.svcEnd) }()
	if err := os.WriteFile(filepath.Join(c.RunDir, "podman.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write podman pid file: %w", err)
	}
	hc := unixClient(c.PodmanSocket)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://d/_ping", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-c.svcEnd:
			return fmt.Errorf("podman system service exited; see %s", filepath.Join(c.StateDir, "podman-service.log"))
		case <-ctx.Done():
			return fmt.Errorf("wait for podman socket: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("podman socket %s not answering after 30s (last error: %v)", c.PodmanSocket, err)
		}
	}
	// The non-root SlurmUser reaches Podman through the socket's group.
	if err := os.Chown(c.PodmanSocket, 0, c.SlurmGID); err != nil {
		return fmt.Errorf("chgrp podman socket: %w", err)
	}
	if err := os.Chmod(c.PodmanSocket, 0o660); err != nil {
		return fmt.Errorf("chmod podman socket: %w", err)
	}
	c.logf("podman service pid %d on %s (root:%d 0660)", cmd.Process.Pid, c.PodmanSocket, c.SlurmGID)
	return nil
}

func unixClient(sock string) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
}

func (c *Cluster) runHead(ctx context.Context, o Options) error {
	args := []string{"run", "-d", "--pull=never", "--name", c.Head, "--hostname", c.Head,
		"--label", labelHarness + "=" + c.Name,
		"--network", c.Network, "--ip", c.HeadIP, "--dns", "none", "--init",
		"--publish", fmt.Sprintf("127.0.0.1:%d:%d/tcp", c.RESTPort, restPortInHead),
		"--volume", filepath.Join(c.StateDir, "head") + ":" + headInputDir + ":ro",
		"--volume", c.LogDir + ":" + LogDirInHead,
		"--volume", c.SlurmLogDir + ":/var/log/slurm",
		"--volume", c.PodmanSocket + ":" + PodmanSocketInHead,
	}
	if o.BinDir != "" {
		args = append(args, "--volume", o.BinDir+":"+BinDirInHead+":ro")
		// The admin CLI where the package puts it, so tests and admins call it the same
		// way on a head with BinDir and on one that installed Debs.
		if fi, err := os.Stat(filepath.Join(o.BinDir, "slurm-elastic")); err == nil && fi.Mode().IsRegular() {
			args = append(args, "--volume", filepath.Join(o.BinDir, "slurm-elastic")+":"+AdminCLIInHead+":ro")
		}
	}
	for _, n := range o.NodeNames {
		args = append(args, "--add-host", n+":127.0.0.1")
	}
	args = append(args, c.Image, "/usr/local/sbin/slurm-elastic-head", "init")
	if _, err := c.st.run(ctx, nil, args...); err != nil {
		return fmt.Errorf("run head: %w", err)
	}
	c.logf("head %s started at %s", c.Head, c.HeadIP)
	return nil
}

// writeWrapper writes StateDir/bin/scontrol, which runs scontrol in head.
func (c *Cluster) writeWrapper() error {
	s := fmt.Sprintf(`#!/bin/sh
# scontrol of the slurm-elastic test cluster %[1]s: runs inside its head container.
export CONTAINERS_CONF='%[2]s'
export CONTAINERS_STORAGE_CONF='%[3]s'
exec '%[4]s' exec -i '%[5]s' scontrol "$@"
`, c.Name, c.st.confPath, storageConfPath, c.st.podman, c.Head)
	return os.WriteFile(c.ScontrolWrapper(), []byte(s), 0o755)
}

// ScontrolWrapper returns the host path of an executable that runs `scontrol "$@"` inside
// head (podman exec, argv passed through, stdin attached). It does not block.
func (c *Cluster) ScontrolWrapper() string { return filepath.Join(c.StateDir, "bin", "scontrol") }

// state is what Attach needs to rebuild a Cluster in another process.
func (c *Cluster) saveState() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return os.WriteFile(filepath.Join(c.StateDir, "cluster.json"), b, 0o600)
}

// Attach returns the cluster a Start (in this or another process, e.g. `se-cluster up`)
// left running under name. It does not block and changes nothing.
func Attach(name string, logw io.Writer) (*Cluster, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("attach cluster: name %q: want [a-z][a-z0-9-]{0,39}", name)
	}
	stateDir, _ := dirsOf(name)
	b, err := os.ReadFile(filepath.Join(stateDir, "cluster.json"))
	if err != nil {
		return nil, fmt.Errorf("attach cluster %s: %w", name, err)
	}
	c := &Cluster{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("attach cluster %s: %w", name, err)
	}
	if c.st, err = existingStore(stateDir); err != nil {
		return nil, fmt.Errorf("attach cluster %s: %w", name, err)
	}
	c.logw = orDiscard(logw)
	return c, nil
}

func existingStore(stateDir string) (*store, error) {
	conf := filepath.Join(stateDir, "containers.conf")
	if _, err := os.Stat(conf); err != nil {
		return nil, err
	}
	podman, err := exec.LookPath("podman")
	if err != nil {
		return nil, fmt.Errorf("podman not found (install the Debian package podman): %w", err)
	}
	return &store{confPath: conf, podman: podman,
		env: []string{"CONTAINERS_CONF=" + conf, "CONTAINERS_STORAGE_CONF=" + storageConfPath}}, nil
}

// waitReady polls until scontrol ping answers UP and slurmrestd answers a REST ping. It
// fails early only on a real failure (headFailure): the head container stopped, the head's
// init failed, or a daemon stopped after init said ready; while init is still starting
// (installing packages, starting daemons) it keeps waiting. Bounded by limit. Start adds
// the head's log tail to the error.
func (c *Cluster) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	step := func(what, daemon string, f func() error) error {
		for {
			last := f()
			if last == nil {
				return nil
			}
			running := true
			if out, err := c.st.run(ctx, nil, "inspect", "--format", "{{.State.Running}}", c.Head); err == nil {
				running = strings.TrimSpace(out) == "true"
			}
			status, serr := "", error(nil)
			if running {
				status, serr = c.Exec(ctx, "slurm-elastic-head", "status")
			}
			if err := headFailure(running, status, serr, daemon); err != nil {
				return fmt.Errorf("wait for %s: %w (last error: %v)", what, err, last)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for %s: %w (last error: %v; head status: %s)", what, ctx.Err(), last,
					strings.Join(strings.Fields(status), " "))
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	if err := step("scontrol ping", "slurmctld", func() error {
		out, err := c.Exec(ctx, "scontrol", "ping")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "is UP") {
			return fmt.Errorf("scontrol ping: %s", strings.TrimSpace(out))
		}
		return nil
	}); err != nil {
		return err
	}
	c.logf("slurmctld answers")
	tok, err := c.Token(ctx, "root", limit)
	if err != nil {
		return err
	}
	if err := step("slurmrestd ping", "slurmrestd", func() error { return c.restPing(ctx, tok) }); err != nil {
		return err
	}
	c.logf("slurmrestd answers on %s", c.RESTURL)
	return nil
}

// headPhase is the init phase `slurm-elastic-head status` prints on its first line.
type headPhase struct {
	state  string // starting, ready or failed
	reason string // why, when failed
}

// parseHeadStatus reads the output of `slurm-elastic-head status`: "phase starting",
// "phase ready" or "phase failed: REASON", then "NAME running|stopped" per daemon. No
// phase line reads as starting (an image whose init predates phases never claims ready).
func parseHeadStatus(out string) (headPhase, map[string]bool) {
	ph := headPhase{state: "starting"}
	daemons := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if p, ok := strings.CutPrefix(line, "phase "); ok {
			state, reason, _ := strings.Cut(p, ":")
			ph = headPhase{state: strings.TrimSpace(state), reason: strings.TrimSpace(reason)}
			continue
		}
		if name, st, ok := strings.Cut(line, " "); ok && (st == "running" || st == "stopped") {
			daemons[name] = st == "running"
		}
	}
	return ph, daemons
}

// headFailure decides, from one look at the head, whether waiting for daemon is hopeless:
// the container stopped, init failed, or init said ready and daemon is not running. A
// failed status call (statusErr) or an init still starting is no failure: nil means keep
// waiting. It does not block.
func headFailure(running bool, status string, statusErr error, daemon string) error {
	if !running {
		return errors.New("head container stopped")
	}
	if statusErr != nil {
		return nil
	}
	ph, daemons := parseHeadStatus(status)
	switch ph.state {
	case "failed":
		return fmt.Errorf("head init failed: %s", ph.reason)
	case "ready":
		if up, ok := daemons[daemon]; ok && !up {
			return fmt.Errorf("%s is not running (it stopped after the head's init said ready)", daemon)
		}
	}
	return nil
}

// RESTPing sends GET /slurm/<RESTParser>/ping to slurmrestd with a fresh root token and
// returns nil when it answers 200 with the controller "UP" (24.11 answers 200 with "DOWN"
// when it cannot authenticate). It blocks for one exec and one request (5 s at most).
func (c *Cluster) RESTPing(ctx context.Context) error {
	tok, err := c.Token(ctx, "root", time.Minute)
	if err != nil {
		return err
	}
	return c.restPing(ctx, tok)
}

func (c *Cluster) restPing(ctx context.Context, tok string) error {
	parser := c.RESTParser
	if parser == "" { // a cluster.json written before there were several releases
		parser = "v0.0.42"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.RESTURL+"/slurm/"+parser+"/ping", nil)
	if err != nil {
		return fmt.Errorf("rest ping: %w", err)
	}
	req.Header.Set("X-SLURM-USER-NAME", "root")
	req.Header.Set("X-SLURM-USER-TOKEN", tok)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("rest ping: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("rest ping: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	// 24.11 answers 200 even when slurmrestd could not authenticate to slurmctld; the
	// controller's state is in the body ("pinged": "DOWN" then; v0.0.38 calls it "ping";
	// v0.0.45 has neither, only "responding" and "status").
	var ping struct {
		Pings []struct {
			Pinged     string `json:"pinged"`
			Ping       string `json:"ping"`
			Responding bool   `json:"responding"`
		} `json:"pings"`
		Errors []struct {
			Description string `json:"description"`
			Error       string `json:"error"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &ping); err != nil {
		return fmt.Errorf("rest ping: %w", err)
	}
	if len(ping.Errors) > 0 {
		return fmt.Errorf("rest ping: %s %s", ping.Errors[0].Error, ping.Errors[0].Description)
	}
	if len(ping.Pings) == 0 || !(ping.Pings[0].Responding || ping.Pings[0].Pinged == "UP" || ping.Pings[0].Ping == "UP") {
		return fmt.Errorf("rest ping: controller not UP: %s", strings.Join(strings.Fields(string(body)), " "))
	}
	return nil
}

// Exec runs argv (no shell) in head as root and returns its stdout. It blocks until the
// command ends; the error names the command and carries its stderr and stdout.
func (c *Cluster) Exec(ctx context.Context, args ...string) (string, error) {
	return c.ExecAs(ctx, "", args...)
}

// ExecAs is Exec as user (a name or uid known in head; "" = root).
func (c *Cluster) ExecAs(ctx context.Context, user string, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("exec in head: no command")
	}
	a := []string{"exec"}
	if user != "" {
		a = append(a, "--user", user)
	}
	a = append(append(a, c.Head), args...)
	return c.st.run(ctx, nil, a...)
}

// Podman runs the podman CLI with args against the cluster's private store and returns
// its stdout. It blocks until podman ends; the error carries stderr and stdout.
func (c *Cluster) Podman(ctx context.Context, args ...string) (string, error) {
	return c.st.run(ctx, nil, args...)
}

// Token returns a JWT for user from `scontrol token` in head, valid for lifespan (rounded
// up to whole seconds, at least 1). It blocks for one exec. The token is never logged.
func (c *Cluster) Token(ctx context.Context, user string, lifespan time.Duration) (string, error) {
	secs := int((lifespan + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	out, err := c.Exec(ctx, "scontrol", "token", "username="+user, "lifespan="+strconv.Itoa(secs))
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", user, err)
	}
	for _, line := range strings.Split(out, "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(line), "SLURM_JWT="); ok && t != "" {
			return t, nil
		}
	}
	return "", fmt.Errorf("token for %s: no SLURM_JWT in scontrol output", user)
}

// WriteFileInHead writes data to path in head with mode and owner ("user" or
// "user:group"; "" = root:root), creating parent directories. The file never exists with
// other permissions than mode; it is replaced by a rename, so a reader sees the old or the
// new file, never a partial one. It blocks for three execs; idempotent.
func (c *Cluster) WriteFileInHead(ctx context.Context, path string, data []byte, mode os.FileMode, owner string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("write %s in head: path is not absolute", path)
	}
	user, group, _ := strings.Cut(owner, ":")
	if user == "" {
		user = "root"
	}
	args := []string{"install", "-D", "-m", fmt.Sprintf("%04o", mode.Perm()), "-o", user}
	if group != "" {
		args = append(args, "-g", group)
	}
	// Written beside it and renamed into place: a hook that reads the
	// file meanwhile (a config rewritten under a running cluster) sees the
	// old or the new file, never an empty one (seen in CI: a suspend hook
	// read an empty config.yaml and left its container up).
	tmp := path + ".se-tmp"
	args = append(args, "/dev/null", tmp)
	if _, err := c.Exec(ctx, args...); err != nil {
		return fmt.Errorf("write %s in head: %w", path, err)
	}
	if _, err := c.st.run(ctx, strings.NewReader(string(data)), "exec", "-i", c.Head, "dd", "of="+tmp, "status=none"); err != nil {
		return fmt.Errorf("write %s in head: %w", path, err)
	}
	if _, err := c.Exec(ctx, "mv", "-f", tmp, path); err != nil {
		return fmt.Errorf("write %s in head: %w", path, err)
	}
	return nil
}

// headLogTail returns the head container's output, its init phase and daemons (`slurm-elastic-head
// status`), and the tail of slurmctld.log and slurmrestd.log, for error messages. Best effort.
func (c *Cluster) headLogTail() string {
	var b strings.Builder
	if c.st != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Both streams: the init's failure and dpkg's errors go to the container's stderr.
		if out, err := c.st.cmd(ctx, "logs", "--tail", "30", c.Head).CombinedOutput(); err == nil && strings.TrimSpace(string(out)) != "" {
			fmt.Fprintf(&b, "[podman logs %s]\n%s\n", c.Head, strings.TrimSpace(string(out)))
		}
		if out, err := c.st.run(ctx, nil, "exec", c.Head, "slurm-elastic-head", "status"); err == nil {
			fmt.Fprintf(&b, "[slurm-elastic-head status]\n%s\n", strings.TrimSpace(out))
		}
	}
	for _, f := range []string{"slurmctld.log", "slurmrestd.log"} {
		if d, err := os.ReadFile(filepath.Join(c.SlurmLogDir, f)); err == nil && len(d) > 0 {
			fmt.Fprintf(&b, "[%s]\n%s\n", f, tail(d, 3000))
		}
	}
	return b.String()
}

// Diagnostics returns, best effort, what helps to understand a failed test: the head's
// logs, slurmctld.log and slurmrestd.log tails, the hook logs, `sinfo`, and the containers
// of the store with their last log lines. It blocks for a few execs.
func (c *Cluster) Diagnostics(ctx context.Context) string {
	var b strings.Builder
	b.WriteString(c.headLogTail())
	if out, err := c.Exec(ctx, "sinfo", "-N", "-l"); err == nil {
		fmt.Fprintf(&b, "[sinfo -N -l]\n%s\n", strings.TrimSpace(out))
	}
	entries, _ := os.ReadDir(c.LogDir)
	for _, e := range entries {
		if d, err := os.ReadFile(filepath.Join(c.LogDir, e.Name())); err == nil {
			fmt.Fprintf(&b, "[hook log %s]\n%s\n", e.Name(), tail(d, 3000))
		}
	}
	if out, err := c.Podman(ctx, "ps", "-a", "--format", "{{.Names}} {{.Status}} {{.Networks}}"); err == nil {
		fmt.Fprintf(&b, "[containers]\n%s\n", strings.TrimSpace(out))
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] == c.Head {
				continue
			}
			if l, err := c.Podman(ctx, "logs", "--tail", "15", f[0]); err == nil {
				fmt.Fprintf(&b, "[podman logs %s]\n%s\n", f[0], strings.TrimSpace(l))
			}
		}
	}
	return b.String()
}

// Stop removes everything the cluster created: every container of its private store (head,
// node containers started by the hooks or by tests), its volumes and network, the Podman
// API service, the state and run directories. The unreachable guard route stays (harmless,
// and it keeps the subnet from ever leaving the machine). It blocks until done (seconds)
// and is idempotent; safe on a cluster whose Start failed half way.
func (c *Cluster) Stop(ctx context.Context) error {
	if c == nil {
		return nil
	}
	if err := removeCluster(ctx, c.Name, c.logw, c.svc, c.svcEnd); err != nil {
		return fmt.Errorf("stop cluster %s: %w", c.Name, err)
	}
	c.svc, c.svcEnd = nil, nil // reaped; never signal its pid again
	return nil
}

// Remove removes everything a cluster called name left on this machine, as Stop does,
// without a *Cluster (e.g. `se-cluster down` after `se-cluster up` exited). It blocks until
// done and is idempotent.
func Remove(ctx context.Context, name string, logw io.Writer) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("remove cluster: name %q: want [a-z][a-z0-9-]{0,39}", name)
	}
	if err := removeCluster(ctx, name, orDiscard(logw), nil, nil); err != nil {
		return fmt.Errorf("remove cluster %s: %w", name, err)
	}
	return nil
}

func removeCluster(ctx context.Context, name string, logw io.Writer, svc *exec.Cmd, svcEnd chan struct{}) error {
	stateDir, runD := dirsOf(name)
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, "harness[%s]: %s\n", name, fmt.Sprintf(format, args...))
	}
	var errs []error
	if st, err := existingStore(stateDir); err == nil {
		// Every container in this private libpod state belongs to the cluster.
		if out, err := st.run(ctx, nil, "ps", "-a", "--format", "{{.ID}} {{.Names}}"); err != nil {
			errs = append(errs, err)
		} else if lines := strings.Fields(out); len(lines) > 0 {
			if _, err := st.run(ctx, nil, "rm", "--all", "--force", "--time", "0"); err != nil {
				errs = append(errs, err)
			} else {
				logf("removed %d container(s)", len(lines)/2)
			}
		}
		if _, err := st.run(ctx, nil, "volume", "rm", "--all", "--force"); err != nil {
			errs = append(errs, err)
		}
		network := name + "-net"
		if _, err := st.run(ctx, nil, "network", "exists", network); err == nil {
			if _, err := st.run(ctx, nil, "network", "rm", "--force", network); err != nil {
				errs = append(errs, err)
			} else {
				logf("removed network %s", network)
			}
		}
	}
	// The bridge goes with its last container; make sure.
	br := bridgeName(name)
	if _, err := os.Stat("/sys/class/net/" + br); err == nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "delete", br).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link delete %s: %w: %s", br, err, strings.TrimSpace(string(out))))
		}
	}
	if pid, err := stopService(ctx, runD, svc, svcEnd); err != nil {
		errs = append(errs, err)
	} else if pid != 0 {
		logf("stopped podman service pid %d", pid)
	}
	if len(errs) > 0 {
		// Keep the state: it is what a later attempt needs to find the leftovers.
		return errors.Join(errs...)
	}
	for _, d := range []string{stateDir, runD} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// stopService ends the cluster's podman system service: our child (svc) or the process in
// the pid file when its command line names the cluster's socket.
func stopService(ctx context.Context, runD string, svc *exec.Cmd, svcEnd chan struct{}) (int, error) {
	sock := filepath.Join(runD, "podman.sock")
	pid := 0
	if svc != nil && svc.Process != nil {
		select {
		case <-svcEnd:
			return 0, nil // already exited and reaped: its pid may be someone else's now
		default:
		}
		pid = svc.Process.Pid
	} else if p, ok := ReadPid(filepath.Join(runD, "podman.pid")); ok {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if strings.Contains(string(cmdline), sock) {
			pid = p
		}
	}
	if pid == 0 {
		return 0, nil
	}
	gone := func() bool {
		if svcEnd != nil {
			select {
			case <-svcEnd:
				return true
			default:
				return false
			}
		}
		return !ProcessAlive(pid)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for !gone() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
			for !gone() {
				if time.Now().After(deadline) {
					return pid, fmt.Errorf("podman service pid %d does not exit", pid)
				}
				time.Sleep(50 * time.Millisecond)
			}
			return pid, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return pid, nil
}
