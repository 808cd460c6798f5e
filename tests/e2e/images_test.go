package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
)

// markerPath is the file only the img group's image "marked" has.
const markerPath = "/etc/slurm-elastic-marker"

// buildMarkedImage builds elastic.MarkedImage: the cluster's image plus one
// file, markerPath (COPY only: no container runs, no network).
func buildMarkedImage(t *testing.T) string {
	t.Helper()
	tag := elastic.MarkedImage(cl.Name)
	dir := t.TempDir()
	cf := fmt.Sprintf("FROM %s\nCOPY marker %s\n", cl.Image, markerPath)
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(cf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("marked image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cl.Podman(ctxT(t, 5*time.Minute), "build", "--pull=never", "--network=none", "-t", tag,
		"-f", filepath.Join(dir, "Containerfile"), dir); err != nil {
		t.Fatalf("build %s: %v\n%s", tag, err, out)
	}
	t.Cleanup(func() {
		if out, err := cl.Podman(ctxT(t, time.Minute), "rmi", "-f", tag); err != nil {
			t.Logf("podman rmi %s: %v\n%s", tag, err, out)
		}
	})
	return tag
}

// showNode returns the key=value fields of `scontrol -o show node name`.
func showNode(t *testing.T, name string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	for _, f := range strings.Fields(run(t, "scontrol", "-o", "show", "node", name)) {
		if k, v, ok := strings.Cut(f, "="); ok {
			if _, dup := kv[k]; !dup {
				kv[k] = v
			}
		}
	}
	return kv
}

// TestGroupImages: one group (img, one partition) with a default image and
// two named ones, driven through the files we ship: `conf slurm` (features,
// NodeFeaturesPlugins) and `conf helpers` (helpers.conf in head), and the
// Helper in the node image. `sbatch -C marked` boots the marked image (its
// job prints the marker; the node reports the feature), a job without -C
// boots the default image (no marker, no active feature), an image the
// group does not list is rejected at submit, and so are two images at once;
// no node goes INVAL or is drained, no job is requeued.
func TestGroupImages(t *testing.T) {
	if !cl.Settings.Images {
		t.Skipf("the cluster has no img group (Slurm %s)", cl.Slurm)
	}
	reset(t)
	ref := buildMarkedImage(t)

	// Slurm knows the images as the nodes' features, none active yet.
	for _, n := range []string{"img1", "img2"} {
		kv := showNode(t, n)
		if kv["AvailableFeatures"] != "marked,other" || kv["ActiveFeatures"] != "(null)" {
			t.Fatalf("%s: AvailableFeatures=%s ActiveFeatures=%s, want marked,other and (null)", n, kv["AvailableFeatures"], kv["ActiveFeatures"])
		}
	}

	// Rejected at submit: an image no group lists, and two at once.
	for _, c := range []string{"notlisted", "marked&other"} {
		out, err := cl.Exec(ctxT(t, time.Minute), "sbatch", "--parsable", "-p", "img", "-C", c, "--wrap", "true")
		if err == nil {
			t.Fatalf("sbatch -C %s was accepted (job %s), want it rejected at submit", c, strings.TrimSpace(out))
		}
		t.Logf("sbatch -C %s rejected: %v %s", c, err, strings.TrimSpace(out))
	}

	script := "hostname; cat " + markerPath + " 2>/dev/null || echo no marker"
	marked := sbatch(t, "-p", "img", "-w", "img1", "-C", "marked", "-o", "/shared/job-%j.out", "--wrap", script)
	plain := sbatch(t, "-p", "img", "-w", "img2", "-o", "/shared/job-%j.out", "--wrap", script)
	want := map[string]string{marked: "img1\nmarked image", plain: "img2\nno marker"}
	for _, id := range []string{marked, plain} {
		j := waitJob(t, id, 3*time.Minute, "COMPLETED")
		if j.Restarts != 0 {
			t.Errorf("job %s was requeued %d times", id, j.Restarts)
		}
		got, err := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(got)) != want[id] {
			t.Errorf("job %s printed %q, want %q", id, got, want[id])
		}
	}

	// The containers: img1 from the marked image, labelled with its name;
	// img2 from the default image, no label.
	out, err := cl.Podman(ctxT(t, time.Minute), "ps", "-a", "--filter", "label=slurm-elastic.cluster="+cl.Name,
		"--format", `{{index .Labels "slurm-elastic.node"}} {{.Image}} image={{index .Labels "slurm-elastic.image"}}`)
	if err != nil {
		t.Fatal(err)
	}
	ctrs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if n, rest, ok := strings.Cut(l, " "); ok {
			ctrs[n] = rest
		}
	}
	if ctrs["img1"] != ref+" image=marked" || !strings.HasSuffix(ctrs["img2"], " image=") || strings.HasPrefix(ctrs["img2"], ref) {
		t.Errorf("containers %q: want img1 on %s labelled marked, img2 on the default image unlabelled", ctrs, ref)
	}

	// Slurm's view: img1 runs with the feature active, img2 with none;
	// neither INVAL nor drained.
	for n, active := range map[string]string{"img1": "marked", "img2": "(null)"} {
		kv := showNode(t, n)
		if kv["ActiveFeatures"] != active {
			t.Errorf("%s: ActiveFeatures=%s, want %s", n, kv["ActiveFeatures"], active)
		}
		if s := kv["State"]; strings.Contains(s, "INVAL") || strings.Contains(s, "DRAIN") || strings.Contains(s, "DOWN") {
			t.Errorf("%s: State=%s Reason=%s", n, s, kv["Reason"])
		}
	}
	log := hookLog(t)
	for n, img := range map[string]string{"img1": "marked", "img2": "(default)"} {
		found := false
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, `"msg":"node image"`) && strings.Contains(l, `"node":"`+n+`"`) && strings.Contains(l, `"image":"`+img+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("the resume log does not say that %s boots %s", n, img)
		}
	}

	// Both power down after SuspendTime; the features go back to none.
	waitFor(t, 2*time.Minute, "img nodes powered down with no containers", func() (bool, string) {
		for _, n := range nodes(t, "img[1-2]") {
			if !n.has("POWERED_DOWN") || !n.has("IDLE") || n.has("POWERING_DOWN") {
				return false, fmt.Sprintf("%s %v", n.Name, n.State)
			}
		}
		if c := containers(t); len(c) != 0 {
			return false, fmt.Sprintf("containers %v", c)
		}
		return true, ""
	})
	waitCloudIdle(t, 2*time.Minute)
}
