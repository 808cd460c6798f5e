package conf_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./conf -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

func renderConfig() *conf.Config {
	c := validConfig()
	c.PowerSave.BinDir = "/opt/slurm-elastic/bin"
	c.PowerSave.ResumeTimeout = 3 * time.Minute
	c.PowerSave.SuspendRate = 0
	c.Groups[0].Nodes = "cpu[01-16]"
	c.Groups[0].Weight = 10
	c.Groups[0].Template.Features = []string{"cpu", "avx2"}
	c.Groups[1].CPUs = 8
	c.Groups[1].RealMemoryMB = 30000
	c.Groups[1].Gres = "gpu:a100:1"
	c.Groups = append(c.Groups,
		conf.Group{Name: "cpu-big", Nodes: "cpu[17-20],big1", Partition: "cpu", CPUs: 32,
			Template: c.Groups[0].Template},
		conf.Group{Name: "shard", Nodes: "sh[1-2]", Gres: "shard:8", Template: c.Groups[1].Template},
	)
	c.ApplyDefaults()
	return c
}

func TestRenderSlurmGolden(t *testing.T) {
	c := renderConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := conf.RenderSlurm(&a, c); err != nil {
		t.Fatal(err)
	}
	if err := conf.RenderSlurm(&b, c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two renders of one config differ")
	}
	golden(t, "slurm.conf.golden", a.Bytes())
}

func TestRenderSlurmWithoutGres(t *testing.T) {
	c := validConfig()
	c.Groups = c.Groups[:1]
	var buf bytes.Buffer
	if err := conf.RenderSlurm(&buf, c); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "GresTypes") || strings.Contains(out, "Gres=") {
		t.Errorf("GresTypes rendered without any gres:\n%s", out)
	}
	for _, want := range []string{
		"# from " + testFile + ".",
		"\nNodeName=cpu[1-4] CPUs=2 RealMemory=1024 Features=cpu State=CLOUD\n",
		"\nPartitionName=cpu Nodes=cpu[1-4] MaxTime=INFINITE State=UP\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRenderSlurmBadHostlist(t *testing.T) {
	c := validConfig()
	c.Groups[1].Nodes = "gpu[1-"
	var buf bytes.Buffer
	err := conf.RenderSlurm(&buf, c)
	if err == nil || !strings.Contains(err.Error(), "groups[1]") {
		t.Errorf("RenderSlurm(bad hostlist) = %v, want an error naming groups[1]", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRenderSlurmWriteError(t *testing.T) {
	if err := conf.RenderSlurm(failWriter{}, validConfig()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("RenderSlurm(failing writer) = %v, want the write error", err)
	}
}

// TestRenderSlurmHealthCheckProgram: the HealthCheckProgram lines appear
// only when health.check_program is enabled, with the interval in whole
// seconds (rounded up).
func TestRenderSlurmHealthCheckProgram(t *testing.T) {
	c := validConfig()
	var off bytes.Buffer
	if err := conf.RenderSlurm(&off, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(off.String(), "HealthCheck") {
		t.Errorf("HealthCheck lines rendered while health.check_program is off:\n%s", off.String())
	}
	c.Health.CheckProgram.Enabled = true
	c.Health.CheckProgram.Interval = 90*time.Second + time.Millisecond
	c.Health.CheckProgram.NodeState = "IDLE,CYCLE"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var on bytes.Buffer
	if err := conf.RenderSlurm(&on, c); err != nil {
		t.Fatal(err)
	}
	want := "\nHealthCheckProgram=/usr/sbin/slurm-elastic-health-check\nHealthCheckInterval=91\nHealthCheckNodeState=IDLE,CYCLE\n"
	if !strings.Contains(on.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, on.String())
	}
	if !strings.HasPrefix(on.String(), off.String()[:strings.LastIndex(off.String(), "PartitionName")]) {
		t.Errorf("enabling the health check changed the other lines:\n%s", on.String())
	}
}

// TestRenderImages: a group's image names are its nodes' features beside
// template.features, slurm.conf names the helpers plugin, and helpers.conf
// makes every group's image names changeable and mutually exclusive with
// the Helper at its path in the node image.
func TestRenderImages(t *testing.T) {
	c := validConfig()
	c.Groups[0].Images = []conf.Image{{Name: "rocky9", Image: "localhost/rocky:9"}, {Name: "cuda12", Image: "localhost/cuda:12"}}
	c.Groups[1].Images = []conf.Image{{Name: "rocky9", Image: "localhost/rocky:9"}, {Name: "el8", Image: "localhost/el:8"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := conf.RenderSlurm(&buf, c); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"\nNodeFeaturesPlugins=node_features/helpers\n",
		"slurm-elastic conf helpers > /etc/slurm/helpers.conf",
		"\n#   image rocky9 (sbatch -C rocky9): localhost/rocky:9\n",
		"\nNodeName=cpu[1-4] CPUs=2 RealMemory=1024 Features=cpu,rocky9,cuda12 State=CLOUD\n",
		"\nNodeName=gpu[1-2] Gres=gpu:1 Features=rocky9,el8 State=CLOUD\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("slurm.conf lines lack %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := conf.RenderHelpers(&buf, c); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	want := []string{
		"Feature=rocky9 Helper=" + runtime.NodeFeatureHelper,
		"Feature=cuda12 Helper=" + runtime.NodeFeatureHelper,
		"Feature=el8 Helper=" + runtime.NodeFeatureHelper,
		"MutuallyExclusive=rocky9,cuda12,el8",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("helpers.conf lines %q, want %q\n%s", lines, want, buf.String())
	}

	// One image: nothing to be exclusive with.
	c.Groups[0].Images, c.Groups[1].Images = c.Groups[0].Images[:1], nil
	buf.Reset()
	if err := conf.RenderHelpers(&buf, c); err != nil || strings.Contains(buf.String(), "MutuallyExclusive") ||
		!strings.Contains(buf.String(), "\nFeature=rocky9 Helper=") {
		t.Errorf("one image: err %v\n%s", err, buf.String())
	}
}

// TestRenderWithoutImages: no group lists images, so nothing changes:
// no plugin (slurmctld would then need a helpers.conf), no image feature,
// and `conf helpers` says there is nothing to render.
func TestRenderWithoutImages(t *testing.T) {
	c := validConfig()
	var buf bytes.Buffer
	if err := conf.RenderSlurm(&buf, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "NodeFeaturesPlugins") || strings.Contains(buf.String(), "helpers") {
		t.Errorf("rendered the features plugin without images:\n%s", buf.String())
	}
	buf.Reset()
	if err := conf.RenderHelpers(&buf, c); !errors.Is(err, conf.ErrNoImages) || buf.Len() != 0 {
		t.Errorf("RenderHelpers without images: %v, wrote %q", err, buf.String())
	}
}
