package healthcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/nodehealth"
	"github.com/slurm-elastic/slurm-elastic/nodehealth/gpu"
)

func TestGresGPUs(t *testing.T) {
	for gres, want := range map[string]int{
		"": 0, "(null)": 0, "gpu:4": 4, "gpu:a100:2(S:0-1)": 2, "gpu:a100:2,gpu:v100:2": 4,
		"mps:100,gpu:1": 1, "gpus:3": 0, "shard:8": 0,
	} {
		if got := GresGPUs(gres); got != want {
			t.Errorf("GresGPUs(%q) = %d, want %d", gres, got, want)
		}
	}
}

func TestChecksFromConfig(t *testing.T) {
	h := conf.Default().Health
	names := func(cs []nodehealth.Check) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name())
		}
		return out
	}
	info := func() (slurm.Node, bool) { return slurm.Node{}, false }
	cs, x := Checks(h, info, gpu.NewNVML(), false)
	if got := names(cs); !slices.Equal(got, []string{"memory", "cpus", "gpu"}) || x != nil {
		t.Fatalf("defaults: %v", got)
	}
	h.Disks = []conf.HealthDisk{{Path: "/tmp"}}
	h.Mounts = []conf.HealthMount{{Path: "/"}}
	h.Processes = []string{"slurmd"}
	h.CPUs.Expected = -1
	h.Custom = []conf.HealthCustom{{Name: "ib", Command: []string{"/bin/true"}, DrainAfter: 5}}
	cs, x = Checks(h, info, gpu.NewNVML(), true)
	if got := names(cs); !slices.Equal(got, []string{"memory", "disk", "mounts", "processes", "gpu", "xid", "ib"}) || x == nil {
		t.Fatalf("full: %v", got)
	}
	if d, ok := cs[6].(nodehealth.DrainAfterer); !ok || d.DrainAfter() != 5 {
		t.Fatal("custom drain_after lost")
	}
}

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	sh, err := osexec.LookPath("sh")
	if err != nil {
		t.Fatalf("these tests need sh: %v", err)
	}
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!"+sh+"\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func config(t *testing.T, custom string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	// A node-side file as packaging/health.yaml: slurm, log, health only.
	body := `slurm: {backend: scontrol}
log: {file: stderr, level: error}
health:
  node: n1
  memory: {min_total_percent: 0, min_available_percent: 0}
  cpus: {expected: -1}
  custom:
    - name: scratch
      command: [` + custom + `]
`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMainOnce(t *testing.T) {
	failing := config(t, script(t, "echo '/scratch is full'; exit 1"))
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{Program, "--config", failing, "--once", "--no-slurm"}, &out, &errb)
	if code != exitcode.Failed || !strings.Contains(out.String(), "FAIL scratch: /scratch is full (drain)\n") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	code = Main(context.Background(), []string{Program, "-c", failing, "--once", "--json", "--no-slurm"}, &out, &errb)
	var doc struct {
		Node     string
		Findings []struct{ Check, Component, Status, Action, Message string }
		Exit     int
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	i := slices.IndexFunc(doc.Findings, func(f struct{ Check, Component, Status, Action, Message string }) bool {
		return f.Check == "scratch"
	})
	if code != exitcode.Failed || doc.Exit != 1 || doc.Node != "n1" || i < 0 || doc.Findings[i].Status != "FAIL" || doc.Findings[i].Action != "drain" {
		t.Fatalf("exit %d: %+v", code, doc)
	}
	out.Reset()
	healthy := config(t, script(t, "exit 0"))
	if code := Main(context.Background(), []string{Program, "-c", healthy, "--once", "--no-slurm"}, &out, &errb); code != exitcode.OK {
		t.Fatalf("healthy: exit %d\n%s", code, out.String())
	}
	unknown := config(t, script(t, "echo no data; exit 2"))
	if code := Main(context.Background(), []string{Program, "-c", unknown, "--once", "--no-slurm"}, &out, &errb); code != exitcode.Unknown {
		t.Fatalf("unknown: exit %d", code)
	}
	// Slurm's HealthCheckProgram: no arguments, the link's name means once.
	t.Setenv(conf.EnvConfig, "/nonexistent/config.yaml") // the head's variable is not read
	t.Setenv(conf.EnvHealthConfig, failing)
	out.Reset()
	// (Run as the daemon, it would block until the deadline and exit 0.)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := Main(ctx, []string{"/usr/sbin/" + conf.HealthCheckProgramName, "--no-slurm"}, &out, &errb); code != exitcode.Failed ||
		!strings.Contains(out.String(), "FAIL scratch: /scratch is full (drain)\n") {
		t.Fatalf("as %s: exit %d\n%s", conf.HealthCheckProgramName, code, out.String())
	}
	if code := Main(context.Background(), []string{Program, "-c", "/nonexistent.yaml", "--once"}, &out, &errb); code != exitcode.Config {
		t.Fatalf("missing config: exit %d", code)
	}
	if code := Main(context.Background(), []string{Program, "--bogus"}, &out, &errb); code != exitcode.Usage {
		t.Fatalf("unknown option: exit %d, want %d", code, exitcode.Usage)
	}
	if code := Main(context.Background(), []string{Program, "-c", "/nonexistent.yaml", "extra"}, &out, &errb); code != exitcode.Usage {
		t.Fatalf("unexpected argument: exit %d, want %d", code, exitcode.Usage)
	}
}

// stub is a check with a fixed finding.
type stub struct{ f nodehealth.Finding }

func (s stub) Name() string                             { return "stub" }
func (s stub) Run(context.Context) []nodehealth.Finding { return []nodehealth.Finding{s.f} }

// up strips the power flags the fake starts nodes with.
type up struct{ *slurmfake.Fake }

func (u up) Nodes(ctx context.Context, names ...string) ([]slurm.Node, error) {
	ns, err := u.Fake.Nodes(ctx, names...)
	for i := range ns {
		ns[i].Flags = slices.DeleteFunc(ns[i].Flags, func(f string) bool { return f == slurm.FlagPoweredDown })
	}
	return ns, err
}

func TestOnceDrainsAndUndrains(t *testing.T) {
	f := slurmfake.New("n1")
	run := func(fd nodehealth.Finding) (int, string) {
		var out bytes.Buffer
		r := &nodehealth.Runner{Node: "n1", Slurm: up{f}, Checks: []nodehealth.Check{stub{fd}},
			Policy: nodehealth.Policy{DrainAfter: 5, UndrainAfter: 5}}
		code, err := once(context.Background(), r, false, &out)
		if err != nil {
			t.Fatal(err)
		}
		return code, out.String()
	}
	code, out := run(nodehealth.Failf("/scratch", nodehealth.ActionDrain, "full"))
	n, _ := f.Node("n1")
	if code != 1 || !slices.Contains(n.Flags, slurm.FlagDrain) || n.Reason != "slurm-elastic-health: stub: /scratch: full" ||
		!strings.Contains(out, "drain n1:") {
		t.Fatalf("once with a failure: exit %d, node %+v\n%s", code, n, out)
	}
	code, _ = run(nodehealth.OKf("/scratch", "50%% free"))
	if n, _ := f.Node("n1"); code != 0 || slices.Contains(n.Flags, slurm.FlagDrain) {
		t.Fatalf("once after the fix: exit %d, node %+v", code, n)
	}
}

// TestNodeConfigNeedsNoHeadSecrets: the daemon validates only the sections
// it uses. A file with the head's sections whose secrets do not exist here
// (the slurmrestd token, a Podman SSH key) runs with backend scontrol; one
// whose own backend is rest needs its token file, and the error names the
// key and the file; a typo anywhere is still an error.
func TestNodeConfigNeedsNoHeadSecrets(t *testing.T) {
	ok := script(t, "exit 0")
	health := `
log: {file: stderr, level: error}
health:
  node: n1
  memory: {min_total_percent: 0, min_available_percent: 0}
  cpus: {expected: -1}
  custom: [{name: ok, command: [` + ok + `]}]
`
	head := `cluster: test
podman:
  hosts: [{name: far, uri: "ssh://slurm@far/run/podman/podman.sock", identity: /nonexistent/id_ed25519}]
groups: [{name: cpu, nodes: "n[1-2]", template: {image: "localhost/node:1", network: slurm}}]
resume: {timeout: 500s}
`
	for _, c := range []struct {
		name, body string
		code       int
		stderr     []string
	}{
		{"node file, scontrol", "slurm: {backend: scontrol}" + health, exitcode.OK, nil},
		{"node file, no slurm section", health, exitcode.OK, nil},
		{"head file with absent secrets, scontrol", head + "slurm: {backend: scontrol, rest_url: \"http://127.0.0.1:6820\", token_file: /nonexistent/jwt}" + health, exitcode.OK, nil},
		{"rest backend needs its token", "slurm: {backend: rest, rest_url: \"http://127.0.0.1:6820\", token_file: /nonexistent/jwt}" + health, exitcode.Config,
			[]string{": slurm.token_file: stat /nonexistent/jwt"}},
		{"rest backend without token", "slurm: {backend: rest, rest_url: \"http://127.0.0.1:6820\"}" + health, exitcode.Config,
			[]string{": slurm.token_file: required with backend rest: the file holding slurmrestd's JWT (or use backend scontrol"}},
		{"bad health key value", "slurm: {backend: scontrol}" + strings.Replace(health, "node: n1", "node: n1\n  drain_after: 0", 1), exitcode.Config,
			[]string{": health.drain_after: 0: must be at least 1"}},
		{"typo in an unused section", "slurm: {backend: scontrol}\npodman: {hostz: []}" + health, exitcode.Config,
			[]string{": podman.hostz: unknown key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "health.yaml")
			if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := Main(context.Background(), []string{Program, "--config", p, "--once", "--no-slurm"}, &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out.String(), errb.String())
			}
			for _, s := range c.stderr {
				if !strings.Contains(errb.String(), p+s) {
					t.Errorf("stderr lacks %q:\n%s", p+s, errb.String())
				}
			}
		})
	}
}
