package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// containerID returns the ID of node's one container ("" when it has
// none) and whether it runs; it fails the test on more than one.
func containerID(t *testing.T, node string) (id string, running bool) {
	t.Helper()
	out, err := cl.Podman(ctxT(t, time.Minute), "ps", "-a", "--no-trunc",
		"--filter", "label=slurm-elastic.cluster="+cl.Name, "--filter", "label=slurm-elastic.node="+node,
		"--format", "{{.ID}}|{{.State}}")
	if err != nil {
		t.Fatalf("podman ps: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	switch {
	case strings.TrimSpace(out) == "":
		return "", false
	case len(lines) == 1:
		id, st, _ := strings.Cut(lines[0], "|")
		return id, st == "running" || strings.HasPrefix(st, "Up ")
	}
	t.Fatalf("node %s: want at most one container, have %q", node, out)
	return "", false
}

// upIdle waits until node is up and idle (registered, not powering, no
// reboot pending) with one running container, and returns its ID.
func upIdle(t *testing.T, name string, d time.Duration) string {
	t.Helper()
	var id string
	waitFor(t, d, name+" up and idle in a running container", func() (bool, string) {
		n := node(t, name)
		var up bool
		id, up = containerID(t, name)
		return n.has("IDLE") && !n.has("DOWN") && !n.has("DRAIN") && !n.has("POWERED_DOWN") && !n.has("POWERING_UP") &&
			!n.has("POWERING_DOWN") && !n.has("REBOOT_ISSUED") && !n.has("REBOOT_REQUESTED") && up, fmt.Sprintf("%+v container %s running %v", n, id, up)
	})
	return id
}

// TestReboot: `scontrol reboot NODE` of a powered-up node gives it a fresh
// container (RebootProgram, slurm-elastic-node-reboot, stops the old one;
// the reconciler launches a new one from the same image) and Slurm puts it
// back in service. A job running when the reboot is asked completes first
// (Slurm reboots the node once it is idle) and is not requeued. A node
// drained before `scontrol reboot reason=...` comes back drained with that
// reason, as scontrol(1) documents. (nextstate=DOWN is not checked here:
// the harness runs ReturnToService=2, under which slurmctld returns any
// DOWN node that answers to service, the rebooted one too.)
func TestReboot(t *testing.T) {
	const victim = "cloud1"
	reset(t)
	// Events of this test only: the state dir outlives tests (-count=N, or
	// another test rebooting the node first).
	begin := time.Now()
	events := func(kind string) []event {
		var out []event
		for _, e := range reconcileEvents(t, victim, kind) {
			if !e.Time.Before(begin) {
				out = append(out, e)
			}
		}
		return out
	}
	stop := reconcileLoop(t)
	t.Cleanup(func() {
		if n := node(t, victim); n.has("DOWN") || n.has("DRAIN") {
			run(t, "scontrol", "update", "nodename="+victim, "state=resume")
		}
	})

	// A job on the node when the reboot is asked: it must finish first.
	id := sbatch(t, "-p", "cloud", "-N1", "-w", victim, "-o", "/shared/job-%j.out", "--wrap", "sleep 15; hostname")
	waitFor(t, 3*time.Minute, "job "+id+" running on an up "+victim, func() (bool, string) {
		n := node(t, victim)
		j := getJob(t, id)
		return n.has("ALLOCATED") && !n.has("POWERING_UP") && j.State[0] == "RUNNING", fmt.Sprintf("%+v %+v", n, j)
	})
	old, up := containerID(t, victim)
	if old == "" || !up {
		t.Fatalf("%s: no running container (%q)", victim, old)
	}
	run(t, "scontrol", "reboot", victim)
	if n := node(t, victim); !n.has("REBOOT_REQUESTED") {
		t.Fatalf("after scontrol reboot, %s is %+v (want REBOOT_REQUESTED while its job runs)", victim, n)
	}
	if now, _ := containerID(t, victim); now != old {
		t.Fatalf("container replaced while the job runs: %s -> %s", old, now)
	}
	asked := time.Now()
	j := waitJob(t, id, 2*time.Minute, "COMPLETED")
	if j.Restarts != 0 {
		t.Fatalf("job %s requeued %d time(s) by the reboot", id, j.Restarts)
	}
	out, _ := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
	if strings.TrimSpace(string(out)) != victim {
		t.Fatalf("job %s output %q, want %s", id, out, victim)
	}
	fresh := upIdle(t, victim, 2*time.Minute)
	if fresh == old {
		t.Fatalf("%s back in service in the same container %s: not rebooted", victim, old)
	}
	t.Logf("%s rebooted into a fresh container %.12s (was %.12s) %v after scontrol reboot", victim, fresh, old, time.Since(asked).Round(time.Second))
	if ev := events("reboot"); len(ev) != 1 || ev[0].Error != "" {
		t.Fatalf("want one successful reboot event for %s, have %+v\n%s", victim, ev, daemonLog(t))
	}
	if ev := events("dead"); len(ev) != 0 {
		t.Fatalf("the stopped container was taken for a dead node: %+v", ev)
	}

	// Drained before the reboot, `scontrol reboot reason=...`: back in a
	// fresh container, still drained, with that reason (Slurm keeps a drain
	// set before the reboot; only ASAP's own drain is lifted).
	old = fresh
	if _, up := containerID(t, victim); !up || node(t, victim).has("POWERED_DOWN") {
		// SuspendTime (15s) may have powered it down meanwhile: power it up.
		waitCloudIdle(t, 2*time.Minute)
		run(t, "scontrol", "update", "nodename="+victim, "state=power_up")
		old = upIdle(t, victim, 2*time.Minute)
	}
	const why = "e2e reboot check"
	run(t, "scontrol", "update", "nodename="+victim, "state=drain", "reason=e2e drained first")
	run(t, "scontrol", "reboot", "reason="+why, victim)
	var n slurmNode
	waitFor(t, 2*time.Minute, victim+" rebooted into a fresh container and still drained", func() (bool, string) {
		n = node(t, victim)
		cur, up := containerID(t, victim)
		return n.has("DRAIN") && !n.has("DOWN") && !n.has("REBOOT_ISSUED") && !n.has("REBOOT_REQUESTED") && !n.has("POWERED_DOWN") &&
			cur != old && cur != "" && up, fmt.Sprintf("%+v container %s running %v", n, cur, up)
	})
	if !strings.HasPrefix(n.Reason, why) || !strings.Contains(n.Reason, "reboot issued") {
		t.Fatalf("%s reason %q, want %q then Slurm's \"reboot issued\"", victim, n.Reason, why)
	}
	t.Logf("%s after a reboot while drained: %v, reason %q", victim, n.State, n.Reason)
	if ev := events("reboot"); len(ev) != 2 || ev[1].Error != "" {
		t.Fatalf("want two successful reboot events, have %+v", ev)
	}
	if ev := events("dead"); len(ev) != 0 {
		t.Fatalf("the stopped container was taken for a dead node: %+v", ev)
	}
	run(t, "scontrol", "update", "nodename="+victim, "state=resume")
	stop()
	waitCloudIdle(t, 3*time.Minute)
}
