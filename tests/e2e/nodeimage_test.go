package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
)

// TestNodeImage builds the node image recipe shipped for Podman node groups
// (packaging/node/Containerfile, through packaging/node/build.sh as `make
// node-image` does) from the cluster's own Slurm image and the
// slurm-elastic-health .deb, with no network and no registry. A node group
// that uses it launches a node that joins the cluster and runs a job, and the
// health binary the package installed runs inside it.
func TestNodeImage(t *testing.T) {
	reset(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()

	// The package carries the health binary of `make build-health` (in
	// SE_BIN_DIR under `make test`); without it, a static build stands in.
	binDir, err := elastic.HealthBinDir(ctxT(t, 10*time.Minute), root, cl.BinDir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := elastic.BuildPackage(ctxT(t, 5*time.Minute), root, binDir, dist, "slurm-elastic-health")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("package: %s", pkg)

	tag := "localhost/slurm-elastic-node-e2e:" + cl.Name
	t.Cleanup(func() {
		// -f also removes a container a failed test left on the image.
		if out, err := cl.Podman(ctxT(t, time.Minute), "rmi", "-f", tag); err != nil {
			t.Logf("podman rmi %s: %v\n%s", tag, err, out)
		}
	})
	start := time.Now()
	if err := elastic.BuildNodeImage(ctxT(t, 8*time.Minute), cl.Cluster, root, tag, dist); err != nil {
		t.Fatal(err)
	}
	t.Logf("node image %s built in %v", tag, time.Since(start).Round(time.Second))
	// The RebootProgram `conf slurm` renders (power_save.reboot_program) is in the image.
	if out, err := cl.Podman(ctxT(t, time.Minute), "run", "--rm", "--network", "none", "--entrypoint", "test", tag,
		"-x", conf.DefaultRebootProgram); err != nil {
		t.Fatalf("node image lacks an executable %s: %v %s", conf.DefaultRebootProgram, err, out)
	}

	configure(t, elastic.Settings{Image: tag})
	id := sbatch(t, "-p", "cloud", "-w", "cloud1", "-o", "/shared/job-%j.out",
		"--wrap", "hostname; /usr/sbin/slurm-elastic-health --version")
	waitJob(t, id, 3*time.Minute, "COMPLETED")
	got, err := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if len(lines) != 2 || lines[0] != "cloud1" || !strings.HasPrefix(lines[1], "slurm-elastic-health ") {
		t.Fatalf("job %s printed %q, want cloud1 and the health daemon's version", id, got)
	}
	t.Logf("job %s on the node image printed %q", id, lines)

	// The node really ran from the new image, not the cluster's default.
	img, err := cl.Podman(ctxT(t, time.Minute), "ps", "-a", "--filter", "label=slurm-elastic.node=cloud1",
		"--filter", "label=slurm-elastic.cluster="+cl.Name, "--format", "{{.Image}}")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(img) != tag {
		t.Errorf("cloud1's container runs image %q, want %q", strings.TrimSpace(img), tag)
	}
	waitCloudIdle(t, 2*time.Minute)
	configure(t, elastic.Settings{})
}
