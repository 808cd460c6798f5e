// Package elastic starts a real elastic Slurm cluster for the e2e tests and
// `make demo`: the harness's Slurm head (24.11, or $SE_SLURM) with slurm-elastic's hooks as
// its power-save programs, configured from one slurm-elastic config file
// whose `slurm-elastic conf slurm` output is the cluster's node and
// power-save lines.
package elastic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// Paths inside the head container.
const (
	StateDirInHead  = "/var/lib/slurm-elastic"
	TokenFileInHead = "/etc/slurm-elastic/slurm.jwt"
	SharedInNodes   = "/shared"
)

// Settings is what differs between clusters: the backend the hooks use to
// reach Slurm and the timing knobs.
type Settings struct {
	Name    string // cluster name (harness Name and slurm-elastic cluster)
	Backend string // rest, scontrol or auto
	// RESTURL overrides the slurmrestd URL the hooks use (to point it at a
	// closed port); "" = the head's own slurmrestd.
	RESTURL string
	// PodmanURI overrides the Podman host URI (to point it at a missing
	// socket); "" = the cluster's Podman service.
	PodmanURI   string
	SuspendTime time.Duration // default 15s
	// Image overrides the working group's image (tests of a broken image).
	Image string
	// Raw replaces the whole rendered config when set (malformed-config tests).
	Raw string
	// CloudNodes is the size of the working group cloud[1-N]; default 4.
	// The test partitions "spill" and "all" need at least 4.
	CloudNodes int
	// Concurrency of the hooks' runtime calls; default 16.
	Concurrency int
	// Images adds the group img (nodes img[1-2], partition img) whose
	// nodes boot the cluster's image by default or, for `-C marked`,
	// MarkedImage (which the test builds); its image "other" does not
	// exist. slurm.conf then has the node features plugin and head a
	// helpers.conf (`slurm-elastic conf helpers`).
	Images bool
	// Debs, when set, are slurm-elastic .deb packages head installs with
	// dpkg instead of mounting the binaries of binDir (`make demo`).
	// binDir is still used on the host to render the slurm.conf lines.
	Debs []string
	// Kubernetes, when set, adds the section kubernetes: and the group k8s
	// (nodes k8s[1-N], partition k8s) of runtime kubernetes: one pod per
	// node, in the namespace, Secret and account of the shipped RBAC's
	// defaults (tests/kubee2e).
	Kubernetes *Kube
	// Extra is YAML appended to the rendered config: top-level sections
	// the template does not write (daemon:).
	Extra string
}

// Kube is the Kubernetes side of Settings.
type Kube struct {
	// Kubeconfig is the kubeconfig file in head; "" while the config is
	// rendered on the host for the slurm.conf lines (none exists yet).
	Kubeconfig string
	// Nodes is the size of the group k8s; default 2.
	Nodes int
	// CPUs is the group's template.cpus (the pods' CPU request and
	// limit); default 0.2.
	CPUs float64
	// MemoryMB is the group's template.memory_mb; default 512.
	MemoryMB int
}

// Cluster is a running elastic cluster.
type Cluster struct {
	*harness.Cluster
	BinDir    string
	SharedDir string // host dir mounted at /shared in every node container
	Settings  Settings
}

// SlurmExtra are the slurm.conf lines the tests add beside the rendered ones:
// a default partition and a "spill" partition where the broken group (lower
// Weight, so tried first) shares jobs with two working nodes.
const SlurmExtra = `
# Requeued jobs wait cred_expire seconds before they may start again (default 120).
AuthInfo=cred_expire=30
PartitionName=spill Nodes=broken[1-2],cloud[3-4] MaxTime=INFINITE State=UP
PartitionName=all Nodes=cloud[1-4] Default=YES MaxTime=INFINITE State=UP
`

var configTmpl = template.Must(template.New("config").Parse(`# slurm-elastic config of the test cluster {{.Name}} (written by tests/elastic).
cluster: {{.Name}}
slurm:
  backend: {{.Backend}}
  rest_url: {{.RESTURL}}
{{if .TokenFile}}  token_file: {{.TokenFile}}
{{end}}  user: slurm
  scontrol: /usr/bin/scontrol
  timeout: 5s
  conf_server: "{{.HeadIP}}"
podman:
  timeout: 20s
  munge_key: {{.MungeKey}}
  hosts:
    - name: local
      uri: {{.PodmanURI}}
log:
  file: /var/log/slurm-elastic/slurm-elastic.log
  level: debug
state_dir: {{.StateDir}}
resume:
  timeout: 45s
  concurrency: {{.Concurrency}}
suspend:
  timeout: 15s
  concurrency: {{.Concurrency}}
power_save:
  bin_dir: /usr/libexec/slurm-elastic
  resume_timeout: 60s
  suspend_timeout: 20s
  suspend_time: {{.SuspendTime}}
  resume_rate: 0
  suspend_rate: 0
groups:
  - name: cloud
    nodes: cloud[1-{{.CloudNodes}}]
    partition: cloud
    cpus: 1
    real_memory_mb: 500
    weight: 10
    template:
      image: {{.Image}}
      network: {{.Network}}
      cpus: 1
      memory_mb: 768
      dns: [none]
      mounts:
        - {source: {{.Shared}}, destination: /shared}
{{if .Images}}  - name: img
    nodes: img[1-2]
    partition: img
    cpus: 1
    real_memory_mb: 500
    images:
      - name: marked
        image: {{.MarkedImage}}
      - name: other
        image: localhost/slurm-elastic-no-such-image:0
    template:
      image: {{.Image}}
      network: {{.Network}}
      cpus: 1
      memory_mb: 768
      dns: [none]
      mounts:
        - {source: {{.Shared}}, destination: /shared}
{{end}}{{if .K8s}}  - name: k8s
    nodes: k8s[1-{{.K8sNodes}}]
    partition: k8s
    runtime: kubernetes
    cpus: 1
    real_memory_mb: 100
    template:
      image: {{.Image}}
      cpus: {{.K8sCPUs}}
      memory_mb: {{.K8sMemoryMB}}
      mounts:
        - {source: {{.Shared}}, destination: /shared}
{{end}}  - name: broken
    nodes: broken[1-2]
    partition: broken
    cpus: 1
    real_memory_mb: 500
    weight: 1
    template:
      image: localhost/slurm-elastic-no-such-image:0
      network: {{.Network}}
      dns: [none]
{{if .K8s}}kubernetes:
  kubeconfig: "{{.Kubeconfig}}"
  image_pull_policy: Never
  image_pull_grace: 10s
  timeout: 10s
{{end}}{{.Extra}}`))

// Config renders the slurm-elastic config for s on cluster c (c may be nil
// before the cluster exists: placeholders then stand for its addresses,
// which the slurm.conf lines do not depend on).
func Config(s Settings, c *harness.Cluster, shared string) (string, error) {
	if s.Raw != "" {
		return s.Raw, nil
	}
	v := map[string]string{
		"Name": s.Name, "Backend": s.Backend, "RESTURL": s.RESTURL, "TokenFile": TokenFileInHead,
		"PodmanURI": s.PodmanURI, "StateDir": StateDirInHead, "SuspendTime": s.SuspendTime.String(),
		"Image": s.Image, "Network": s.Name + "-net", "HeadIP": "10.222.0.2",
		"MungeKey": "/nonexistent/munge.key", "Shared": shared,
		"CloudNodes": strconv.Itoa(s.CloudNodes), "Concurrency": strconv.Itoa(s.Concurrency),
		"MarkedImage": MarkedImage(s.Name), "Images": "", "K8s": "",
	}
	if s.Images {
		v["Images"] = "yes"
	}
	v["Extra"] = s.Extra
	if k := s.Kubernetes; k != nil {
		v["K8s"], v["Kubeconfig"], v["K8sNodes"] = "yes", k.Kubeconfig, strconv.Itoa(max(k.Nodes, 1))
		v["K8sCPUs"], v["K8sMemoryMB"] = strconv.FormatFloat(k.CPUs, 'f', -1, 64), strconv.Itoa(k.MemoryMB)
		if c == nil {
			v["Kubeconfig"] = ""
		}
	}
	if c == nil {
		// Rendered on the host, where the token file does not exist.
		v["Backend"], v["TokenFile"] = "scontrol", ""
	}
	if c != nil {
		v["Network"], v["HeadIP"], v["MungeKey"] = c.Network, c.HeadIP, c.MungeKey
		if s.Image == "" {
			v["Image"] = c.Image
		}
	}
	if v["Image"] == "" {
		v["Image"] = "localhost/placeholder:0"
	}
	if v["RESTURL"] == "" {
		v["RESTURL"] = "http://127.0.0.1:6820"
	}
	if v["PodmanURI"] == "" {
		v["PodmanURI"] = "unix://" + harness.PodmanSocketInHead
	}
	var b bytes.Buffer
	if err := configTmpl.Execute(&b, v); err != nil {
		return "", fmt.Errorf("render config: %w", err)
	}
	return b.String(), nil
}

func (s *Settings) defaults() {
	if s.Name == "" {
		s.Name = "se-e2e"
	}
	if s.Backend == "" {
		s.Backend = "scontrol"
	}
	if s.CloudNodes == 0 {
		s.CloudNodes = 4
	}
	if s.Concurrency == 0 {
		s.Concurrency = 16
	}
	if s.SuspendTime == 0 {
		s.SuspendTime = 15 * time.Second
	}
	if k := s.Kubernetes; k != nil {
		kk := *k // the caller's stays as given
		if kk.Nodes == 0 {
			kk.Nodes = 2
		}
		if kk.CPUs == 0 {
			kk.CPUs = 0.2
		}
		if kk.MemoryMB == 0 {
			kk.MemoryMB = 512
		}
		s.Kubernetes = &kk
	}
}

// Start builds nothing (binDir must hold the built binaries), renders the
// config, turns it into slurm.conf lines with `slurm-elastic conf slurm`,
// starts the harness cluster with them, and installs the real config, the
// state directory and a JWT for the slurm user in head. It blocks (tens of
// seconds) and removes what it made on failure.
func Start(ctx context.Context, s Settings, binDir string, logw io.Writer) (_ *Cluster, err error) {
	s.defaults()
	if _, err := os.Stat(filepath.Join(binDir, "slurm-elastic-resume")); err != nil {
		return nil, fmt.Errorf("binaries: %w (build them with `make build`; SE_BIN_DIR names the directory)", err)
	}
	lines, helpers, err := slurmLines(ctx, s, binDir)
	if err != nil {
		return nil, err
	}
	names, err := NodeNames(lines)
	if err != nil {
		return nil, err
	}
	o := harness.Options{Name: s.Name, BinDir: binDir, Debs: s.Debs, NodeNames: names, SlurmConf: lines + SlurmExtra,
		HelpersConf: helpers, Log: logw}
	if len(s.Debs) > 0 {
		o.BinDir = ""
	}
	hc, err := harness.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Cluster: hc, BinDir: binDir, Settings: s, SharedDir: filepath.Join(hc.StateDir, "shared")}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop(context.WithoutCancel(ctx)))
		}
	}()
	if err := os.MkdirAll(c.SharedDir, 0o777); err != nil {
		return nil, err
	}
	if err := os.Chmod(c.SharedDir, 0o1777); err != nil {
		return nil, err
	}
	if _, err := hc.Exec(ctx, "install", "-d", "-o", "slurm", "-g", "slurm", "-m", "0750", StateDirInHead); err != nil {
		return nil, fmt.Errorf("state dir in head: %w", err)
	}
	tok, err := hc.Token(ctx, "slurm", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := hc.WriteFileInHead(ctx, TokenFileInHead, []byte(tok+"\n"), 0o600, "slurm:slurm"); err != nil {
		return nil, err
	}
	if err := c.Configure(ctx, s); err != nil {
		return nil, err
	}
	return c, nil
}

// Configure installs the config for s in head (0640 root:slurm). The hooks
// read it on their next call; slurm.conf is not changed, so s.Images is
// the cluster's, whatever s says (slurm.conf has the img group's nodes for
// the whole run: a config without the group would leave them unknown, and
// a later test would find no img group). It blocks for a few execs and is
// idempotent.
func (c *Cluster) Configure(ctx context.Context, s Settings) error {
	s.Images = c.Settings.Images
	s.defaults()
	cfg, err := Config(s, c.Cluster, c.SharedDir)
	if err != nil {
		return err
	}
	if err := c.WriteFileInHead(ctx, harness.ConfigInHead, []byte(cfg), 0o640, "root:slurm"); err != nil {
		return err
	}
	c.Settings = s
	return nil
}

// MarkedImage is the reference of the img group's image "marked" on the
// cluster called name (Settings.Images): the test builds it.
func MarkedImage(name string) string { return "localhost/slurm-elastic-marked:" + name }

// slurmLines renders the config for s on the host and turns it into
// slurm.conf lines (SlurmConfLines) and, with s.Images, helpers.conf
// (`slurm-elastic conf helpers`) with binDir's slurm-elastic.
func slurmLines(ctx context.Context, s Settings, binDir string) (lines, helpers string, err error) {
	cfg, err := Config(s, nil, "/nonexistent/shared")
	if err != nil {
		return "", "", err
	}
	f, err := os.CreateTemp("", "se-config-*.yaml")
	if err != nil {
		return "", "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(cfg); err != nil {
		return "", "", err
	}
	f.Close()
	bin := filepath.Join(binDir, "slurm-elastic")
	if lines, err = SlurmConfLines(ctx, bin, f.Name()); err != nil || !s.Images {
		return lines, "", err
	}
	cmd := exec.CommandContext(ctx, bin, "--config", f.Name(), "conf", "helpers")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("slurm-elastic conf helpers: %w: %s", err, stderr.String())
	}
	return lines, string(out), nil
}

// SlurmConfLines runs `slurmElastic --config config conf slurm` on this host
// and drops the list-valued lines the harness's base slurm.conf already
// holds merged (PrivateData, SlurmctldParameters), as the generated comment
// tells an admin to do. It blocks for the command.
func SlurmConfLines(ctx context.Context, slurmElastic, config string) (string, error) {
	cmd := exec.CommandContext(ctx, slurmElastic, "--config", config, "conf", "slurm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("slurm-elastic conf slurm: %w: %s", err, stderr.String())
	}
	return MergeableLines(string(out)), nil
}

// MergeableLines is `slurm-elastic conf slurm` output without the lines the
// harness's base slurm.conf holds merged (PrivateData, SlurmctldParameters).
func MergeableLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "PrivateData=") || strings.HasPrefix(l, "SlurmctldParameters=") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// NodeNames are the node names of the NodeName= lines in slurm.conf lines.
// It does not block.
func NodeNames(lines string) ([]string, error) {
	var out []string
	for _, l := range strings.Split(lines, "\n") {
		rest, ok := strings.CutPrefix(l, "NodeName=")
		if !ok {
			continue
		}
		expr, _, _ := strings.Cut(rest, " ")
		names, err := hostlist.Expand(expr)
		if err != nil {
			return nil, fmt.Errorf("slurm.conf line %q: %w", l, err)
		}
		out = append(out, names...)
	}
	return out, nil
}
