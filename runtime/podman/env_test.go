package podman

// The integration environment: two private `podman system service`
// processes ("hosts" h0 and h1), each with its own store, sharing one
// dedicated internal network 10.222.250.0/24, and a busybox image built from
// Debian's busybox-static package (no registry). Everything the tests create
// is removed when the package's tests end, also on failure; leftovers of an
// aborted earlier run are removed first. The image stays in the stores
// (under baseDir) so later runs start fast.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containers/podman/v4/pkg/bindings"
	"github.com/containers/podman/v4/pkg/bindings/containers"
	"github.com/containers/podman/v4/pkg/bindings/images"
	"github.com/containers/podman/v4/pkg/bindings/network"

	"github.com/slurm-elastic/slurm-elastic/tests/hostdeps"
)

const (
	baseDir   = "/var/lib/slurm-elastic-test/podman-runtime" // stores, cache (kept)
	runDir    = "/run/slurm-elastic-test/podman-runtime"     // runroot, tmp_dir (tmpfs)
	testNet   = "se-rt-test"
	subnet    = "10.222.250.0/24"
	testImage = "localhost/slurm-elastic-test/busybox:1"
	numHosts  = 2
)

// idleCmd runs until SIGTERM, so stopping takes no StopTimeout.
var idleCmd = []string{"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"}

// testConfServer is the Options.ConfServer of the test runtimes (nothing
// listens there: the test containers run no slurmd).
const testConfServer = "head.test:6817"

type testEnv struct {
	sockDir  string
	mungeKey string           // a stand-in munge key on the (local) Podman hosts
	socks    [numHosts]string // unix:// URIs
	conns    [numHosts]context.Context
	procs    [numHosts]*exec.Cmd
	lock     *os.File
	netMade  bool
	reg      *testRegistry // the loopback registry of the pull tests
}

var (
	envDone bool
	env     *testEnv
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		if err := env.teardown(); err != nil {
			fmt.Fprintln(os.Stderr, "podman test teardown:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// getEnv starts the environment on first use. Tests never run in parallel,
// so no lock is needed.
func getEnv(t testing.TB) *testEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Podman services and containers: not run with -short")
	}
	if !envDone {
		envDone = true
		env, envErr = setup()
	}
	if envErr != nil {
		t.Fatalf("podman integration environment: %v", envErr)
	}
	return env
}

func hostDir(i int) string { return filepath.Join(baseDir, "host"+strconv.Itoa(i)) }

// hostEnvVars are the environment of host i's service and CLI calls.
func hostEnvVars(i int) []string {
	return append(os.Environ(),
		"CONTAINERS_CONF="+filepath.Join(hostDir(i), "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(hostDir(i), "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF="+registriesConf(), // loopback only: registry_test.go
	)
}

func setup() (*testEnv, error) {
	if err := hostdeps.Require("/", "podman", "runc", "ip", "apt-get", "dpkg-deb"); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the podman integration tests must run as root (private rootful podman services)")
	}
	e := &testEnv{}
	if err := os.MkdirAll(baseDir, 0o755); err != nil {
		return nil, err
	}
	// One run at a time on this machine: the stores are shared between runs.
	f, err := os.OpenFile(filepath.Join(baseDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	e.lock = f
	env = e // from here on, teardown undoes what was done even if setup fails

	for i := range numHosts {
		killLeftover(filepath.Join(hostDir(i), "service.pid"))
	}
	// Socket directories of aborted runs (we hold the lock: none is in use).
	if old, _ := filepath.Glob(filepath.Join(os.TempDir(), "se-podman-rt-*")); len(old) > 0 {
		for _, d := range old {
			os.RemoveAll(d)
		}
	}
	if e.sockDir, err = os.MkdirTemp("", "se-podman-rt-"); err != nil {
		return e, err
	}
	e.mungeKey = filepath.Join(e.sockDir, "munge.key")
	if err := os.WriteFile(e.mungeKey, []byte(testMungeKey), 0o400); err != nil {
		return e, err
	}
	for i := range numHosts {
		if err := writeConf(i); err != nil {
			return e, err
		}
	}
	if err := e.ensureNetwork(); err != nil {
		return e, err
	}
	if e.reg, err = startRegistry(); err != nil {
		return e, fmt.Errorf("test registry: %w", err)
	}
	for i := range numHosts {
		if err := e.startService(i); err != nil {
			return e, err
		}
	}
	for i := range numHosts {
		if err := e.removeAllContainers(i); err != nil {
			return e, fmt.Errorf("remove leftovers on host %d: %w", i, err)
		}
		if err := e.ensureImage(i); err != nil {
			return e, err
		}
	}
	return e, nil
}

func writeConf(i int) error {
	d, r := hostDir(i), filepath.Join(runDir, "host"+strconv.Itoa(i))
	for _, dir := range []string{d, filepath.Join(baseDir, "networks"), filepath.Join(r, "tmp")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
log_driver = "k8s-file"

[network]
network_config_dir = %q

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q
lock_type = "file"
tmp_dir = %q
`, filepath.Join(baseDir, "networks"), filepath.Join(r, "events.log"), filepath.Join(r, "tmp"))
	storage := fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = %q
runroot = %q
`, filepath.Join(d, "graph"), filepath.Join(r, "run"))
	if err := os.WriteFile(filepath.Join(d, "containers.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d, "storage.conf"), []byte(storage), 0o644)
}

// killLeftover ends a service an aborted run left, found by its pid file,
// only if that pid still is a podman service.
func killLeftover(pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	os.Remove(pidFile)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmd, []byte("podman\x00system\x00service")) || !bytes.Contains(cmd, []byte("se-podman-rt-")) {
		return
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	for range 100 {
		if err := p.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = p.Kill()
}

// run runs a command (argv, no shell) with host i's environment.
func run(i int, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = hostEnvVars(i)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// ensureNetwork creates the test network before the services start (they
// read the shared network config directory when they start), after the
// unreachable route that keeps its packets on this machine.
func (e *testEnv) ensureNetwork() error {
	out, err := exec.Command("ip", "route", "add", "unreachable", subnet, "metric", "4000").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "File exists") {
		return fmt.Errorf("ip route add unreachable %s: %w: %s", subnet, err, out)
	}
	if out, err := run(0, "podman", "network", "inspect", "--format", "{{range .Subnets}}{{.Subnet}}{{end}}", testNet); err == nil {
		if strings.TrimSpace(out) == subnet {
			e.netMade = true
			return nil
		}
		if _, err := run(0, "podman", "network", "rm", "-f", testNet); err != nil {
			return err
		}
	}
	if _, err := run(0, "podman", "network", "create", "--internal", "--disable-dns", "--subnet", subnet, testNet); err != nil {
		return err
	}
	e.netMade = true
	return nil
}

func (e *testEnv) startService(i int) error {
	sock := filepath.Join(e.sockDir, fmt.Sprintf("h%d.sock", i))
	e.socks[i] = "unix://" + sock
	logf, err := os.Create(filepath.Join(hostDir(i), "service.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("podman", "system", "service", "--time=0", e.socks[i])
	cmd.Env = hostEnvVars(i)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start podman system service: %w", err)
	}
	e.procs[i] = cmd
	_ = os.WriteFile(filepath.Join(hostDir(i), "service.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := bindings.NewConnection(context.Background(), e.socks[i])
		if err == nil {
			e.conns[i] = conn
			return nil
		}
		select {
		case werr := <-exited:
			e.procs[i] = nil
			log, _ := os.ReadFile(filepath.Join(hostDir(i), "service.log"))
			return fmt.Errorf("podman service for host %d exited: %v: %s", i, werr, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("podman service for host %d did not answer on %s: %w", i, e.socks[i], err)
		}
	}
}

// removeAllContainers removes every container of host i's private store:
// that store holds nothing but what these tests create.
func (e *testEnv) removeAllContainers(i int) error {
	list, err := containers.List(e.conns[i], new(containers.ListOptions).WithAll(true))
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range list {
		if _, err := containers.Remove(e.conns[i], c.ID, new(containers.RemoveOptions).WithForce(true).WithIgnore(true).WithTimeout(0)); err != nil {
			if ok, xerr := containers.Exists(e.conns[i], c.ID, nil); xerr != nil || ok {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ensureImage imports the busybox image into host i's store if missing.
func (e *testEnv) ensureImage(i int) error {
	if ok, err := images.Exists(e.conns[i], testImage, nil); err != nil || ok {
		return err
	}
	rootfs, err := busyboxRootfs()
	if err != nil {
		return err
	}
	cmd := `CMD ["` + strings.Join(idleCmd, `","`) + `"]`
	_, err = images.Import(e.conns[i], bytes.NewReader(rootfs),
		new(images.ImportOptions).WithReference(testImage).WithChanges([]string{cmd}))
	if err != nil {
		return fmt.Errorf("import %s: %w", testImage, err)
	}
	return nil
}

// busyboxRootfs returns a tar of a root filesystem holding only busybox
// (from Debian's busybox-static package) and its applet links.
func busyboxRootfs() ([]byte, error) {
	cache := filepath.Join(baseDir, "cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	debs, _ := filepath.Glob(filepath.Join(cache, "busybox-static_*.deb"))
	if len(debs) == 0 {
		dl := func() error {
			cmd := exec.Command("apt-get", "download", "busybox-static")
			cmd.Dir = cache
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("apt-get download busybox-static: %w: %s", err, out)
			}
			return nil
		}
		if err := dl(); err != nil {
			if out, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
				return nil, fmt.Errorf("%w; apt-get update: %v: %s", err, uerr, out)
			}
			if err := dl(); err != nil {
				return nil, err
			}
		}
		debs, _ = filepath.Glob(filepath.Join(cache, "busybox-static_*.deb"))
		if len(debs) == 0 {
			return nil, errors.New("apt-get download busybox-static left no .deb")
		}
	}
	x, err := os.MkdirTemp("", "se-busybox-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(x)
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], x).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, out)
	}
	bin, err := os.ReadFile(filepath.Join(x, "bin", "busybox"))
	if err != nil {
		return nil, fmt.Errorf("busybox-static package: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) error {
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, d := range []string{"bin/", "tmp/", "etc/", "proc/", "sys/", "dev/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode}, nil); err != nil {
			return nil, err
		}
	}
	if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))}, bin); err != nil {
		return nil, err
	}
	for _, a := range []string{"sh", "sleep", "cat", "hostname", "ip", "env", "ls", "true", "false", "ps", "kill"} {
		if err := add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// teardown removes every container, the network, the services and their
// sockets. The image stays in the stores for the next run.
func (e *testEnv) teardown() error {
	var errs []error
	for i := range numHosts {
		if e.conns[i] != nil {
			if err := e.removeAllContainers(i); err != nil {
				errs = append(errs, fmt.Errorf("host %d: remove containers: %w", i, err))
			}
		}
	}
	if e.netMade {
		if e.conns[0] != nil {
			if _, err := network.Remove(e.conns[0], testNet, new(network.RemoveOptions).WithForce(true)); err != nil {
				errs = append(errs, fmt.Errorf("remove network %s: %w", testNet, err))
			}
		} else if _, err := run(0, "podman", "network", "rm", "-f", testNet); err != nil {
			errs = append(errs, err)
		}
	}
	for i := range numHosts {
		if c := e.procs[i]; c != nil {
			_ = c.Process.Signal(syscall.SIGTERM)
			stopped := false
			for range 100 {
				if c.Process.Signal(syscall.Signal(0)) != nil {
					stopped = true
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !stopped {
				_ = c.Process.Kill()
			}
			os.Remove(filepath.Join(hostDir(i), "service.pid"))
		}
	}
	if e.reg != nil {
		e.reg.close()
	}
	if e.sockDir != "" {
		os.RemoveAll(e.sockDir)
	}
	if e.lock != nil {
		e.lock.Close()
	}
	return errors.Join(errs...)
}

// Helpers for tests.

// testMungeKey is the content of the test environment's munge key.
const testMungeKey = "slurm-elastic podman runtime test key\n"

// newRuntime returns a Podman for cluster on the given hosts (indices into
// the test services) with the given per-host MaxNodes/CPUs, the test munge
// key and testConfServer.
func (e *testEnv) newRuntime(t testing.TB, cluster string, hosts ...Host) *Podman {
	t.Helper()
	return e.newRuntimeKey(t, cluster, e.mungeKey, hosts...)
}

// newRuntimeKey is newRuntime with mungeKey as Options.MungeKey.
func (e *testEnv) newRuntimeKey(t testing.TB, cluster, mungeKey string, hosts ...Host) *Podman {
	t.Helper()
	return e.newRuntimeOpts(t, Options{Cluster: cluster, Hosts: hosts, MungeKey: mungeKey})
}

// newRuntimeOpts is newRuntime with o (Cluster, Hosts, MungeKey and any
// other option set there; the test defaults for the rest).
func (e *testEnv) newRuntimeOpts(t testing.TB, o Options) *Podman {
	t.Helper()
	cluster := o.Cluster
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if _, bench := t.(*testing.B); bench {
		log = slog.New(slog.DiscardHandler)
	}
	o.ConfServer, o.Timeout, o.StopTimeout, o.Logger = testConfServer, 30*time.Second, 5*time.Second, log
	p, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Remove whatever the test left of its cluster.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ps, err := New(ctx, Options{Cluster: cluster, Hosts: e.hosts(), ConfServer: testConfServer, MungeKey: e.mungeKey, Logger: log})
		if err != nil {
			t.Error(err)
			return
		}
		insts, err := ps.List(ctx)
		if err != nil {
			t.Errorf("cleanup list: %v", err)
			return
		}
		var names []string
		for _, in := range insts {
			names = append(names, in.Name)
		}
		for _, r := range ps.Terminate(ctx, names) {
			if r.Err != nil {
				t.Errorf("cleanup: %v", r.Err)
			}
		}
		p.Close()
		ps.Close()
	})
	return p
}

// testWriter sends log lines to the test log (shown on failure or -v).
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// host returns the Host for test service i.
func (e *testEnv) host(i int) Host {
	return Host{Name: "h" + strconv.Itoa(i), URI: e.socks[i]}
}

func (e *testEnv) hosts() []Host {
	hs := make([]Host, numHosts)
	for i := range hs {
		hs[i] = e.host(i)
	}
	return hs
}

// ctrsOf lists, through the fixture connection of host i, the containers
// carrying cluster's label (all states).
func (e *testEnv) ctrsOf(t testing.TB, i int, cluster string) []string {
	t.Helper()
	list, err := containers.List(e.conns[i], new(containers.ListOptions).WithAll(true).
		WithFilters(map[string][]string{"label": {"slurm-elastic.cluster=" + cluster}}))
	if err != nil {
		t.Fatalf("fixture list on host %d: %v", i, err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return ids
}

// stopService stops host i's Podman service (a host that went away); the
// test restarts it with startService before it ends (t.Cleanup).
func (e *testEnv) stopService(t testing.TB, i int) {
	t.Helper()
	c := e.procs[i]
	if c == nil {
		t.Fatalf("host %d: no service to stop", i)
	}
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	for range 100 {
		if c.Process.Signal(syscall.Signal(0)) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	e.procs[i], e.conns[i] = nil, nil
	os.Remove(strings.TrimPrefix(e.socks[i], "unix://"))
	t.Cleanup(func() {
		if e.procs[i] == nil {
			if err := e.startService(i); err != nil {
				t.Errorf("restart host %d: %v", i, err)
			}
		}
	})
}
