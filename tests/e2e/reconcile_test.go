package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
)

const adminBin = "/usr/bin/slurm-elastic" // harness.AdminCLIInHead: the package's path; the harness mounts SE_BIN_DIR's there too

// reconcileOnce runs one reconciler round in head as SlurmUser, as the
// daemon would, with a short orphan grace. Its log goes to daemon.log.
func reconcileOnce(ctx context.Context) (string, error) {
	return cl.ExecAs(ctx, "slurm", adminBin, "daemon", "--once", "--orphan-grace", "5s", "--log", "/var/log/slurm-elastic/daemon.log")
}

// reconcileLoop runs a round every 2 s until the returned stop is called
// (also on cleanup). Each round is its own short process, so nothing is
// left running in head when the test ends.
func reconcileLoop(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			rctx, rcancel := context.WithTimeout(ctx, time.Minute)
			if _, err := reconcileOnce(rctx); err != nil && ctx.Err() == nil {
				t.Logf("reconcile round: %v", err)
			}
			rcancel()
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

type event = elastic.Event

// reconcileEvents returns the reconciler's events for node ("" = every node) of kind.
func reconcileEvents(t *testing.T, node, kind string) []event {
	t.Helper()
	args := []string{adminBin, "events", "--json", "--kind", kind}
	if node != "" {
		args = append(args, "--node", node)
	}
	evs, err := elastic.ParseEvents(run(t, args...))
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func daemonLog(t *testing.T) string {
	b, _ := os.ReadFile(filepath.Join(cl.LogDir, "daemon.log"))
	return string(b)
}

// TestReconcileOrphan: a node container left behind while its node is
// powered down (a resume killed half way) is removed within two rounds,
// and the removal is an event.
func TestReconcileOrphan(t *testing.T) {
	reset(t)
	ctx := ctxT(t, 5*time.Minute)
	before := node(t, "cloud4")
	name := cl.Name + "-leftover-cloud4"
	t.Cleanup(func() { cl.Podman(context.Background(), "rm", "-f", "--time", "0", name) })
	if _, err := cl.Podman(ctx, "run", "-d", "--name", name, "--network", "none",
		"--label", "slurm-elastic.cluster="+cl.Name, "--label", "slurm-elastic.group=cloud", "--label", "slurm-elastic.node=cloud4",
		"--entrypoint", "sleep", cl.Image, "3600"); err != nil {
		t.Fatal(err)
	}
	if c := containers(t); len(c["cloud4"]) != 1 {
		t.Fatalf("leftover container not seen: %v", c)
	}
	time.Sleep(6 * time.Second) // older than the 5s orphan grace
	rounds := 0
	for ; rounds < 2 && len(containers(t)["cloud4"]) > 0; rounds++ {
		if out, err := reconcileOnce(ctx); err != nil {
			t.Logf("round %d: %v %s", rounds+1, err, out)
		}
	}
	if c := containers(t); len(c["cloud4"]) != 0 {
		t.Fatalf("orphan still there after %d rounds: %v\n%s", rounds, c, daemonLog(t))
	}
	if ev := reconcileEvents(t, "cloud4", "orphan"); len(ev) == 0 || ev[len(ev)-1].Error != "" {
		t.Fatalf("no successful orphan event for cloud4: %+v", ev)
	}
	t.Logf("orphan removed in %d round(s)", rounds)
	if n := node(t, "cloud4"); !n.has("POWERED_DOWN") || n.Reason != before.Reason || n.has("DOWN") != before.has("DOWN") {
		t.Fatalf("cloud4 changed by the orphan removal: %+v", n)
	}
	waitCloudIdle(t, 2*time.Minute)
}

// TestReconcileFailover: the container of a node running a job is killed;
// the reconciler sets the node DOWN (Slurm requeues the job, which then
// completes), powers it down, and the node can be launched again.
func TestReconcileFailover(t *testing.T) {
	reset(t)
	stop := reconcileLoop(t)

	id := sbatch(t, "-p", "cloud", "-N1", "--requeue", "-o", "/shared/job-%j.out", "--wrap", "sleep 20; hostname")
	j := waitJob(t, id, 3*time.Minute, "RUNNING")
	victim := j.Nodes
	// RUNNING comes with the allocation; wait for the node to be up.
	waitFor(t, 2*time.Minute, "job "+id+" running on an up "+victim, func() (bool, string) {
		n := node(t, victim)
		j = getJob(t, id)
		return n.has("ALLOCATED") && !n.has("POWERING_UP") && !slices.Contains(j.State, "CONFIGURING"), fmt.Sprintf("%+v %+v", n, j)
	})
	cs := containers(t)[victim]
	if len(cs) != 1 {
		t.Fatalf("job %s runs on %s, containers %v", id, victim, containers(t))
	}
	killed := time.Now()
	if _, err := cl.Podman(ctxT(t, time.Minute), "kill", strings.Fields(cs[0])[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the reconciler to fail "+victim+" over", func() (bool, string) {
		ev := reconcileEvents(t, victim, "dead")
		return len(ev) > 0 && ev[len(ev)-1].Error == "", fmt.Sprintf("events %+v node %+v", ev, node(t, victim))
	})
	t.Logf("%s failed over %v after the kill", victim, time.Since(killed).Round(time.Millisecond))
	j = waitJob(t, id, 4*time.Minute, "COMPLETED")
	if j.Restarts < 1 {
		t.Fatalf("job %s completed without a requeue: %+v", id, j)
	}
	out, _ := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
	t.Logf("job %s requeued %d time(s), completed on %s (%v after the kill)", id, j.Restarts, strings.TrimSpace(string(out)), time.Since(killed).Round(time.Second))
	waitCloudIdle(t, 3*time.Minute)

	// The dead node comes back: a job pinned to it runs.
	id = sbatch(t, "-p", "cloud", "-N1", "-w", victim, "-o", "/shared/job-%j.out", "--wrap", "hostname")
	waitJob(t, id, 3*time.Minute, "COMPLETED")
	waitCloudIdle(t, 2*time.Minute)
	stop()
	if l := daemonLog(t); !strings.Contains(l, `"kind":"dead"`) || !strings.Contains(l, `"node":"`+victim+`"`) {
		t.Errorf("daemon log lacks the decision:\n%s", l)
	}
}

// TestReconcileUnhealthy: an idle node drained by the health daemon is
// powered down and comes back clean; one whose drain reason carries the
// hold prefix is left alone.
func TestReconcileUnhealthy(t *testing.T) {
	reset(t)
	id := sbatch(t, "-p", "cloud", "-N2", "-w", "cloud[1-2]", "-o", "/shared/job-%j.out", "--wrap", "srun hostname")
	waitJob(t, id, 3*time.Minute, "COMPLETED")
	waitFor(t, time.Minute, "cloud[1-2] idle and up", func() (bool, string) {
		for _, n := range nodes(t, "cloud[1-2]") {
			if !n.has("IDLE") || n.has("COMPLETING") || n.has("POWERED_DOWN") || n.has("POWERING_DOWN") {
				return false, fmt.Sprintf("%+v", n)
			}
		}
		return true, ""
	})
	// Slurm powers idle nodes down after SuspendTime (15s): drain and
	// reconcile at once.
	held := "slurm-elastic-health: e2e gpu0 XID 79 hold: e2e"
	run(t, "scontrol", "update", "nodename=cloud1", "state=drain", "reason=slurm-elastic-health: e2e gpu0 XID 79")
	run(t, "scontrol", "update", "nodename=cloud2", "state=drain", "reason="+held)
	if out, err := reconcileOnce(ctxT(t, time.Minute)); err != nil {
		t.Fatalf("round: %v %s\n%s", err, out, daemonLog(t))
	}
	if ev := reconcileEvents(t, "cloud1", "unhealthy"); len(ev) == 0 || ev[len(ev)-1].Error != "" {
		t.Fatalf("cloud1 not replaced: %+v %+v\n%s", ev, node(t, "cloud1"), daemonLog(t))
	}
	if ev := reconcileEvents(t, "cloud2", "unhealthy"); len(ev) != 0 {
		t.Fatalf("held cloud2 replaced: %+v", ev)
	}
	if n := node(t, "cloud2"); n.Reason != held {
		t.Fatalf("held cloud2's reason changed: %+v", n)
	}
	run(t, "scontrol", "update", "nodename=cloud2", "state=resume")
	reconcileLoop(t)
	waitFor(t, 3*time.Minute, "cloud1 powered down, undrained, no container", func() (bool, string) {
		n := node(t, "cloud1")
		return n.has("POWERED_DOWN") && n.has("IDLE") && !n.has("DRAIN") && !n.has("DOWN") && len(containers(t)["cloud1"]) == 0, fmt.Sprintf("%+v", n)
	})
	waitCloudIdle(t, 2*time.Minute)
}

// TestReconcileCapacityCooldown: with room for one node container only,
// the launch of a second node fails with a Capacity reason; the reconciler
// cools the group down (its idle nodes drained with our Cooldown reason,
// shown by `slurm-elastic status`), and when the cooldown is over the
// nodes come back and the waiting job runs.
func TestReconcileCapacityCooldown(t *testing.T) {
	reset(t)
	raw := rawConfig(t)
	if !strings.Contains(raw, "\n      uri: ") {
		t.Fatalf("rendered config has no Podman host uri line:\n%s", raw)
	}
	raw = strings.Replace(raw, "\n      uri: ", "\n      max_nodes: 1\n      uri: ", 1) + "daemon:\n  capacity_cooldown: 20s\n"
	configure(t, elastic.Settings{Raw: raw})
	t.Cleanup(func() { cl.Configure(context.Background(), elastic.Settings{Name: cl.Name}) })
	stop := reconcileLoop(t)

	a := sbatch(t, "-p", "cloud", "-N1", "-w", "cloud1", "-o", "/shared/job-%j.out", "--wrap", "sleep 30")
	waitFor(t, 2*time.Minute, "cloud1 up for job "+a, func() (bool, string) {
		n := node(t, "cloud1")
		return n.has("ALLOCATED") && !n.has("POWERING_UP"), fmt.Sprintf("%+v", n)
	})
	b := sbatch(t, "-p", "cloud", "-N1", "-w", "cloud2", "-o", "/shared/job-%j.out", "--wrap", "hostname")
	waitFor(t, 2*time.Minute, "a capacity cooldown of group cloud", func() (bool, string) {
		ev := reconcileEvents(t, "cloud2", "capacity")
		n3 := node(t, "cloud3")
		return len(ev) > 0 && n3.has("DRAIN") && strings.HasPrefix(n3.Reason, "slurm-elastic: (Code:Cooldown) group cloud paused until "),
			fmt.Sprintf("events %+v cloud2 %+v cloud3 %+v", ev, node(t, "cloud2"), n3)
	})
	if out := run(t, adminBin, "status"); !strings.Contains(out, "until 20") {
		t.Errorf("status does not show the cooldown:\n%s", out)
	}
	if j := getJob(t, b); slices.Contains(j.State, "COMPLETED") {
		t.Fatalf("job %s completed on a full host: %+v", b, j)
	}
	waitJob(t, a, 3*time.Minute, "COMPLETED")
	jb := waitJob(t, b, 5*time.Minute, "COMPLETED")
	t.Logf("job %s completed after the cooldown, requeued %d time(s)", b, jb.Restarts)
	if ev := reconcileEvents(t, "cloud3", "cooldown_end"); len(ev) == 0 {
		t.Errorf("no cooldown_end event for cloud3:\n%s", daemonLog(t))
	}
	// Slurm keeps the reason text of a resumed idle~ node as a record:
	// what matters is that no node is left drained or down.
	waitFor(t, 3*time.Minute, "cloud nodes back in service", func() (bool, string) {
		for _, n := range nodes(t, "cloud[1-4]") {
			if n.has("DRAIN") || n.has("DOWN") {
				return false, fmt.Sprintf("%+v", n)
			}
		}
		return true, ""
	})
	reset(t)
	stop()
}

// TestReconcileKilledResume: the resume hook is killed with SIGKILL half
// way through launching four nodes (as SlurmUser, as slurmctld runs it).
// Within two reconciler rounds no container is left whose node Slurm has
// powered down, no node is DOWN without a reason, and a job on all four
// nodes then runs (the killed hook's node locks died with it).
func TestReconcileKilledResume(t *testing.T) {
	reset(t)
	// One launch at a time, so the kill lands with nodes still to launch;
	// and node containers that never register (their slurmd finds no
	// controller on loopback), as when a resume dies before the nodes are
	// up: Slurm still has them powered down, so their containers are
	// orphans.
	raw := rawConfig(t)
	server := regexp.MustCompile(`conf_server: "[^"]*"`)
	const resumeConc = "resume:\n  timeout: 45s\n  concurrency: 16\n"
	if !server.MatchString(raw) || !strings.Contains(raw, resumeConc) {
		t.Fatalf("rendered config lacks slurm.conf_server or %q:\n%s", resumeConc, raw)
	}
	raw = strings.Replace(raw, resumeConc, "resume:\n  timeout: 45s\n  concurrency: 1\n", 1)
	configure(t, elastic.Settings{Raw: server.ReplaceAllString(raw, `conf_server: "127.0.0.1"`)})
	t.Cleanup(func() { cl.Configure(context.Background(), elastic.Settings{Name: cl.Name}) })
	ctx := ctxT(t, 3*time.Minute)
	const pidFile = "/tmp/se-killed-resume.pid"
	done := make(chan error, 1)
	go func() {
		// The shell writes its pid, then becomes the hook: that pid is the hook's.
		_, err := cl.ExecAs(ctx, "slurm", "sh", "-c", "echo $$ > "+pidFile+"; exec /usr/libexec/slurm-elastic/slurm-elastic-resume 'cloud[1-4]'")
		done <- err
	}()
	for deadline := time.Now().Add(time.Minute); len(containers(t)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no node container a minute after the resume started")
		}
	}
	pid := strings.TrimSpace(run(t, "cat", pidFile))
	if _, err := cl.Exec(ctx, "kill", "-9", pid); err != nil {
		t.Fatalf("kill -9 %s: %v", pid, err)
	}
	if err := <-done; err == nil {
		t.Fatal("the resume hook was not killed: it finished")
	}
	killed := containers(t)
	t.Logf("resume killed with containers %v", killed)
	// Calls in flight finish in the Podman service; then the orphans age
	// past the test's 5s grace.
	time.Sleep(8 * time.Second)
	orphans := func() []string {
		var left []string
		c := containers(t)
		for _, n := range nodes(t, "cloud[1-4]") {
			if len(c[n.Name]) > 0 && n.has("POWERED_DOWN") && !n.has("POWERING_UP") {
				left = append(left, n.Name)
			}
		}
		return left
	}
	if o := orphans(); len(o) == 0 {
		t.Fatalf("no orphan after the kill (containers %v): the test proves nothing", containers(t))
	}
	rounds := 0
	for ; rounds < 2 && len(orphans()) > 0; rounds++ {
		if out, err := reconcileOnce(ctx); err != nil {
			t.Logf("round %d: %v %s", rounds+1, err, out)
		}
	}
	if left := orphans(); len(left) > 0 {
		t.Fatalf("orphans left after %d rounds: %v %v\n%s", rounds, left, containers(t), daemonLog(t))
	}
	t.Logf("orphans removed in %d round(s); containers now %v", rounds, containers(t))
	for n := range killed {
		if ev := reconcileEvents(t, n, "orphan"); len(ev) == 0 || ev[len(ev)-1].Error != "" {
			t.Errorf("no successful orphan event for %s: %+v", n, ev)
		}
	}
	configure(t, elastic.Settings{})
	for _, n := range nodes(t, "cloud[1-4]") {
		if n.has("DOWN") && n.Reason == "" {
			t.Errorf("%s DOWN without a reason: %+v", n.Name, n)
		}
	}
	id := sbatch(t, "-p", "cloud", "-N4", "-o", "/shared/job-%j.out", "--wrap", "srun hostname")
	waitJob(t, id, 3*time.Minute, "COMPLETED")
	waitCloudIdle(t, 2*time.Minute)
}

// rawConfig renders the cluster's usual config (scontrol backend) as text,
// for the tests that edit it before installing it with configure(Settings{Raw: …}).
func rawConfig(t *testing.T) string {
	t.Helper()
	raw, err := elastic.Config(elastic.Settings{Name: cl.Name, Backend: "scontrol", SuspendTime: 15 * time.Second, CloudNodes: 4, Concurrency: 16},
		cl.Cluster, cl.SharedDir)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
