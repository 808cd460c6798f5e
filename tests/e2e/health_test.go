package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
)

// healthDirInNodes is cl.SharedDir/health as node containers see it.
const healthDirInNodes = elastic.SharedInNodes + "/health"

// buildHealth builds slurm-elastic-health into dir with cgo off: a static
// binary runs in any node image, and the NVML paths it lacks are covered by
// the dgxa100 mock tests (make test-health).
func buildHealth(t *testing.T, dir string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the health e2e test builds slurm-elastic-health and needs the go tool: %v", err)
	}
	cmd := exec.CommandContext(ctxT(t, 10*time.Minute), goBin, "build", "-trimpath", "-o", filepath.Join(dir, "slurm-elastic-health"), "./cmd/slurm-elastic-health")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build slurm-elastic-health: %v\n%s", err, out)
	}
}

// scratchInNodes is the scratch path of the e2e health config: the node
// container's /dev/shm, a small tmpfs (Podman's default 64 MiB) that an
// unprivileged test can fill and free with `podman exec`.
const scratchInNodes = "/dev/shm"

// healthSection is the daemon's `health:` section: a custom check "fault"
// that fails while the file fault-NODE exists in the shared health
// directory, and the scratch path, which must keep half its space free.
func healthSection(interval time.Duration, drainAfter, undrainAfter int) string {
	return fmt.Sprintf(`
health:
  interval: %s
  check_timeout: 5s
  drain_after: %d
  undrain_after: %d
  memory: {min_total_percent: 0, min_available_percent: 0}
  cpus: {expected: -1}
  disks: [{path: /tmp, min_free_percent: 0.1}, {path: %s, min_free_percent: 50}]
  custom:
    - name: fault
      command: [%s/fault.sh]
      timeout: 5s
`, interval, drainAfter, undrainAfter, scratchInNodes, healthDirInNodes)
}

// shippedHealthConfig is the node-side config the health package installs
// and the docs tell admins to put on compute nodes.
const shippedHealthConfig = "../../packaging/health.yaml"

// healthConfigInNodes is where the docs tell admins to put (or, in a node
// container, mount) the node-side config; the daemon reads it by default.
const healthConfigInNodes = "/etc/slurm-elastic/health.yaml"

// healthConfig writes health.yaml as docs/health.md tells admins to: the
// shipped packaging/health.yaml with its slurm and log sections as shipped
// (scontrol, no token, no head section) and the test's health section, and
// the custom check's script. It returns the file's host path.
func healthConfig(t *testing.T, dir, health string) string {
	t.Helper()
	data, err := os.ReadFile(shippedHealthConfig)
	if err != nil {
		t.Fatal(err)
	}
	var shipped, section map[string]any
	if err := yaml.Unmarshal(data, &shipped); err != nil {
		t.Fatalf("%s: %v", shippedHealthConfig, err)
	}
	if err := yaml.Unmarshal([]byte(health), &section); err != nil || section["health"] == nil {
		t.Fatalf("the test's health section: %v\n%s", err, health)
	}
	for k := range shipped {
		if k != "slurm" && k != "log" && k != "health" {
			t.Fatalf("%s has section %s: the node-side file holds slurm, log and health only", shippedHealthConfig, k)
		}
	}
	if sl, _ := shipped["slurm"].(map[string]any); sl["backend"] != "scontrol" || sl["token_file"] != nil {
		t.Fatalf("%s: slurm section %v: want backend scontrol and no token on a node", shippedHealthConfig, sl)
	}
	shipped["health"] = section["health"]
	out, err := yaml.Marshal(shipped)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "health.yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nif [ -e " + healthDirInNodes + "/fault-$(cat /proc/sys/kernel/hostname) ]; then echo \"injected fault on $(cat /proc/sys/kernel/hostname)\"; exit 1; fi\necho ok\n"
	if err := os.WriteFile(filepath.Join(dir, "fault.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// scratchFile is the file that fills the scratch path.
const scratchFile = scratchInNodes + "/se-e2e-fill"

// fillScratch fills three quarters of the scratch file system in ctr, so
// that less than the configured half stays free. Blocks for one exec.
func fillScratch(t *testing.T, ctr string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	out, err := cl.Podman(ctx, "exec", ctr, "stat", "-f", "-c", "%b %S", scratchInNodes)
	if err != nil {
		t.Fatalf("size of %s in %s: %v", scratchInNodes, ctr, err)
	}
	var blocks, bsize int64
	if _, err := fmt.Sscan(out, &blocks, &bsize); err != nil || blocks <= 0 {
		t.Fatalf("size of %s in %s: %q: %v", scratchInNodes, ctr, out, err)
	}
	size := blocks * bsize * 3 / 4
	if size > 256<<20 {
		t.Fatalf("%s in %s is %d MiB: too big to fill under the node's memory limit", scratchInNodes, ctr, blocks*bsize>>20)
	}
	if _, err := cl.Podman(ctx, "exec", ctr, "fallocate", "-l", strconv.FormatInt(size, 10), scratchFile); err != nil {
		t.Fatalf("fill %s in %s: %v", scratchInNodes, ctr, err)
	}
	t.Logf("filled %d of %d MiB of %s in %s", size>>20, blocks*bsize>>20, scratchInNodes, ctr)
}

// freeScratch removes the fill file. Blocks for one exec.
func freeScratch(t *testing.T, ctr string) {
	t.Helper()
	if _, err := cl.Podman(ctxT(t, time.Minute), "exec", ctr, "rm", "-f", scratchFile); err != nil {
		t.Fatalf("free %s in %s: %v", scratchInNodes, ctr, err)
	}
}

// containerOf returns the name of the running container of node.
func containerOf(t *testing.T, node string) string {
	t.Helper()
	cs := containers(t)[node]
	if len(cs) != 1 || !strings.Contains(cs[0], " Up ") {
		t.Fatalf("node %s: want one running container, have %v", node, cs)
	}
	return strings.Fields(cs[0])[0]
}

// countLines counts log lines containing every one of subs.
func countLines(log string, subs ...string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok && l != "" {
			n++
		}
	}
	return n
}

// healthNode is the state of a node running the health daemon: a job holds
// it up until released.
type healthNode struct {
	name, ctr     string
	dir           string // the shared health directory on this host
	fault, logF   string // host paths: the custom check's fault file, the daemon's log
	release, pidF string // host paths: the holding job's release file, the daemon's pid file
	job           string // the holding job
}

func (h *healthNode) readLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(h.logF)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// startHealthNode powers up node n with a job that holds it until
// released, and starts the health daemon (built with cgo off) in its
// container with the given health section. Cleanup releases the job and
// clears the faults; the node then powers down with the cluster's
// SuspendTime. Blocks until the daemon has logged its start.
func startHealthNode(t *testing.T, n, health string) *healthNode {
	t.Helper()
	dir := filepath.Join(cl.SharedDir, "health")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	buildHealth(t, dir)
	healthConfig(t, dir, health)
	h := &healthNode{name: n, dir: dir, fault: filepath.Join(dir, "fault-"+n), release: filepath.Join(dir, "release-"+n),
		logF: filepath.Join(dir, "health-"+n+".log"), pidF: filepath.Join(dir, "pid-"+n)}
	for _, f := range []string{h.fault, h.release, h.logF, h.pidF} {
		_ = os.Remove(f)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("health daemon log:\n%s", h.readLog(t))
		}
		if h.ctr != "" {
			_, _ = cl.Podman(context.Background(), "exec", h.ctr, "rm", "-f", scratchFile)
		}
		_ = os.WriteFile(h.release, nil, 0o644)
		_ = os.Remove(h.fault)
	})
	h.job = sbatch(t, "-p", "cloud", "-w", n, "-o", "/shared/health/job-%j.out",
		"--wrap", "while [ ! -e "+healthDirInNodes+"/release-"+n+" ]; do sleep 1; done")
	waitJob(t, h.job, 3*time.Minute, "RUNNING")
	// RUNNING includes CONFIGURING: wait for the node to be up.
	waitFor(t, 3*time.Minute, n+" powered up", func() (bool, string) {
		nd := node(t, n)
		j := getJob(t, h.job)
		return !nd.has("POWERING_UP") && !slices.Contains(j.State, "CONFIGURING"), strings.Join(nd.State, ",") + " job " + strings.Join(j.State, ",")
	})
	h.ctr = containerOf(t, n)
	// The node-side config where the docs put it; the daemon finds it
	// without --config. Its log goes to the shared directory at debug
	// level, where the test reads every decision (SLURM_ELASTIC_LOG_FILE,
	// SLURM_ELASTIC_LOG_LEVEL: overrides the docs describe).
	if _, err := cl.Podman(ctxT(t, time.Minute), "exec", h.ctr, "install", "-D", "-m", "0644",
		healthDirInNodes+"/health.yaml", healthConfigInNodes); err != nil {
		t.Fatalf("put health.yaml in %s: %v", h.ctr, err)
	}
	// The shell only writes its pid (for the footprint figures) and execs
	// the daemon; nothing in it comes from input.
	if _, err := cl.Podman(ctxT(t, time.Minute), "exec", "-d", "--env", "SLURM_ELASTIC_LOG_FILE="+healthDirInNodes+"/health-"+n+".log",
		"--env", "SLURM_ELASTIC_LOG_LEVEL=debug", h.ctr, "/bin/sh", "-c", `echo $$ >"$0" && exec "$@"`, healthDirInNodes+"/pid-"+n,
		healthDirInNodes+"/slurm-elastic-health", "--node", n); err != nil {
		t.Fatalf("start the health daemon in %s: %v", h.ctr, err)
	}
	waitFor(t, time.Minute, "the health daemon to start", func() (bool, string) {
		log := h.readLog(t)
		return strings.Contains(log, `"msg":"health daemon started"`), log
	})
	return h
}

// TestHealthDrain runs the health daemon inside a node container of the
// real cluster: a full scratch file system drains the node with the disk
// check's reason and freeing it gives the node back; an admin's drain is
// never undrained; a failing custom check drains the node with our reason
// while its job runs to the end and no new job lands there; clearing the
// fault returns the node to service.
func TestHealthDrain(t *testing.T) {
	reset(t)
	const n = "cloud1"
	h := startHealthNode(t, n, healthSection(time.Second, 2, 2))
	fault, release := h.fault, h.release
	readLog := func() string { return h.readLog(t) }
	job1 := h.job

	// 1. The scratch path fills up: drained with the disk check's reason
	// while the job keeps running; freed: back in service.
	fillScratch(t, h.ctr)
	waitFor(t, time.Minute, n+" drained for its full scratch path", func() (bool, string) {
		nd := node(t, n)
		return nd.has("DRAIN") && strings.HasPrefix(nd.Reason, "slurm-elastic-health: disk: "+scratchInNodes+": "), strings.Join(nd.State, ",") + " " + nd.Reason
	})
	if j := getJob(t, job1); !slices.Contains(j.State, "RUNNING") {
		t.Fatalf("the running job was disturbed by the drain: %+v", j)
	}
	freeScratch(t, h.ctr)
	waitFor(t, time.Minute, n+" undrained after the scratch path was freed", func() (bool, string) {
		nd := node(t, n)
		return !nd.has("DRAIN"), strings.Join(nd.State, ",") + " " + nd.Reason
	})

	// 2. An admin's drain: a failing check neither rewrites nor undrains it.
	run(t, "scontrol", "update", "nodename="+n, "state=drain", "reason=admin: memtest")
	if err := os.WriteFile(fault, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The daemon leaves a node DOWN or drained with someone else's reason
	// alone, whatever its checks say (nodehealth.Policy.Decide).
	const leftAlone = "with a reason that is not ours (admin: memtest): left alone"
	waitFor(t, time.Minute, "the daemon to see the admin's drain", func() (bool, string) {
		return strings.Contains(readLog(), leftAlone), node(t, n).Reason
	})
	if err := os.Remove(fault); err != nil {
		t.Fatal(err)
	}
	mark := len(readLog())
	waitFor(t, time.Minute, "several clean rounds", func() (bool, string) {
		return countLines(readLog()[mark:], `"msg":"health decision: nothing to do"`, `"why":"nothing to do"`) >= 4, ""
	})
	if nd := node(t, n); !nd.has("DRAIN") || nd.Reason != "admin: memtest" {
		t.Fatalf("the admin's drain was changed: %v %q", nd.State, nd.Reason)
	}
	run(t, "scontrol", "update", "nodename="+n, "state=resume")

	// 3. A failing check drains the node with our reason.
	if err := os.WriteFile(fault, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, n+" drained by the health daemon", func() (bool, string) {
		nd := node(t, n)
		return nd.has("DRAIN") && strings.HasPrefix(nd.Reason, "slurm-elastic-health: fault: injected fault on "+n), strings.Join(nd.State, ",") + " " + nd.Reason
	})
	if j := getJob(t, job1); !slices.Contains(j.State, "RUNNING") {
		t.Fatalf("the running job was disturbed by the drain: %+v", j)
	}
	job2 := sbatch(t, "-p", "cloud", "-w", n, "-o", "/shared/health/job-%j.out", "--wrap", "hostname")
	// The running job finishes on the drained node; the new one must not start there.
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitJob(t, job1, 2*time.Minute, "COMPLETED")
	if j := getJob(t, job2); !slices.Contains(j.State, "PENDING") {
		t.Fatalf("a job landed on the drained node: %+v", j)
	}

	// 4. The fault clears: the node returns to service and takes the job.
	if err := os.Remove(fault); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, n+" undrained", func() (bool, string) {
		nd := node(t, n)
		return !nd.has("DRAIN"), strings.Join(nd.State, ",") + " " + nd.Reason
	})
	waitJob(t, job2, 3*time.Minute, "COMPLETED")
	log := readLog()
	if countLines(log, `"msg":"health decision applied"`, `"op":"drain"`) != 2 || countLines(log, `"msg":"health decision applied"`, `"op":"undrain"`) != 2 {
		t.Errorf("want exactly two drains (disk, fault) and two undrains by the daemon:\n%s", log)
	}
	waitCloudIdle(t, 3*time.Minute)
}

// procSample is one look at a process through /proc inside a container.
type procSample struct {
	at               time.Time
	cpuTicks         int64 // utime+stime of the process
	childTicks       int64 // cutime+cstime: reaped children (custom checks, scontrol)
	rssKB, rssPeakKB int64 // VmRSS, VmHWM
}

// sampleProc reads /proc/pid/stat and /proc/pid/status in ctr.
func sampleProc(t *testing.T, ctr, pid string) procSample {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	s := procSample{at: time.Now()}
	stat, err := cl.Podman(ctx, "exec", ctr, "cat", "/proc/"+pid+"/stat")
	if err != nil {
		t.Fatalf("the health daemon (pid %s in %s) is gone: %v", pid, ctr, err)
	}
	// Fields after the command name "(...)": state is field 3; utime,
	// stime, cutime, cstime are fields 14-17.
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(f) < 15 {
		t.Fatalf("/proc/%s/stat: %q", pid, stat)
	}
	num := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	s.cpuTicks, s.childTicks = num(f[11])+num(f[12]), num(f[13])+num(f[14])
	status, err := cl.Podman(ctx, "exec", ctr, "cat", "/proc/"+pid+"/status")
	if err != nil {
		t.Fatalf("the health daemon (pid %s in %s) is gone: %v", pid, ctr, err)
	}
	for _, l := range strings.Split(status, "\n") {
		k, v, _ := strings.Cut(l, ":")
		var kb int64
		fmt.Sscan(v, &kb)
		switch k {
		case "VmRSS":
			s.rssKB = kb
		case "VmHWM":
			s.rssPeakKB = kb
		}
	}
	return s
}

// drainAppliedAt returns the time of the daemon's drain in log (JSON
// lines).
func drainAppliedAt(t *testing.T, log string) time.Time {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		var e struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			Op   string    `json:"op"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Msg == "health decision applied" && e.Op == "drain" {
			return e.Time
		}
	}
	t.Fatalf("no drain in the daemon's log:\n%s", log)
	return time.Time{}
}

// TestHealthLatency is benchmark 4b of docs/benchmarks.md, run by `make
// bench-health` (SE_BENCH_HEALTH=1; it is skipped otherwise, being a
// measurement, not a check): the health daemon (interval 10s, drain_after
// 1, undrain_after 1) runs in a node container of the real cluster; each
// trial fills the scratch path and measures the time until slurmctld
// reports the node DRAINED with the disk check's reason, then frees it and
// waits for the undrain. It fails when a drain or undrain does not happen
// within generous deadlines, never on a missed target. It also reports the
// daemon's CPU and RSS in the container, first over 6 healthy intervals,
// then over the trials (scontrol backend: each read of the node is a
// `scontrol` process, counted as child CPU with the custom check's).
func TestHealthLatency(t *testing.T) {
	if os.Getenv("SE_BENCH_HEALTH") == "" {
		t.Skip("a benchmark: run with SE_BENCH_HEALTH=1 (make bench-health)")
	}
	trials := 6
	if v, err := strconv.Atoi(os.Getenv("SE_BENCH_HEALTH_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	const interval = 10 * time.Second
	reset(t)
	const n = "cloud2"
	h := startHealthNode(t, n, healthSection(interval, 1, 1))
	pid := ""
	waitFor(t, time.Minute, "the daemon's pid file", func() (bool, string) {
		b, _ := os.ReadFile(h.pidF)
		pid = strings.TrimSpace(string(b))
		return pid != "", ""
	})
	// Steady state: a healthy node, rounds every interval, Slurm asked
	// once per health refresh (1m), the custom check forked every round.
	const hz = 100 // USER_HZ
	quiet0 := sampleProc(t, h.ctr, pid)
	time.Sleep(6 * interval)
	quiet := sampleProc(t, h.ctr, pid)
	qwall := quiet.at.Sub(quiet0.at).Seconds()
	qown, qkids := float64(quiet.cpuTicks-quiet0.cpuTicks)/hz, float64(quiet.childTicks-quiet0.childTicks)/hz
	t.Logf("BENCH health daemon in a node container, healthy, over %.0f s: CPU %.3f%% of a core (own %.2f s) + %.3f%% in children (scontrol, custom check: %.2f s); RSS %d KiB",
		qwall, 100*qown/qwall, qown, 100*qkids/qwall, qkids, quiet.rssKB)
	first := sampleProc(t, h.ctr, pid)
	reasonPrefix := "slurm-elastic-health: disk: " + scratchInNodes + ": "
	var lat, applied []time.Duration
	for i := range trials {
		// Start each trial at a different phase of the daemon's interval
		// (the previous undrain happened at a round).
		time.Sleep(time.Duration(i) * interval / time.Duration(trials))
		mark := len(h.readLog(t))
		fillScratch(t, h.ctr)
		t0 := time.Now() // the fault is in place
		var d time.Duration
		for {
			nd := node(t, n)
			if nd.has("DRAIN") && strings.HasPrefix(nd.Reason, reasonPrefix) {
				d = time.Since(t0)
				break
			}
			if time.Since(t0) > 3*interval {
				t.Fatalf("trial %d: %s not drained %v after the scratch path filled: %v %q", i+1, n, 3*interval, nd.State, nd.Reason)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// When slurmctld accepted the drain, from the daemon's log (the
		// node container shares the host's clock).
		at := drainAppliedAt(t, h.readLog(t)[mark:])
		lat, applied = append(lat, d), append(applied, at.Sub(t0))
		t.Logf("BENCH health polled fault->DRAIN trial %d: seen in slurmctld after %.2f s (drain applied by the daemon after %.2f s)", i+1, d.Seconds(), at.Sub(t0).Seconds())
		freeScratch(t, h.ctr)
		waitFor(t, 3*interval, n+" undrained after the scratch path was freed", func() (bool, string) {
			nd := node(t, n)
			return !nd.has("DRAIN"), strings.Join(nd.State, ",") + " " + nd.Reason
		})
	}
	last := sampleProc(t, h.ctr, pid)
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	wall := last.at.Sub(first.at).Seconds()
	own := float64(last.cpuTicks-first.cpuTicks) / hz
	kids := float64(last.childTicks-first.childTicks) / hz
	sortedApplied := slices.Clone(applied)
	slices.Sort(sortedApplied)
	t.Logf("BENCH health polled fault->DRAIN (interval %s, drain_after 1, real slurmctld, scontrol backend, %d trials): seen min %.2f s, median %.2f s, max %.2f s; applied min %.2f s, median %.2f s, max %.2f s",
		interval, trials, sorted[0].Seconds(), sorted[len(sorted)/2].Seconds(), sorted[len(sorted)-1].Seconds(),
		sortedApplied[0].Seconds(), sortedApplied[len(sorted)/2].Seconds(), sortedApplied[len(sorted)-1].Seconds())
	t.Logf("BENCH health daemon in a node container during the trials (%.0f s): CPU %.3f%% of a core (own %.2f s) + %.3f%% in children (scontrol, custom check: %.2f s); RSS %d KiB now, peak %d KiB",
		wall, 100*own/wall, own, 100*kids/wall, kids, last.rssKB, last.rssPeakKB)
	if out := os.Getenv("SE_BENCH_OUT"); out != "" {
		ms, ams := make([]float64, len(lat)), make([]float64, len(lat))
		for i := range lat {
			ms[i], ams[i] = lat[i].Seconds(), applied[i].Seconds()
		}
		js, err := json.MarshalIndent(map[string]any{"interval_s": interval.Seconds(), "latencies_s": ms, "applied_s": ams, "wall_s": wall,
			"healthy_wall_s": qwall, "healthy_cpu_own_s": qown, "healthy_cpu_children_s": qkids, "healthy_rss_kib": quiet.rssKB,
			"cpu_own_s": own, "cpu_children_s": kids, "rss_kib": last.rssKB, "rss_peak_kib": last.rssPeakKB}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "health-latency.json"), js, 0o644); err != nil {
			t.Error(err)
		}
	}
	if err := os.WriteFile(h.release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitJob(t, h.job, 2*time.Minute, "COMPLETED")
	waitCloudIdle(t, 3*time.Minute)
}
