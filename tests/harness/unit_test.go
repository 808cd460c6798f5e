package harness

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/tests/image"
)

// TestRebootProgramInImages: power_save.reboot_program's default names the
// program both node images install (the test image here, the shipped one
// by packaging/node/Containerfile).
func TestRebootProgramInImages(t *testing.T) {
	if conf.DefaultRebootProgram != image.NodeRebootPath {
		t.Errorf("conf.DefaultRebootProgram %s, test image installs %s", conf.DefaultRebootProgram, image.NodeRebootPath)
	}
	cf, err := os.ReadFile("../../packaging/node/Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cf), "COPY slurm-elastic-node-reboot "+conf.DefaultRebootProgram+"\n") {
		t.Errorf("packaging/node/Containerfile does not install %s", conf.DefaultRebootProgram)
	}
}

func TestParseSubnet(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"10.222.7.0/24", true},
		{"10.222.199.0/24", true},
		{"10.222.250.0/24", false}, // runtime/podman tests
		{"10.222.7.0/25", false},
		{"10.222.7.5/24", false},
		{"10.223.7.0/24", false},
		{"192.168.1.0/24", false},
		{"fd00::/64", false},
		{"nonsense", false},
	} {
		_, err := parseSubnet(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseSubnet(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestSubnetHost(t *testing.T) {
	if got, err := SubnetHost("10.222.7.0/24", 10); err != nil || got != "10.222.7.10" {
		t.Fatalf("SubnetHost = %q, %v", got, err)
	}
	for _, h := range []int{0, 255} {
		if _, err := SubnetHost("10.222.7.0/24", h); err == nil {
			t.Errorf("SubnetHost(%d) accepted", h)
		}
	}
}

func TestBridgeNameFitsIFNAMSIZ(t *testing.T) {
	a, b := bridgeName("se-e2e"), bridgeName("se-e2f")
	if len(a) > 15 || a == b || !strings.HasPrefix(a, "se") {
		t.Fatalf("bridge names %q %q", a, b)
	}
}

func TestSlurmConfBase(t *testing.T) {
	c := &Cluster{Name: "se-x", Head: "se-x-head", HeadIP: "10.222.7.2"}
	conf := c.slurmConf("NodeName=n1 CPUs=1\n")
	for _, want := range []string{
		"SlurmctldHost=se-x-head(10.222.7.2)\n", "SlurmUser=slurm\n", "AuthAltTypes=auth/jwt\n",
		"SlurmctldParameters=enable_configless,idle_on_node_suspend\n", "PrivateData=cloud\n",
		"ReturnToService=2\n", "TreeWidth=65533\n", "ProctrackType=proctrack/linuxproc\n",
		"TaskPlugin=task/none\n", "SelectType=select/cons_tres\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("base slurm.conf lacks %q", want)
		}
	}
	for _, not := range []string{"ResumeProgram", "SuspendProgram", "ResumeFailProgram", "SuspendTime"} {
		if strings.Contains(conf, not) {
			t.Errorf("base slurm.conf sets %s; that belongs to Options.SlurmConf", not)
		}
	}
	if !strings.HasSuffix(conf, "NodeName=n1 CPUs=1\n") {
		t.Errorf("extra lines not appended last:\n%s", conf)
	}
}

func TestAddScripts(t *testing.T) {
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for name, data := range map[string]string{"./etc/resolv.conf": "nameserver 192.0.2.53\n", "./etc/passwd": "root:x:0:0::/root:/bin/sh\n"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))})
		tw.Write([]byte(data))
	}
	tw.Close()
	var out bytes.Buffer
	if err := addScripts(&in, &out); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	modes := map[string]int64{}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := got[h.Name]; dup {
			t.Errorf("%s twice in the image", h.Name)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name], modes[h.Name] = string(b), h.Mode
	}
	if got["./etc/resolv.conf"] != "" || got["./etc/passwd"] == "" {
		t.Errorf("resolv.conf %q passwd %q", got["./etc/resolv.conf"], got["./etc/passwd"])
	}
	if got["."+image.NodeEntrypointPath] != string(image.NodeEntrypoint) || modes["."+image.NodeEntrypointPath] != 0o755 {
		t.Errorf("node entrypoint missing or not executable")
	}
	if got["."+image.NodeRebootPath] != string(image.NodeReboot) || modes["."+image.NodeRebootPath] != 0o755 {
		t.Errorf("node reboot program (RebootProgram) missing or not executable")
	}
	if got["."+image.HeadEntrypointPath] != string(image.HeadEntrypoint) {
		t.Errorf("head entrypoint missing")
	}
	// helpers.conf (conf helpers) names the Helper at runtime.NodeFeatureHelper.
	if image.NodeImageHelperPath != runtime.NodeFeatureHelper {
		t.Errorf("the image's Helper is at %s, helpers.conf names %s", image.NodeImageHelperPath, runtime.NodeFeatureHelper)
	}
	if got["."+image.NodeImageHelperPath] != string(image.NodeImageHelper) || modes["."+image.NodeImageHelperPath] != 0o755 {
		t.Errorf("node image helper missing or not executable")
	}
}

func TestHeadFailure(t *testing.T) {
	const (
		starting = "phase starting\nmunged stopped\nslurmctld stopped\nslurmrestd stopped\n"
		midStart = "phase starting\nmunged running\nslurmctld stopped\nslurmrestd stopped\n"
		ready    = "phase ready\nmunged running\nslurmctld running\nslurmrestd running\n"
		ctldDied = "phase ready\nmunged running\nslurmctld stopped\nslurmrestd running\n"
		failed   = "phase failed: line 31: `dpkg -i /run/slurm-elastic/pkgs/x.deb` exited 1\nmunged stopped\nslurmctld stopped\nslurmrestd stopped\n"
		noPhase  = "munged stopped\nslurmctld stopped\nslurmrestd stopped\n" // init has not written its phase yet
	)
	for _, tc := range []struct {
		name      string
		running   bool
		status    string
		statusErr error
		daemon    string
		want      string // "" = keep waiting; else a substring of the error
	}{
		{"installing packages", true, starting, nil, "slurmctld", ""},
		{"daemons starting", true, midStart, nil, "slurmctld", ""},
		{"no phase yet", true, noPhase, nil, "slurmctld", ""},
		{"status exec failed", true, "", errors.New("exec: container state improper"), "slurmctld", ""},
		{"ready, answering soon", true, ready, nil, "slurmctld", ""},
		{"ready, other daemon died", true, ctldDied, nil, "slurmrestd", ""},
		{"daemon died after ready", true, ctldDied, nil, "slurmctld", "slurmctld is not running"},
		{"init failed", true, failed, nil, "slurmctld", "head init failed: line 31: `dpkg -i"},
		{"init failed, checked for slurmrestd", true, failed, nil, "slurmrestd", "head init failed"},
		{"container stopped", false, "", nil, "slurmctld", "head container stopped"},
		{"container stopped while starting", false, starting, nil, "slurmctld", "head container stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := headFailure(tc.running, tc.status, tc.statusErr, tc.daemon)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("headFailure = %v, want nil (keep waiting)", err)
			case tc.want != "" && err == nil:
				t.Fatalf("headFailure = nil, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("headFailure = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestHeadScriptPhases keeps the head script and parseHeadStatus in step: the script
// prints the phases the harness reads, and records "ready" only after its daemons run.
func TestHeadScriptPhases(t *testing.T) {
	s := string(image.HeadEntrypoint)
	for _, want := range []string{`echo "phase $(cat "$phase_file")"`, `echo "phase starting"`,
		"set_phase starting", "set_phase ready", `set_phase "failed: $*"`} {
		if !strings.Contains(s, want) {
			t.Errorf("slurm-elastic-head lacks %q", want)
		}
	}
	if i, j := strings.Index(s, "\twait_running\n"), strings.Index(s, "\tset_phase ready\n"); i < 0 || j < i {
		t.Errorf("slurm-elastic-head records ready before its daemons run (wait_running at %d, set_phase ready at %d)", i, j)
	}
	ph, d := parseHeadStatus("phase failed: dpkg: error: x\nmunged running\nslurmctld stopped\n")
	if ph.state != "failed" || ph.reason != "dpkg: error: x" || !d["munged"] || d["slurmctld"] {
		t.Errorf("parseHeadStatus = %+v %v", ph, d)
	}
}

// Each release gets its own image tag prefix (pruning keys on it), the 24.11 root file
// system keeps the cache key it had before there were several releases, and a bad
// release is refused naming the good ones.
func TestSlurmRecipes(t *testing.T) {
	keys := map[string]bool{}
	for _, v := range image.Versions() {
		r, err := SlurmRecipe(v)
		if err != nil {
			t.Fatal(err)
		}
		key := rootfsKey(r)
		if keys[key] {
			t.Errorf("Slurm %s: root file system key shared with another release", v)
		}
		keys[key] = true
		if tag := imageTag(r, key); !strings.HasPrefix(tag, ImageRepo+":"+v+"-") {
			t.Errorf("Slurm %s: tag %s", v, tag)
		}
	}
	r, _ := SlurmRecipe("24.11")
	if k := rootfsKey(r)[:16]; k != "7ed0c3002d28c024" {
		t.Errorf("24.11 root file system key %s: the cached tarball rootfs-7ed0c3002d28c024.tar would be rebuilt", k)
	}
	t.Setenv(EnvSlurm, "")
	if r, err := SlurmRecipe(""); err != nil || r.Slurm != image.DefaultSlurm {
		t.Errorf("default: %+v, %v", r, err)
	}
	t.Setenv(EnvSlurm, "26.05")
	if r, err := SlurmRecipe(""); err != nil || r.Slurm != "26.05" || r.Suite != "sid" {
		t.Errorf("SE_SLURM=26.05: %+v, %v", r, err)
	}
	t.Setenv(EnvSlurm, "23.02")
	if _, err := SlurmRecipe(""); err == nil || !strings.Contains(err.Error(), "SE_SLURM") || !strings.Contains(err.Error(), "22.05, 24.11, 26.05") {
		t.Errorf("SE_SLURM=23.02: %v", err)
	}
}
