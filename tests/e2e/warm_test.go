package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
)

// TestReconcileWarmPool: group cloud keeps one idle node warm, at most
// two powered up. A round powers one node up ahead of demand; Slurm keeps
// it up past SuspendTime (the SuspendExcNodes line `conf slurm` renders);
// a job runs on it without waiting for a launch, and while it does the
// pool warms a second node, and no third (max 2).
func TestReconcileWarmPool(t *testing.T) {
	reset(t)
	raw := rawConfig(t)
	applyWarm(t, raw, "    weight: 10\n", "    warm:\n      idle: 1\n      max: 2\n", "SuspendExcNodes=cloud[1-4]:1")

	if out, err := reconcileOnce(ctxT(t, time.Minute)); err != nil {
		t.Fatalf("round: %v %s\n%s", err, out, daemonLog(t))
	}
	var warm string
	for _, n := range []string{"cloud1", "cloud2", "cloud3", "cloud4"} {
		if ev := reconcileEvents(t, n, "warm"); len(ev) > 0 {
			if warm != "" {
				t.Fatalf("two nodes warmed for warm.idle 1: %s and %s", warm, n)
			}
			warm = n
		}
	}
	if warm == "" {
		t.Fatalf("no node warmed:\n%s", daemonLog(t))
	}
	waitFor(t, 2*time.Minute, warm+" up and idle", func() (bool, string) {
		n := node(t, warm)
		return n.has("IDLE") && !n.has("POWERED_DOWN") && !n.has("POWERING_UP") && len(containers(t)[warm]) == 1, fmt.Sprintf("%+v", n)
	})
	// Past SuspendTime (15s) Slurm keeps it, and the pool is full.
	time.Sleep(25 * time.Second)
	if n := node(t, warm); !n.has("IDLE") || n.has("POWERED_DOWN") || n.has("POWERING_DOWN") {
		t.Fatalf("warm %s suspended by Slurm: %+v", warm, n)
	}
	reconcileOnce(ctxT(t, time.Minute))
	if c := containers(t); len(c) != 1 {
		t.Fatalf("a full pool warmed more: %v", c)
	}

	id := sbatch(t, "-p", "cloud", "-N1", "-o", "/shared/job-%j.out", "--wrap", "sleep 30")
	j := waitJob(t, id, 30*time.Second, "RUNNING")
	if j.Nodes != warm {
		t.Fatalf("job %s runs on %s, not on the warm %s", id, j.Nodes, warm)
	}
	// Busy: one more is warmed; max 2 holds a third back.
	reconcileOnce(ctxT(t, time.Minute))
	reconcileOnce(ctxT(t, time.Minute))
	var second []string
	for _, n := range []string{"cloud1", "cloud2", "cloud3", "cloud4"} {
		if n != warm && len(reconcileEvents(t, n, "warm")) > 0 {
			second = append(second, n)
		}
	}
	if len(second) != 1 {
		t.Fatalf("while %s is busy, warmed %v; want exactly one more (max 2)", warm, second)
	}
	waitJob(t, id, 2*time.Minute, "COMPLETED")
	configure(t, elastic.Settings{})
	clearExc(ctxT(t, time.Minute), t)
	waitCloudIdle(t, 3*time.Minute)
}

// applyWarm configures raw with warm inserted after the line after (a
// group's line the rendered config has), checks that `conf slurm` renders
// wantExc and applies it live (slurm.conf is fixed for the test cluster);
// the cluster's config and SuspendExcNodes are put back when the test ends.
func applyWarm(t *testing.T, raw, after, warm, wantExc string) {
	t.Helper()
	if !strings.Contains(raw, after) {
		t.Fatalf("rendered config lacks %q:\n%s", after, raw)
	}
	configure(t, elastic.Settings{Raw: strings.Replace(raw, after, after+warm, 1)})
	var exc string
	for _, l := range strings.Split(run(t, adminBin, "conf", "slurm"), "\n") {
		if strings.HasPrefix(l, "SuspendExcNodes=") {
			exc = l
		}
	}
	if exc != wantExc {
		t.Fatalf("conf slurm renders %q, want %s", exc, wantExc)
	}
	run(t, "scontrol", "update", exc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cl.Configure(ctx, elastic.Settings{Name: cl.Name})
		clearExc(ctx, t)
	})
}

// clearExc puts slurmctld back to the cluster's slurm.conf (no
// SuspendExcNodes). Slurm 24.11 logs `scontrol update SuspendExcNodes=` as
// taken, but its power-save thread kept a node up for minutes after it:
// only a reconfigure (slurmctld re-reads slurm.conf) lets it go.
func clearExc(ctx context.Context, t *testing.T) {
	if _, err := cl.Exec(ctx, "scontrol", "update", "SuspendExcNodes="); err != nil {
		t.Logf("clear SuspendExcNodes: %v", err)
	}
	if _, err := cl.Exec(ctx, "scontrol", "reconfigure"); err != nil {
		t.Logf("scontrol reconfigure: %v", err)
	}
	for ctx.Err() == nil {
		if _, err := cl.Exec(ctx, "scontrol", "ping"); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// TestWarmImages: the img group keeps one idle node warm in its image
// marked (`warm: {idle: 1, images: {marked: 1}}`). The reconciler
// (`daemon --once` every 2 s) sets one powered-down node's active
// features to marked and powers it up; the resume hook, with no job,
// boots the image they name, and the node comes up idle with the feature
// active and a container of the marked image. A `sbatch -C marked` job
// then runs on that node at once (it prints the marker) and the other
// node stays powered down. No node is ever INVAL, DOWN or drained
// (`sinfo` polled through the test), and slurmctld never logs an invalid
// registration. Without the per-image pool the warm node boots the
// default image and the job powers up the other node (the test fails).
func TestWarmImages(t *testing.T) {
	if !cl.Settings.Images {
		t.Skipf("the cluster has no img group (Slurm %s)", cl.Slurm)
	}
	start := time.Now()
	reset(t)
	ref := buildMarkedImage(t)
	raw, err := elastic.Config(cl.Settings, cl.Cluster, cl.SharedDir)
	if err != nil {
		t.Fatal(err)
	}
	applyWarm(t, raw, "    partition: img\n", "    warm:\n      idle: 1\n      images: {marked: 1}\n", "SuspendExcNodes=img[1-2]:1")
	t.Cleanup(func() { run(t, "scancel", "--user=root") })
	stopWatch := watchSinfo(t, "img[1-2]")
	ctlBefore, _ := os.ReadFile(filepath.Join(cl.SlurmLogDir, "slurmctld.log"))
	stopLoop := reconcileLoop(t)

	// One node warm in marked: up, idle, the feature active, its container
	// from the marked image.
	var warm string
	waitFor(t, 3*time.Minute, "one img node up idle in image marked", func() (bool, string) {
		ctrs, err := cl.Podman(ctxT(t, time.Minute), "ps", "--filter", "label=slurm-elastic.cluster="+cl.Name,
			"--format", `{{index .Labels "slurm-elastic.node"}} {{.Image}} image={{index .Labels "slurm-elastic.image"}}`)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, n := range nodes(t, "img[1-2]") {
			kv := showNode(t, n.Name)
			seen = append(seen, fmt.Sprintf("%s %v ActiveFeatures=%s", n.Name, n.State, kv["ActiveFeatures"]))
			if n.has("IDLE") && !n.has("POWERED_DOWN") && !n.has("POWERING_UP") && !n.has("NOT_RESPONDING") &&
				kv["ActiveFeatures"] == "marked" && strings.Contains(ctrs, n.Name+" "+ref+" image=marked") {
				warm = n.Name
				return true, ""
			}
		}
		return false, strings.Join(seen, "; ") + " containers: " + ctrs
	})
	stopLoop()
	other := map[string]string{"img1": "img2", "img2": "img1"}[warm]
	if n := node(t, other); !n.has("POWERED_DOWN") {
		t.Fatalf("%s is %v: warm.idle 1 powered up two nodes", other, n.State)
	}
	if evs := reconcileEvents(t, warm, "warm"); len(evs) == 0 || evs[len(evs)-1].Error != "" || !strings.Contains(evs[len(evs)-1].Saw, "image marked") {
		t.Errorf("warm events of %s: %+v, want a successful one for image marked", warm, evs)
	}
	t.Logf("%s warm in image marked %s after the test's start", warm, time.Since(start).Round(time.Second))

	// A -C marked job runs on it at once; the other node stays down.
	script := "hostname; cat " + markerPath + " 2>/dev/null || echo no marker"
	id := sbatch(t, "-p", "img", "-C", "marked", "-o", "/shared/job-%j.out", "--wrap", script)
	j := waitJob(t, id, 2*time.Minute, "COMPLETED")
	if j.Nodes != warm {
		t.Fatalf("job %s ran on %s, not on the warm %s", id, j.Nodes, warm)
	}
	got, err := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
	if err != nil {
		t.Fatal(err)
	}
	if want := warm + "\nmarked image"; strings.TrimSpace(string(got)) != want || j.Restarts != 0 {
		t.Errorf("job %s printed %q (restarts %d), want %q", id, got, j.Restarts, want)
	}
	if n := node(t, other); !n.has("POWERED_DOWN") || n.has("POWERING_UP") {
		t.Errorf("%s is %v: the job powered up another node", other, n.State)
	}

	bad, seen := stopWatch()
	t.Logf("sinfo states seen: %q", seen)
	if len(bad) > 0 {
		t.Errorf("nodes in failure states: %q", bad)
	}
	for _, l := range seen {
		if f := strings.SplitN(l, "|", 3); f[0] == other && !strings.HasSuffix(f[1], "~") {
			t.Errorf("%s left power save (%s): warmed twice or powered up for the job", other, l)
		}
	}
	ctl, _ := os.ReadFile(filepath.Join(cl.SlurmLogDir, "slurmctld.log"))
	if strings.Contains(string(ctl[min(len(ctlBefore), len(ctl)):]), "not a superset") {
		t.Errorf("slurmctld.log: an invalid registration (not a superset) during the test")
	}

	// Back to the cluster's config: the warm node powers down.
	configure(t, elastic.Settings{})
	clearExc(ctxT(t, time.Minute), t)
	waitFor(t, 3*time.Minute, "img nodes powered down with no containers", func() (bool, string) {
		for _, n := range nodes(t, "img[1-2]") {
			if !n.has("POWERED_DOWN") || !n.has("IDLE") || n.has("POWERING_DOWN") || n.has("DRAIN") {
				return false, fmt.Sprintf("%s %v %s", n.Name, n.State, n.Reason)
			}
		}
		if c := containers(t); len(c) != 0 {
			return false, fmt.Sprintf("containers %v", c)
		}
		return true, ""
	})
	t.Logf("TestWarmImages ran %s", time.Since(start).Round(time.Second))
}
