package packaged

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// The slurmrestd token, created as docs/operations.md ("The slurmrestd token") tells
// admins to; TestDocsTokenSteps keeps these two lines in the docs. The file is the
// example's slurm.token_file.
const (
	tokenFile    = "/etc/slurm-elastic/slurmrestd.jwt"
	docsTokenNew = "install -o slurm -g slurm -m 0600 /dev/null " + tokenFile
	docsTokenSet = "scontrol token username=slurm lifespan=7776000 | sed -n 's/^SLURM_JWT=//p' > " + tokenFile
)

// healthLogInNode is log.file of the health package's node-side config (packaging/health.yaml).
const healthLogInNode = "/var/log/slurm-elastic/slurm-elastic-health.log"

// site holds the names an admin must choose for the shipped example.
type site struct {
	Cluster    string // cluster
	ConfServer string // slurm.conf_server
	MungeKey   string // podman.munge_key: the cluster's munge key on the Podman host
	Network    string // groups[].template.network
	ImageTag   string // the tag of groups[].template.image
	PodmanURI  string // podman.hosts[].uri
}

// example is the part of the shipped config adminEdits reads.
type example struct {
	Slurm struct {
		TokenFile string `yaml:"token_file"`
	} `yaml:"slurm"`
	Podman struct {
		MungeKey string `yaml:"munge_key"`
		Hosts    []struct {
			Name string `yaml:"name"`
			URI  string `yaml:"uri"`
		} `yaml:"hosts"`
	} `yaml:"podman"`
	Groups []struct {
		Name     string `yaml:"name"`
		Template struct {
			Image   string            `yaml:"image"`
			Network string            `yaml:"network"`
			Env     map[string]string `yaml:"env"`
		} `yaml:"template"`
	} `yaml:"groups"`
	PowerSave struct {
		SuspendTime    string `yaml:"suspend_time"`
		SuspendTimeout string `yaml:"suspend_timeout"`
	} `yaml:"power_save"`
}

// launchedGroup is the example's group the test boots (its partition too).
const launchedGroup = "cpu"

// adminEdits are the only changes made to the shipped example: the names a site must
// choose, plus two lines this test needs and an admin may set:
//   - groups[].template.dns: [none]: this machine's network rule (traffic only to loopback
//     and the project's own containers) forbids node containers a copy of the host's name
//     servers; nodes are addressed by IP, so they need none.
//   - groups[cpu].template.env.SLURM_ELASTIC_HEALTH: "1": docs/operations.md's way to run
//     the health daemon in a node container of packaging/node.
//
// podman.munge_key is substituted only because the harness's key (the cluster's, which
// the admin puts on each Podman host) is not at the example's default path on this Podman
// host (this machine): a host-specific path an admin chooses. The Podman URI is the
// example's own (the harness mounts the API socket at /run/podman/podman.sock in head),
// so it is not edited unless it differs.
func adminEdits(s site, src []byte) []yamlEdit {
	var ex example
	if err := yaml.Unmarshal(src, &ex); err != nil {
		return []yamlEdit{{Path: "unparsable example: " + err.Error()}}
	}
	edits := []yamlEdit{{"cluster", s.Cluster}, {"slurm/conf_server", s.ConfServer}}
	for _, h := range ex.Podman.Hosts {
		if h.URI != s.PodmanURI {
			edits = append(edits, yamlEdit{"podman/hosts/" + h.Name + "/uri", s.PodmanURI})
		}
	}
	if mk := cmpOr(ex.Podman.MungeKey, "/etc/munge/munge.key"); mk != s.MungeKey {
		edits = append(edits, yamlEdit{"podman/munge_key", s.MungeKey})
	}
	for _, g := range ex.Groups {
		p := "groups/" + g.Name + "/template/"
		if g.Template.Network != s.Network {
			edits = append(edits, yamlEdit{p + "network", s.Network})
		}
		edits = append(edits, yamlEdit{p + "dns", "[none]"})
		if g.Name != launchedGroup {
			continue
		}
		edits = append(edits, yamlEdit{p + "image", retag(g.Template.Image, s.ImageTag)})
		if g.Template.Env == nil {
			edits = append(edits, yamlEdit{p + "env", `{SLURM_ELASTIC_HEALTH: "1"}`})
		} else {
			edits = append(edits, yamlEdit{p + "env/SLURM_ELASTIC_HEALTH", `"1"`})
		}
	}
	return edits
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// retag replaces the tag of an image reference (or adds one).
func retag(ref, tag string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref + ":" + tag
}

// TestPackagedExample is the packaged path end to end, from the shipped files only:
// head installs slurm-elastic's .deb (SE_E2E_DEB, or built here from SE_BIN_DIR as
// `make deb-head` does); the admin edits the installed example config (adminEdits),
// creates the slurmrestd token as the docs say, renders slurm.conf with `slurm-elastic
// conf slurm` and starts the reconciler with the shipped unit's ExecStart and User; the
// node image is packaging/node with the slurm-elastic-health package, tagged as the
// example's image with only the tag changed. A two-node job on the example's cpu
// partition boots two nodes that run the health daemon with the packaged node-side
// config (no head secrets); they power down after SuspendTime; the reconciler's rounds
// and the health daemons log no error.
func TestPackagedExample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster in Podman: not run with -short")
	}
	binDir := os.Getenv("SE_BIN_DIR")
	if binDir == "" {
		t.Fatal("SE_BIN_DIR is not set: run with `make test`, which builds the binaries first")
	}
	// Its own cluster: SE_E2E_NAME (default se-e2e) + "-pkg", apart from tests/e2e's.
	name := cmpOr(os.Getenv("SE_E2E_NAME"), "se-e2e") + "-pkg"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()

	// The packages.
	deb := os.Getenv("SE_E2E_DEB")
	if deb == "" {
		if deb, err = elastic.BuildPackage(ctx, root, binDir, dist, "slurm-elastic"); err != nil {
			t.Fatal(err)
		}
	}
	hbin, err := elastic.HealthBinDir(ctx, root, binDir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hdeb, err := elastic.BuildPackage(ctx, root, hbin, dist, "slurm-elastic-health")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("packages: %s, %s", deb, hdeb)

	// The package's own files on this host: its example config (the conffile) and its
	// slurm-elastic, which renders slurm.conf before head exists.
	pkgRoot := t.TempDir()
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, pkgRoot).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	shipped := readFile(t, filepath.Join(root, "packaging/config.yaml"))
	if got := readFile(t, filepath.Join(pkgRoot, harness.ConfigInHead)); !bytes.Equal(got, shipped) {
		t.Fatalf("%s of %s differs from packaging/config.yaml: rebuild the package (make deb-head)", harness.ConfigInHead, deb)
	}

	subnet, err := harness.FreeSubnet(name)
	if err != nil {
		t.Fatal(err)
	}
	headIP, err := harness.SubnetHost(subnet, 2)
	if err != nil {
		t.Fatal(err)
	}
	s := site{Cluster: name, ConfServer: headIP, MungeKey: harness.MungeKeyPath(name), Network: name + "-net",
		ImageTag: name, PodmanURI: "unix://" + harness.PodmanSocketInHead}
	edits := adminEdits(s, shipped)
	edited, err := applyEdits(shipped, edits)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("admin edits of the shipped config: %v", edits)
	var ex example
	if err := yaml.Unmarshal(edited, &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Slurm.TokenFile != tokenFile {
		t.Fatalf("the example's slurm.token_file is %q; the docs' token steps write %s", ex.Slurm.TokenFile, tokenFile)
	}
	image := ""
	for _, g := range ex.Groups {
		if g.Name == launchedGroup {
			image = g.Template.Image
		}
	}
	if image == "" {
		t.Fatalf("the example has no group %q", launchedGroup)
	}

	// slurm.conf is written before head starts, so it is rendered here, by the package's
	// own binary, from the same edited bytes. The token file exists only in head (the
	// admin creates it there below), so the validation here reads an empty stand-in
	// (SLURM_ELASTIC_SLURM_TOKEN_FILE); the token is not part of the slurm.conf lines. The
	// admin's own render in head, with the real token, must print the same lines.
	tmp := t.TempDir()
	cfgHost := filepath.Join(tmp, "config.yaml")
	if err := os.WriteFile(cfgHost, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "token"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLURM_ELASTIC_SLURM_TOKEN_FILE", filepath.Join(tmp, "token"))
	lines, err := elastic.SlurmConfLines(ctx, filepath.Join(pkgRoot, "usr/bin/slurm-elastic"), cfgHost)
	if err != nil {
		t.Fatal(err)
	}
	os.Unsetenv("SLURM_ELASTIC_SLURM_TOKEN_FILE")
	names, err := elastic.NodeNames(lines)
	if err != nil {
		t.Fatal(err)
	}

	c, err := harness.Start(ctx, harness.Options{Name: name, Subnet: subnet, Debs: []string{deb},
		NodeNames: names, SlurmConf: lines, Log: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if t.Failed() {
			t.Logf("diagnostics:\n%s", c.Diagnostics(sctx))
		}
		if err := c.Stop(sctx); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	if c.MungeKey != s.MungeKey || c.HeadIP != headIP || c.Network != s.Network {
		t.Fatalf("cluster: munge key %s, head %s, network %s; the config names %s, %s, %s",
			c.MungeKey, c.HeadIP, c.Network, s.MungeKey, headIP, s.Network)
	}
	inHead := func(args ...string) string {
		t.Helper()
		out, err := c.Exec(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// The admin on head: the package's config, edited in place.
	if got := inHead("cat", harness.ConfigInHead); got != string(shipped) {
		t.Fatalf("head's %s (installed by the package) differs from packaging/config.yaml", harness.ConfigInHead)
	}
	if err := c.WriteFileInHead(ctx, harness.ConfigInHead, edited, 0o640, "root:slurm"); err != nil {
		t.Fatal(err)
	}
	inHead(strings.Fields(docsTokenNew)...)
	inHead("sh", "-c", docsTokenSet)
	if tok := inHead("cat", tokenFile); strings.Count(strings.TrimSpace(tok), ".") != 2 {
		t.Fatalf("%s does not hold a JWT after the docs' steps", tokenFile)
	}
	t.Logf("slurm-elastic conf check: %s", strings.TrimSpace(inHead("slurm-elastic", "conf", "check")))
	// The same settings (comments name the file rendered from).
	if got := elastic.MergeableLines(inHead("slurm-elastic", "conf", "slurm")); !slices.Equal(settings(got), settings(lines)) {
		t.Fatalf("`slurm-elastic conf slurm` in head:\n%s\nslurm.conf has:\n%s", got, lines)
	}
	if conf := inHead("cat", "/etc/slurm/slurm.conf"); !strings.Contains(conf, lines) {
		t.Fatalf("head's slurm.conf lacks the rendered lines")
	}

	// The node image: packaging/node with the health package, tagged as the example's
	// image with only the tag changed.
	t.Cleanup(func() {
		if out, err := c.Podman(context.Background(), "rmi", "-f", image); err != nil {
			t.Logf("podman rmi %s: %v\n%s", image, err, out)
		}
	})
	t0 := time.Now()
	if err := elastic.BuildNodeImage(ctx, c, root, image, dist); err != nil {
		t.Fatal(err)
	}
	t.Logf("node image %s built in %v", image, time.Since(t0).Round(time.Second))

	// Issue 11, defect 2: root tries the reconciler and its status before the service
	// starts (and before any hook ran), creating the first files of the state and log
	// directories. They must stay usable by SlurmUser: the unit's daemon and the hooks
	// slurmctld runs as SlurmUser use them next (checked after the run, ownedBySlurm).
	rootFirst(ctx, t, c)

	// The reconciler, as the installed unit runs it.
	unitLogStart := len(readFile(t, filepath.Join(c.LogDir, "slurm-elastic.log"))) // after root's runs
	daemonOut := startDaemon(ctx, t, c)
	waitFor(t, 2*time.Minute, "the reconciler's first round", func() (bool, string) {
		st, _ := c.Exec(ctx, "slurm-elastic", "status")
		return strings.Contains(st, "daemon: running") && strings.Contains(st, "last round: "), st
	})

	// A two-node job on the example's partition, run from a shared home directory (the
	// example mounts the Podman host's /home in every node).
	home, err := os.MkdirTemp("/home", name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	out := inHead("sbatch", "--parsable", "-p", launchedGroup, "-N2", "--chdir", home, "--wrap", "srun hostname")
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	var j job
	waitFor(t, 6*time.Minute, "job "+id+" COMPLETED", func() (bool, string) {
		j = getJob(ctx, t, c, id)
		for _, bad := range []string{"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY"} {
			if slices.Contains(j.State, bad) {
				t.Fatalf("job %s ended %v (reason %s)", id, j.State, j.Reason)
			}
		}
		return slices.Contains(j.State, "COMPLETED"), fmt.Sprintf("%+v", j)
	})
	jobNodes, err := hostlist.Expand(j.Nodes)
	if err != nil || len(jobNodes) != 2 {
		t.Fatalf("job %s ran on %q (%v), want two nodes", id, j.Nodes, err)
	}
	printed := strings.Fields(string(readFile(t, filepath.Join(home, "slurm-"+id+".out"))))
	slices.Sort(printed)
	if !slices.Equal(printed, jobNodes) {
		t.Fatalf("job %s printed %q, want the names of its nodes %q", id, printed, jobNodes)
	}
	t.Logf("job %s on %s printed %q", id, j.Nodes, printed)

	// The health daemon in each node: started, with the package's node-side config,
	// no head secret in the node, and no error in its log.
	healthYAML := readFile(t, filepath.Join(root, "packaging/health.yaml"))
	for _, n := range jobNodes {
		ctr := nodeContainer(ctx, t, c, name, n)
		pinHead := func(args ...string) (string, error) {
			return c.Podman(ctx, append([]string{"exec", ctr}, args...)...)
		}
		if out, err := pinHead("pgrep", "-f", "^/usr/sbin/slurm-elastic-health "); err != nil {
			t.Errorf("%s: no slurm-elastic-health process: %v %s", n, err, out)
		}
		if got, err := pinHead("cat", "/etc/slurm-elastic/health.yaml"); err != nil || got != string(healthYAML) {
			t.Errorf("%s: /etc/slurm-elastic/health.yaml is not the package's packaging/health.yaml (%v)", n, err)
		}
		for _, secret := range []string{harness.ConfigInHead, tokenFile} {
			if _, err := pinHead("test", "!", "-e", secret); err != nil {
				t.Errorf("%s: the node has the head's %s", n, secret)
			}
		}
		log, err := pinHead("cat", healthLogInNode)
		if err != nil {
			t.Errorf("%s: health log: %v", n, err)
			continue
		}
		if !strings.Contains(log, `"msg":"health daemon started"`) {
			t.Errorf("%s: the health daemon did not start:\n%s", n, log)
		}
		for _, l := range logLines(log, "", "ERROR") {
			t.Errorf("%s: health daemon error: %s", n, l)
		}
		for _, l := range logLines(log, "", "WARN") {
			t.Logf("%s: health daemon warning: %s", n, l)
		}
		if nd := getNode(ctx, t, c, n); strings.HasPrefix(nd.Reason, "slurm-elastic-health:") {
			t.Errorf("%s: drained by the health daemon: %s", n, nd.Reason)
		}
	}

	// The nodes power down after SuspendTime (plus SuspendTimeout, and the reconciler's
	// round), and every container is gone.
	suspend, err := time.ParseDuration(ex.PowerSave.SuspendTime)
	if err != nil {
		t.Fatalf("power_save.suspend_time %q: %v", ex.PowerSave.SuspendTime, err)
	}
	suspendTimeout, err := time.ParseDuration(cmpOr(ex.PowerSave.SuspendTimeout, "60s"))
	if err != nil {
		t.Fatalf("power_save.suspend_timeout %q: %v", ex.PowerSave.SuspendTimeout, err)
	}
	waitFor(t, suspend+suspendTimeout+3*time.Minute, "the job's nodes powered down, no container left", func() (bool, string) {
		var state []string
		down := true
		for _, n := range jobNodes {
			nd := getNode(ctx, t, c, n)
			state = append(state, n+"="+strings.Join(nd.State, "+"))
			down = down && slices.Contains(nd.State, "POWERED_DOWN") && !slices.Contains(nd.State, "POWERING_DOWN")
		}
		ctrs, err := c.Podman(ctx, "ps", "-a", "--filter", "label=slurm-elastic.cluster="+name, "--format", "{{.Names}}")
		return down && err == nil && strings.TrimSpace(ctrs) == "", fmt.Sprintf("%v containers %q %v", state, ctrs, err)
	})

	// The reconciler: still running, its last round ok, and no warning or error.
	st := inHead("slurm-elastic", "status")
	t.Logf("slurm-elastic status:\n%s", st)
	if !strings.Contains(st, "daemon: running") || !regexp.MustCompile(`(?m)^last round: .*, ok in `).MatchString(st) {
		t.Errorf("slurm-elastic status after the run:\n%s", st)
	}
	select {
	case <-daemonOut.done:
		t.Errorf("the reconciler exited: %v\n%s", daemonOut.err, daemonOut.out.String())
	default:
	}
	hookLog := string(readFile(t, filepath.Join(c.LogDir, "slurm-elastic.log")))
	if n := len(logLinesMsg(hookLog[unitLogStart:], "slurm-elastic-daemon", "reconciler started")); n != 1 {
		t.Errorf("%d \"reconciler started\" lines in the log since the unit's daemon started, want 1", n)
	}
	for _, lvl := range []string{"WARN", "ERROR"} {
		for _, l := range logLines(hookLog, "slurm-elastic-daemon", lvl) {
			t.Errorf("reconciler %s: %s", lvl, l)
		}
	}
	for _, l := range logLines(hookLog, "", "ERROR") {
		t.Errorf("hook error: %s", l)
	}
	ownedBySlurm(ctx, t, c)
}

// The directories of the packaged config (state_dir, log.file's) in head.
var slurmDirs = []string{"/var/lib/slurm-elastic", "/var/log/slurm-elastic"}

// rootFirst runs, as root in head, `slurm-elastic daemon --once` and `slurm-elastic
// status` while the state and log directories hold nothing of slurm-elastic's yet (an
// admin trying the daemon before `systemctl enable --now`), and checks they created the
// files the unit's daemon and the hooks need (the log, the daemon lock), so that
// ownedBySlurm after the run checks files root made. Before issue 11's fix these were
// root's, and every hook run as SlurmUser failed to open its log and did nothing.
func rootFirst(ctx context.Context, t *testing.T, c *harness.Cluster) {
	t.Helper()
	if out, err := c.Exec(ctx, "find", slurmDirs[0], slurmDirs[1], "-mindepth", "1"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("the state and log directories are not fresh before root's runs: %v\n%s", err, out)
	}
	out, err := c.Exec(ctx, "slurm-elastic", "daemon", "--once")
	t.Logf("root: slurm-elastic daemon --once: %v\n%s", err, out)
	out, err = c.Exec(ctx, "slurm-elastic", "status")
	t.Logf("root: slurm-elastic status: %v\n%s", err, out)
	files, err := c.Exec(ctx, "find", slurmDirs[0], slurmDirs[1], "-mindepth", "1", "-printf", "%u:%g %m %p\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("created by root's runs:\n%s", files)
	for _, want := range []string{slurmDirs[0] + "/daemon.lock", slurmDirs[1] + "/slurm-elastic.log"} {
		if !strings.Contains(files, " "+want+"\n") {
			t.Fatalf("root's runs did not create %s:\n%s", want, files)
		}
	}
}

// ownedBySlurm checks that every file and directory in the state and log directories
// belongs to SlurmUser (the unit's User), whoever created it.
func ownedBySlurm(ctx context.Context, t *testing.T, c *harness.Cluster) {
	t.Helper()
	out, err := c.Exec(ctx, "find", slurmDirs[0], slurmDirs[1], "(", "!", "-user", "slurm", "-o", "!", "-group", "slurm", ")", "-printf", "%u:%g %m %p\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("files in the state and log directories not owned by slurm:slurm:\n%s", out)
	}
}

// daemonProc is the reconciler started by startDaemon.
type daemonProc struct {
	out  *bytes.Buffer // its stdout and stderr (podman exec's)
	done chan struct{} // closed when it exits; err is then set
	err  error
}

// startDaemon runs the reconciler in head as the unit installed by the package says
// (ExecStart, User, Group, UMask; there is no systemd in the container), in the
// background, until the test ends.
func startDaemon(ctx context.Context, t *testing.T, c *harness.Cluster) *daemonProc {
	t.Helper()
	files, err := c.Exec(ctx, "dpkg", "-L", "slurm-elastic")
	if err != nil {
		t.Fatal(err)
	}
	unitPath := ""
	for _, f := range strings.Fields(files) {
		if strings.HasSuffix(f, "/systemd/system/slurm-elastic.service") {
			unitPath = f
		}
	}
	if unitPath == "" {
		t.Fatalf("the slurm-elastic package installs no slurm-elastic.service:\n%s", files)
	}
	text, err := c.Exec(ctx, "cat", unitPath)
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(text)
	if err != nil {
		t.Fatalf("%s: %v", unitPath, err)
	}
	t.Logf("%s: User=%s Group=%s UMask=%s ExecStart=%q", unitPath, u.User, u.Group, u.UMask, u.ExecStart)
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"exec", c.Head}, u.command()...)
	cmd := exec.Command(podman, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	d := &daemonProc{out: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		// The process in head ends with the container; this ends podman exec.
		cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("reconciler output:\n%s", d.out.String())
		}
	})
	return d
}

// unit is what startDaemon takes from a systemd service unit.
type unit struct {
	ExecStart          []string
	User, Group, UMask string
}

// parseUnit reads ExecStart, User, Group and UMask of the [Service] section. ExecStart
// must be one plain command line (no quotes, variables or specifiers): the test runs it
// as argv, never through a shell.
func parseUnit(text string) (unit, error) {
	var u unit
	section := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if section != "[Service]" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return u, fmt.Errorf("line %d: %q is not KEY=VALUE", i+1, line)
		}
		switch strings.TrimSpace(k) {
		case "ExecStart":
			if u.ExecStart != nil {
				return u, fmt.Errorf("line %d: a second ExecStart (Type=simple has one)", i+1)
			}
			v = strings.TrimLeft(strings.TrimSpace(v), "-@:+!")
			if strings.ContainsAny(v, "\"'$%\\;") {
				return u, fmt.Errorf("line %d: ExecStart %q: quotes, variables, specifiers are not supported here", i+1, v)
			}
			u.ExecStart = strings.Fields(v)
		case "User":
			u.User = strings.TrimSpace(v)
		case "Group":
			u.Group = strings.TrimSpace(v)
		case "UMask":
			u.UMask = strings.TrimSpace(v)
		}
	}
	if len(u.ExecStart) == 0 {
		return u, errors.New("no ExecStart in [Service]")
	}
	if u.User == "" {
		return u, errors.New("no User= in [Service]: the unit would run as root")
	}
	return u, nil
}

// command is the unit's service as argv for head: runuser to User (and Group), umask
// UMask (systemd's default 0022 when unset), then ExecStart. The shell string is fixed;
// the values are its arguments.
func (u unit) command() []string {
	a := []string{"runuser", "-u", u.User}
	if u.Group != "" {
		a = append(a, "-g", u.Group)
	}
	a = append(a, "--", "/bin/sh", "-c", `umask "$1" && shift && exec "$@"`, "sh", cmpOr(u.UMask, "0022"))
	return append(a, u.ExecStart...)
}

type job struct {
	ID     int      `json:"job_id"`
	State  []string `json:"job_state"`
	Nodes  string   `json:"nodes"`
	Reason string   `json:"state_reason"`
}

func getJob(ctx context.Context, t *testing.T, c *harness.Cluster, id string) job {
	t.Helper()
	var v struct {
		Jobs []job `json:"jobs"`
	}
	out, err := c.Exec(ctx, "scontrol", "--json", "show", "job", id)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Jobs) != 1 {
		t.Fatalf("scontrol --json show job %s: %v\n%s", id, err, out)
	}
	return v.Jobs[0]
}

type node struct {
	Name   string   `json:"name"`
	State  []string `json:"state"`
	Reason string   `json:"reason"`
}

func getNode(ctx context.Context, t *testing.T, c *harness.Cluster, name string) node {
	t.Helper()
	var v struct {
		Nodes []node `json:"nodes"`
	}
	out, err := c.Exec(ctx, "scontrol", "--json", "show", "node", name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Nodes) != 1 {
		t.Fatalf("scontrol --json show node %s: %v\n%s", name, err, out)
	}
	return v.Nodes[0]
}

// nodeContainer is the name of the running container of node n of cluster.
func nodeContainer(ctx context.Context, t *testing.T, c *harness.Cluster, cluster, n string) string {
	t.Helper()
	out, err := c.Podman(ctx, "ps", "--filter", "label=slurm-elastic.cluster="+cluster,
		"--filter", "label=slurm-elastic.node="+n, "--format", "{{.Names}}")
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Fields(out)
	if len(names) != 1 {
		t.Fatalf("node %s: running containers %q, want one", n, names)
	}
	return names[0]
}

// logLines are the JSON log lines of program ("" = any) at level.
func logLines(log, program, level string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		var e struct {
			Level   string `json:"level"`
			Program string `json:"program"`
		}
		if json.Unmarshal([]byte(l), &e) != nil {
			continue
		}
		if e.Level == level && (program == "" || e.Program == program) {
			out = append(out, l)
		}
	}
	return out
}

// logLinesMsg are the JSON log lines of program with message msg.
func logLinesMsg(log, program, msg string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		var e struct {
			Msg     string `json:"msg"`
			Program string `json:"program"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Msg == msg && e.Program == program {
			out = append(out, l)
		}
	}
	return out
}

// settings are the lines of slurm.conf text that are neither blank nor comments.
func settings(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond every second until it holds or d passes (a bound, not a timing
// assertion: every wait here is for something Slurm does in far less).
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v still waiting for %s; last seen: %s", d, what, state)
		}
		time.Sleep(time.Second)
	}
}
