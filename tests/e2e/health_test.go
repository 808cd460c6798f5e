package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// healthConfig is the cluster's config as a node sees it (scontrol backend,
// no token) with a health section whose custom check "fault" fails while
// the file fault-NODE exists in the shared health directory.
func healthConfig(t *testing.T, dir string) {
	t.Helper()
	s := cl.Settings
	base, err := elastic.Config(s, nil, elastic.SharedInNodes)
	if err != nil {
		t.Fatal(err)
	}
	health := `
health:
  interval: 1s
  check_timeout: 5s
  drain_after: 2
  undrain_after: 2
  memory: {min_total_percent: 0, min_available_percent: 0}
  cpus: {expected: -1}
  disks: [{path: /tmp, min_free_percent: 0.1}]
  custom:
    - name: fault
      command: [` + healthDirInNodes + `/fault.sh]
      timeout: 5s
`
	script := "#!/bin/sh\nif [ -e " + healthDirInNodes + "/fault-$(cat /proc/sys/kernel/hostname) ]; then echo \"injected fault on $(cat /proc/sys/kernel/hostname)\"; exit 1; fi\necho ok\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(base+health), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fault.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
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

// TestHealthDrain runs the health daemon inside a node container of the
// real cluster: an admin's drain is never undrained; a failing custom check
// drains the node with our reason while its job runs to the end and no new
// job lands there; clearing the fault returns the node to service.
func TestHealthDrain(t *testing.T) {
	reset(t)
	dir := filepath.Join(cl.SharedDir, "health")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	buildHealth(t, dir)
	healthConfig(t, dir)
	const n = "cloud1"
	fault := filepath.Join(dir, "fault-"+n)
	release := filepath.Join(dir, "release-"+n)
	logFile := filepath.Join(dir, "health-"+n+".log")
	for _, f := range []string{fault, release, logFile} {
		_ = os.Remove(f)
	}
	readLog := func() string {
		b, err := os.ReadFile(logFile)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("health daemon log:\n%s", readLog())
		}
		_ = os.WriteFile(release, nil, 0o644)
		_ = os.Remove(fault)
	})

	// A job that holds cloud1 until released keeps the node up.
	job1 := sbatch(t, "-p", "cloud", "-w", n, "-o", "/shared/health/job-%j.out",
		"--wrap", "while [ ! -e "+healthDirInNodes+"/release-"+n+" ]; do sleep 1; done")
	waitJob(t, job1, 3*time.Minute, "RUNNING")
	// RUNNING includes CONFIGURING: wait for the node to be up.
	waitFor(t, 3*time.Minute, n+" powered up", func() (bool, string) {
		nd := node(t, n)
		j := getJob(t, job1)
		return !nd.has("POWERING_UP") && !slices.Contains(j.State, "CONFIGURING"), strings.Join(nd.State, ",") + " job " + strings.Join(j.State, ",")
	})
	ctr := containerOf(t, n)
	if _, err := cl.Podman(ctxT(t, time.Minute), "exec", "-d", "--env", "SLURM_ELASTIC_LOG_FILE="+healthDirInNodes+"/health-"+n+".log",
		ctr, healthDirInNodes+"/slurm-elastic-health", "--config", healthDirInNodes+"/config.yaml", "--node", n); err != nil {
		t.Fatalf("start the health daemon in %s: %v", ctr, err)
	}
	waitFor(t, time.Minute, "the health daemon to start", func() (bool, string) {
		log := readLog()
		return strings.Contains(log, `"msg":"health daemon started"`), log
	})

	// 1. An admin's drain: a failing check neither rewrites nor undrains it.
	run(t, "scontrol", "update", "nodename="+n, "state=drain", "reason=admin: memtest")
	if err := os.WriteFile(fault, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the daemon to see the admin's drain", func() (bool, string) {
		return strings.Contains(readLog(), "drained by someone else"), node(t, n).Reason
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

	// 2. A failing check drains the node with our reason.
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

	// 3. The fault clears: the node returns to service and takes the job.
	if err := os.Remove(fault); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, n+" undrained", func() (bool, string) {
		nd := node(t, n)
		return !nd.has("DRAIN"), strings.Join(nd.State, ",") + " " + nd.Reason
	})
	waitJob(t, job2, 3*time.Minute, "COMPLETED")
	log := readLog()
	if countLines(log, `"msg":"health decision applied"`, `"op":"drain"`) != 1 || countLines(log, `"msg":"health decision applied"`, `"op":"undrain"`) != 1 {
		t.Errorf("want exactly one drain and one undrain by the daemon:\n%s", log)
	}
	waitCloudIdle(t, 3*time.Minute)
}
