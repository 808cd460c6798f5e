package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
)

// watchSinfo polls `sinfo -N` for the nodes every 2 s until the returned
// stop is called, and returns from stop every state it saw that is a
// failure: INVAL, or DOWN other than a reboot's own (REBOOT_ISSUED shows
// as reboot^), or drained other than by a reboot ASAP; seen lists every
// distinct node|state|reason for the log.
func watchSinfo(t *testing.T, names string) (stop func() (bad, seen []string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		badS []string
		all  []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
			out, err := cl.Exec(cctx, "sinfo", "-h", "-N", "-n", names, "-o", "%N|%T|%E")
			ccancel()
			if err == nil {
				mu.Lock()
				for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
					if l == "" || slices.Contains(all, l) {
						continue
					}
					all = append(all, l)
					parts := strings.SplitN(l, "|", 3)
					if len(parts) < 3 {
						continue
					}
					st, why := strings.ToLower(parts[1]), parts[2]
					reboot := strings.Contains(st, "reboot") || strings.Contains(why, "reboot")
					if strings.Contains(st, "inval") || (strings.Contains(st, "down") && !reboot) ||
						(strings.Contains(st, "drain") && !reboot && !strings.Contains(why, "(Code:Reimage)")) {
						badS = append(badS, l)
					}
				}
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	var once sync.Once
	stop = func() ([]string, []string) {
		once.Do(func() { cancel(); wg.Wait() })
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(badS), slices.Clone(all)
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestReimageIdle: both nodes of the img group are up and idle in the
// default image when a `-C marked` job is submitted (a two-node job held
// them while it was submitted, so it pended for Resources before they were
// idle, well within SuspendTime). Slurm never reboots a CLOUD node to
// change its features; the reconciler (`daemon --once` every 2 s) re-images
// exactly one idle node (kind reimage: scontrol reboot ASAP with the
// (Code:Reimage) reason; kind reboot: active feature set, fresh container
// from the marked image), and the job runs there: it prints the marker,
// is never requeued, its node's container carries the label
// slurm-elastic.image=marked. No node is ever INVAL, DOWN (but for the
// reboot's own DOWN+REBOOT_ISSUED) or drained by anything but the
// re-image, as `sinfo` polled through the test shows. With
// daemon.reimage off the job waits for a node to power down instead, and
// the test fails (no reimage event). Once through each Slurm backend (the
// daemon lists the pending jobs and sets the active features through
// it; the reboot is scontrol's either way).
func TestReimageIdle(t *testing.T) {
	if !cl.Settings.Images {
		t.Skipf("the cluster has no img group (Slurm %s)", cl.Slurm)
	}
	ref := buildMarkedImage(t)
	for _, backend := range []string{"scontrol", "rest"} {
		t.Run(backend, func(t *testing.T) { reimageIdle(t, backend, ref) })
	}
}

func reimageIdle(t *testing.T, backend, ref string) {
	reset(t)
	configure(t, elastic.Settings{Backend: backend})
	t.Cleanup(func() { run(t, "scancel", "--user=root") })
	stopWatch := watchSinfo(t, "img[1-2]")
	ctlBefore, _ := os.ReadFile(filepath.Join(cl.SlurmLogDir, "slurmctld.log"))
	ctlStart := len(ctlBefore)
	stopLoop := reconcileLoop(t)
	start := time.Now()

	// Both nodes up in the default image, held by one job.
	hold := sbatch(t, "-p", "img", "-N2", "-o", "/shared/job-%j.out", "--wrap", "sleep 20")
	waitJob(t, hold, 3*time.Minute, "RUNNING")
	script := "hostname; cat " + markerPath + " 2>/dev/null || echo no marker"
	id := sbatch(t, "-p", "img", "-C", "marked", "-o", "/shared/job-%j.out", "--wrap", script)
	if j := getJob(t, id); j.State[0] != "PENDING" {
		t.Fatalf("job %s: %v, want PENDING while both nodes are allocated", id, j.State)
	}
	waitJob(t, hold, 2*time.Minute, "COMPLETED")
	idle := time.Now()
	j := waitJob(t, id, 4*time.Minute, "COMPLETED")
	t.Logf("job %s completed on %s %s after its nodes went idle (%s since the test's start)", id, j.Nodes,
		time.Since(idle).Round(time.Second), time.Since(start).Round(time.Second))
	if j.Restarts != 0 {
		t.Errorf("job %s was requeued %d times", id, j.Restarts)
	}
	got, err := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
	if err != nil {
		t.Fatal(err)
	}
	if want := j.Nodes + "\nmarked image"; strings.TrimSpace(string(got)) != want {
		t.Errorf("job %s printed %q, want %q", id, got, want)
	}

	// The reconciler re-imaged exactly the job's node, once, and rebooted it.
	var reimaged []string
	for _, e := range reconcileEvents(t, "", "reimage") {
		if e.Time.Before(start) {
			continue // an earlier run's
		}
		if e.Error != "" {
			t.Errorf("reimage event failed: %+v", e)
		}
		reimaged = append(reimaged, e.Node)
	}
	if len(reimaged) != 1 || reimaged[0] != j.Nodes {
		t.Errorf("reimage events for nodes %v, want exactly one, for %s (the job's node)", reimaged, j.Nodes)
	}
	if evs := reconcileEvents(t, j.Nodes, "reboot"); len(evs) == 0 || evs[len(evs)-1].Error != "" || evs[len(evs)-1].Time.Before(start) {
		t.Errorf("reboot events of %s: %+v, want a successful one", j.Nodes, evs)
	}

	// Its container: the marked image, labelled.
	out, err := cl.Podman(ctxT(t, time.Minute), "ps", "-a", "--filter", "label=slurm-elastic.cluster="+cl.Name,
		"--filter", "label=slurm-elastic.node="+j.Nodes,
		"--format", `{{.Image}} image={{index .Labels "slurm-elastic.image"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != ref+" image=marked" {
		t.Errorf("%s's container: %q, want %s labelled marked", j.Nodes, out, ref)
	}
	if kv := showNode(t, j.Nodes); !strings.Contains(kv["ActiveFeatures"], "marked") {
		t.Errorf("%s: ActiveFeatures=%s, want marked", j.Nodes, kv["ActiveFeatures"])
	}

	stopLoop()
	bad, seen := stopWatch()
	t.Logf("sinfo states seen: %q", seen)
	if len(bad) > 0 {
		t.Errorf("nodes in failure states during the re-image: %q", bad)
	}
	ctl, _ := os.ReadFile(filepath.Join(cl.SlurmLogDir, "slurmctld.log"))
	for _, want := range []string{"not a superset", "unexpectedly rebooted"} {
		if strings.Contains(string(ctl[ctlStart:]), want) {
			t.Errorf("slurmctld.log: %q during the re-image", want)
		}
	}

	// Both power down after SuspendTime; the features go back to none.
	waitFor(t, 3*time.Minute, "img nodes powered down with no containers", func() (bool, string) {
		for _, n := range nodes(t, "img[1-2]") {
			if !n.has("POWERED_DOWN") || !n.has("IDLE") || n.has("POWERING_DOWN") || n.has("DRAIN") {
				return false, fmt.Sprintf("%s %v %s", n.Name, n.State, n.Reason)
			}
		}
		for n := range containers(t) {
			if strings.HasPrefix(n, "img") {
				return false, "container of " + n
			}
		}
		return true, ""
	})
	t.Logf("TestReimageIdle/%s ran %s", backend, time.Since(start).Round(time.Second))
}

// TestReimageBench measures how long an idle node takes to change image
// for a pending job, two ways (docs/benchmarks.md 5.5): "reimage", the
// reconciler's re-image (rounds back to back, as `daemon --once`), and
// "powerdown", `scontrol update state=power_down` of the idle node and
// Slurm's own power-down/resume round trip (no reconciler). Each round:
// both img nodes up in the default image under a two-node job, a
// `-C marked` job submitted behind it (it pends for Resources longer than
// daemon.reimage_after); the clock starts when both nodes are idle and
// stops at the marked job's first line (`date +%s.%N`, one clock for host
// and containers). Methods alternate. A benchmark: skipped unless
// SE_BENCH_REIMAGE=1; SE_BENCH_REIMAGE_RUNS rounds per method (default 3).
func TestReimageBench(t *testing.T) {
	if os.Getenv("SE_BENCH_REIMAGE") == "" {
		t.Skip("a benchmark: run with SE_BENCH_REIMAGE=1")
	}
	if !cl.Settings.Images {
		t.Skipf("the cluster has no img group (Slurm %s)", cl.Slurm)
	}
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("SE_BENCH_REIMAGE_RUNS")); err == nil && v > 0 {
		runs = v
	}
	reset(t)
	buildMarkedImage(t)
	t.Cleanup(func() { run(t, "scancel", "--user=root") })
	res := map[string][]float64{}
	for i := 0; i < 2*runs; i++ {
		method := []string{"reimage", "powerdown"}[i%2]
		waitFor(t, 3*time.Minute, "img nodes powered down with no containers", func() (bool, string) {
			for _, n := range nodes(t, "img[1-2]") {
				if !n.has("POWERED_DOWN") || !n.has("IDLE") || n.has("POWERING_DOWN") || n.has("DRAIN") {
					return false, fmt.Sprintf("%s %v %s", n.Name, n.State, n.Reason)
				}
			}
			return true, ""
		})
		hold := sbatch(t, "-p", "img", "-N2", "-o", "/dev/null", "--wrap", "sleep 12")
		waitJob(t, hold, 3*time.Minute, "RUNNING")
		id := sbatch(t, "-p", "img", "-C", "marked", "-o", "/shared/job-%j.out", "--wrap", "date +%s.%N; cat "+markerPath)
		waitFor(t, 2*time.Minute, "img nodes idle after job "+hold, func() (bool, string) {
			ns := nodes(t, "img[1-2]")
			for _, n := range ns {
				if !n.has("IDLE") || n.has("COMPLETING") {
					return false, fmt.Sprintf("%s %v", n.Name, n.State)
				}
			}
			return true, ""
		})
		t0 := time.Now()
		var stop func()
		if method == "reimage" {
			stop = reconcileLoop(t)
		} else {
			run(t, "scontrol", "update", "nodename=img1", "state=power_down")
		}
		j := waitJob(t, id, 4*time.Minute, "COMPLETED")
		if stop != nil {
			stop()
		}
		b, err := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		ts, err := strconv.ParseFloat(strings.TrimSpace(first), 64)
		if err != nil || !strings.Contains(string(b), "marked image") || j.Restarts != 0 {
			t.Fatalf("job %s on %s printed %q (restarts %d)", id, j.Nodes, b, j.Restarts)
		}
		d := ts - float64(t0.UnixNano())/1e9
		res[method] = append(res[method], d)
		t.Logf("round %d %s: job %s on %s ran %.1f s after its nodes went idle", i, method, id, j.Nodes, d)
	}
	for _, m := range []string{"reimage", "powerdown"} {
		v := slices.Clone(res[m])
		slices.Sort(v)
		t.Logf("BENCH %s runs %d median %.1f s min %.1f s max %.1f s all %v", m, len(v), v[len(v)/2], v[0], v[len(v)-1], res[m])
	}
}
