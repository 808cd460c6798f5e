package kubee2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/kubernetes"
	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
	"github.com/slurm-elastic/slurm-elastic/tests/kube"
)

// What the admin sets up, as the operations guide and the shipped RBAC say:
// the manifest, its namespace, account and Secret (the config's defaults),
// and where the head keeps the kubeconfig it is given.
const (
	rbacManifest     = "../../packaging/kubernetes/rbac.yaml"
	unitFile         = "../../packaging/systemd/slurm-elastic.service"
	namespace        = "slurm-elastic"
	account          = "slurm-elastic"
	mungeSecret      = "slurm-elastic-munge"
	kubeconfigInHead = "/etc/slurm-elastic/kubeconfig"
	adminBin         = harness.AdminCLIInHead
	// daemonPidInHead is where the reconciler's pid is kept, to stop it.
	daemonPidInHead = "/run/slurm-elastic-test-daemon.pid"
)

// daemon is the reconciler's config: short rounds and timers, so the
// tests wait seconds, not minutes.
const daemon = `daemon:
  interval: 2s
  orphan_grace: 10s
  capacity_cooldown: 30s
`

var (
	cl   *elastic.Cluster
	kc   *kube.Cluster
	core corev1client.CoreV1Interface // the Kubernetes admin's (the tests look and break; the product acts as its account)
	// kubeconfig is the one the head is given (the account's token).
	kubeconfig []byte
)

// settings is the cluster's normal config: the group k8s on Kubernetes
// with the kubeconfig in head, the reconciler's short timers.
func settings() elastic.Settings {
	return elastic.Settings{Name: cl.Name, Debs: cl.Settings.Debs, Extra: daemon,
		Kubernetes: &elastic.Kube{Kubeconfig: kubeconfigInHead}}
}

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("kubee2e: not run with -short: every test here needs the Slurm and the Kubernetes cluster")
		os.Exit(0)
	}
	code, err := start()
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintf(os.Stderr, "kubee2e: start: %v\n", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if code != 0 && cl != nil {
		fmt.Fprintf(os.Stderr, "kubee2e: diagnostics after failure:\n%s\n", cl.Diagnostics(ctx))
		if out, err := cl.Exec(ctx, "tail", "-n", "80", "/var/log/slurm-elastic/slurm-elastic.log"); err == nil {
			fmt.Fprintf(os.Stderr, "kubee2e: slurm-elastic.log (tail):\n%s\n", out)
		}
	}
	if cl != nil {
		stopDaemon(ctx)
		if err := cl.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "kubee2e: stop cluster: %v\n", err)
			code = 1
		}
	}
	if kc != nil {
		if err := kc.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "kubee2e: stop Kubernetes: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// start brings up both clusters and does the admin's steps: the Slurm
// cluster (its slurm.conf from the config with the k8s group), the
// Kubernetes cluster with the head's network routed to and from pods and
// its API server on the node's address, the Slurm image in its store, the
// shipped RBAC, the munge key as the Secret, a kubeconfig of the account
// in head, `conf check --connect` as SlurmUser, and the reconciler as its
// unit runs it. Names: $SE_E2E_NAME (default se-kubee2e) for Slurm,
// $SE_KUBE_NAME (default the same) for Kubernetes.
func start() (int, error) {
	binDir := os.Getenv("SE_BIN_DIR")
	if binDir == "" {
		return 1, errors.New("SE_BIN_DIR is not set: run with `make test`, or after `make build` with SE_BIN_DIR=$PWD/bin")
	}
	name := os.Getenv("SE_E2E_NAME")
	if name == "" {
		name = "se-kubee2e"
	}
	kname := os.Getenv(kube.EnvName)
	if kname == "" {
		kname = name
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s := elastic.Settings{Name: name, Extra: daemon, Kubernetes: &elastic.Kube{}}
	if deb := os.Getenv("SE_E2E_DEB"); deb != "" { // as tests/e2e's shard B: the head installs the .deb
		s.Debs = []string{deb}
	}
	var err error
	if cl, err = elastic.Start(ctx, s, binDir, os.Stderr); err != nil {
		return 1, err
	}
	if deb := os.Getenv("SE_E2E_DEB"); deb != "" {
		pkg, err := cl.VerifyPackage(ctx, deb)
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(os.Stderr, "kubee2e: head runs the packaged hooks: %s\n", pkg)
	}
	if kc, err = kube.Start(ctx, kube.Options{Name: kname, PodRoutes: []string{cl.Subnet}, APIOnGateway: true, Log: os.Stderr}); err != nil {
		return 1, err
	}
	if err := kc.ImportImage(ctx, cl.Image); err != nil {
		return 1, err
	}
	if n, err := kc.Apply(ctx, rbacManifest); err != nil || n != 4 {
		return 1, fmt.Errorf("%s: %d objects (want namespace, account, role, binding): %v", rbacManifest, n, err)
	}
	key, err := os.ReadFile(cl.MungeKey)
	if err != nil {
		return 1, err
	}
	if err := kc.CreateSecret(ctx, namespace, mungeSecret, map[string][]byte{"munge.key": key}); err != nil {
		return 1, err
	}
	if kubeconfig, err = kc.AccountKubeconfig(ctx, namespace, account, 24*time.Hour); err != nil {
		return 1, err
	}
	if core, _, err = kc.Admin(); err != nil {
		return 1, err
	}
	if err := cl.WriteFileInHead(ctx, kubeconfigInHead, kubeconfig, 0o640, "root:slurm"); err != nil {
		return 1, err
	}
	if err := cl.Configure(ctx, settings()); err != nil {
		return 1, err
	}
	out, err := cl.ExecAs(ctx, "slurm", adminBin, "--config", harness.ConfigInHead, "conf", "check", "--connect")
	if err != nil || !strings.Contains(out, "connect: ok") {
		return 1, fmt.Errorf("conf check --connect in head as slurm: %v: %s", err, out)
	}
	return 0, startDaemon(ctx)
}

// startDaemon runs the reconciler in head as the shipped unit does (its
// User= and ExecStart=), in the background; stopDaemon ends it.
func startDaemon(ctx context.Context) error {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		return err
	}
	var user string
	var argv []string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "User="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			argv = strings.Fields(v)
		}
	}
	if user == "" || len(argv) == 0 {
		return fmt.Errorf("%s: no User= or ExecStart=", unitFile)
	}
	// The daemon writes its pid where root can read it and kill it.
	if _, err := cl.Exec(ctx, "install", "-o", user, "-m", "0644", "/dev/null", daemonPidInHead); err != nil {
		return err
	}
	go func() {
		out, err := cl.ExecAs(context.Background(), user, append([]string{"sh", "-c", `echo $$ > "$0"; exec "$@"`, daemonPidInHead}, argv...)...)
		fmt.Fprintf(os.Stderr, "kubee2e: the reconciler ended: %v %s\n", err, out)
	}()
	for { // until it ran a round
		st, _ := cl.Exec(ctx, adminBin, "status")
		if strings.Contains(st, "daemon: running") && strings.Contains(st, "last round: ") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the reconciler did not start: %s", st)
		case <-time.After(time.Second):
		}
	}
}

func stopDaemon(ctx context.Context) {
	cl.Exec(ctx, "sh", "-c", `kill "$(cat "$0")"`, daemonPidInHead)
}

func configure(t *testing.T, s elastic.Settings) {
	t.Helper()
	if err := cl.Configure(elastic.Timeout(t, time.Minute), s); err != nil {
		t.Fatal(err)
	}
}

// node reads a node through slurm-elastic's own scontrol backend, run in
// head through the cluster's wrapper.
func node(t *testing.T, name string) slurm.Node {
	t.Helper()
	sc, err := slurm.NewScontrol(slurm.ScontrolOptions{Path: cl.ScontrolWrapper(), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := sc.Nodes(elastic.Timeout(t, time.Minute), name)
	if err != nil || len(ns) != 1 {
		t.Fatalf("scontrol show node %s: %d records, %v", name, len(ns), err)
	}
	return ns[0]
}

func sbatch(t *testing.T, args ...string) string {
	t.Helper()
	out := cl.MustExec(t, append([]string{"sbatch", "--parsable"}, args...)...)
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	return id
}

func getJob(t *testing.T, id string) elastic.Job {
	t.Helper()
	out := cl.MustExec(t, "scontrol", "-o", "show", "job", id)
	j, err := elastic.ParseJob(out)
	if err != nil {
		t.Fatalf("scontrol -o show job %s: %v\n%s", id, err, out)
	}
	return j
}

func waitJob(t *testing.T, id string, d time.Duration, want string) elastic.Job {
	t.Helper()
	var j elastic.Job
	elastic.WaitFor(t, d, "job "+id+" "+want, func() (bool, string) {
		j = getJob(t, id)
		if slices.Contains(j.State, "FAILED") || slices.Contains(j.State, "CANCELLED") {
			t.Fatalf("job %s ended %v (reason %s)", id, j.State, j.Reason)
		}
		return slices.Contains(j.State, want), fmt.Sprintf("%+v", j)
	})
	return j
}

// pods lists the cluster's node pods as the Kubernetes admin sees them.
func pods(t *testing.T) []corev1.Pod {
	t.Helper()
	l, err := core.Pods(namespace).List(elastic.Timeout(t, time.Minute), metav1.ListOptions{LabelSelector: runtime.LabelCluster + "=" + cl.Name})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	return l.Items
}

// podOf returns node's pod, nil if it has none.
func podOf(t *testing.T, node string) *corev1.Pod {
	t.Helper()
	for _, p := range pods(t) {
		if p.Labels[runtime.LabelNode] == node {
			return &p
		}
	}
	return nil
}

// waitIdle waits until every k8s node is powered down, idle and without
// reason flags that keep it from jobs, and no node pod is left: the state
// every test starts and ends in.
func waitIdle(t *testing.T, d time.Duration) {
	t.Helper()
	names, _ := hostlist.Expand("k8s[1-2]")
	elastic.WaitFor(t, d, "k8s nodes powered down and idle, no pods", func() (bool, string) {
		for _, n := range names {
			sn := node(t, n)
			if sn.State != slurm.StateIdle || !sn.Has(slurm.FlagPoweredDown) || sn.Has(slurm.FlagPoweringDown) || sn.Has(slurm.FlagDrain) {
				return false, fmt.Sprintf("%s %s %v %q", n, sn.State, sn.Flags, sn.Reason)
			}
		}
		if ps := pods(t); len(ps) > 0 {
			return false, fmt.Sprintf("%d pods left, first %s %s", len(ps), ps[0].Name, ps[0].Status.Phase)
		}
		return true, ""
	})
}

// reset puts the cluster back in the normal config with the k8s nodes
// idle: it repairs what an earlier failed test left (nodes DOWN or
// drained are resumed), then waits (waitIdle).
func reset(t *testing.T) {
	t.Helper()
	configure(t, settings())
	cl.MustExec(t, "scancel", "--user=root")
	for _, n := range []string{"k8s1", "k8s2"} {
		if sn := node(t, n); sn.State == slurm.StateDown || sn.Has(slurm.FlagDrain) {
			t.Logf("reset: resuming %s left %s %v (%s)", n, sn.State, sn.Flags, sn.Reason)
			cl.MustExec(t, "scontrol", "update", "nodename="+n, "state=resume")
		}
	}
	waitIdle(t, 2*time.Minute)
}

// events returns the reconciler's events of kind for node since since.
func events(t *testing.T, node, kind string, since time.Time) []elastic.Event {
	t.Helper()
	all, err := elastic.ParseEvents(cl.MustExec(t, adminBin, "events", "--json", "--kind", kind, "--node", node))
	if err != nil {
		t.Fatal(err)
	}
	var evs []elastic.Event
	for _, e := range all {
		if !e.Time.Before(since) {
			evs = append(evs, e)
		}
	}
	return evs
}

// waitEvent waits until the reconciler kept a successful event of kind for
// node since since.
func waitEvent(t *testing.T, d time.Duration, node, kind string, since time.Time) elastic.Event {
	t.Helper()
	var ev []elastic.Event
	elastic.WaitFor(t, d, "the reconciler's "+kind+" event for "+node, func() (bool, string) {
		ev = events(t, node, kind, since)
		return len(ev) > 0 && ev[len(ev)-1].Error == "", fmt.Sprintf("events %+v, node %+v", ev, node)
	})
	return ev[len(ev)-1]
}

// TestKubernetesColdJob: a cold `sbatch -N2 --wrap 'srun hostname'` on the
// Kubernetes partition powers up two nodes as two pods (the resume hook),
// which register from their pod IPs; the job runs in both and completes;
// an `srun -N2` from the head then runs in both too (head <-> pods unNATed).
// After SuspendTime the suspend hook deletes the pods and the nodes are
// powered down again.
func TestKubernetesColdJob(t *testing.T) {
	reset(t)
	logStart := len(cl.HookLog(t))
	t0 := time.Now()
	id := sbatch(t, "-p", "k8s", "-N2", "-o", "/shared/job-%j.out", "--wrap", "srun hostname")
	j := waitJob(t, id, 4*time.Minute, "COMPLETED")
	done := time.Since(t0)
	out, err := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
	if err != nil {
		t.Fatal(err)
	}
	hosts := strings.Fields(string(out))
	slices.Sort(hosts)
	if strings.Join(hosts, ",") != "k8s1,k8s2" {
		t.Fatalf("job %s on %s printed %q, want k8s1 and k8s2", id, j.Nodes, out)
	}
	log := cl.HookLog(t)[logStart:]
	for _, n := range []string{"k8s1", "k8s2"} {
		if !elastic.LogHas(log, "node launched and addressed", n) {
			t.Errorf("hook log lacks the launch of %s:\n%s", n, log)
		}
	}
	t.Logf("figure: cold sbatch -N2 on Kubernetes, submit to COMPLETED %s", done.Round(time.Millisecond))
	// An interactive srun from the head on the same nodes: slurmstepd in
	// the pods connects back to srun at the address slurmd saw the launch
	// come from, the head's own only when nothing masquerades it (the
	// operations guide's "no NAT"); the batch job's srun ran in a pod.
	t1 := time.Now()
	sout, err := cl.Exec(elastic.Timeout(t, 3*time.Minute), "timeout", "120", "srun", "-N2", "-p", "k8s", "hostname")
	if lines := strings.Fields(sout); err != nil || len(lines) != 2 || !slices.Contains(lines, "k8s1") || !slices.Contains(lines, "k8s2") {
		t.Fatalf("srun -N2 -p k8s hostname from the head: %v: %q, want k8s1 and k8s2", err, sout)
	}
	t.Logf("figure: srun -N2 from the head on the nodes %s", time.Since(t1).Round(time.Millisecond))
	waitIdle(t, 2*time.Minute)
	t.Logf("figure: COMPLETED to both pods deleted and nodes powered down %s", (time.Since(t0) - done).Round(time.Second))
	log = cl.HookLog(t)[logStart:]
	for _, n := range []string{"k8s1", "k8s2"} {
		if !elastic.LogHas(log, "node instance removed", n) {
			t.Errorf("hook log lacks the suspend of %s", n)
		}
	}
}

// TestKubernetesPodDeletedFailover: the pod of a node running a job is
// deleted (as `kubectl delete pod`); the reconciler sets the node DOWN
// (Slurm requeues the job) and powers it down; the job runs again on a
// fresh pod and completes.
func TestKubernetesPodDeletedFailover(t *testing.T) {
	reset(t)
	id := sbatch(t, "-p", "k8s", "-N1", "--requeue", "-o", "/shared/job-%j.out", "--wrap", "sleep 20; hostname")
	var j elastic.Job
	var victim string
	elastic.WaitFor(t, 3*time.Minute, "job "+id+" running on an up node", func() (bool, string) {
		j = getJob(t, id)
		if victim = j.Nodes; victim == "" || !slices.Contains(j.State, "RUNNING") {
			return false, fmt.Sprintf("%+v", j)
		}
		n := node(t, victim)
		return n.State == slurm.StateAllocated && !n.Has(slurm.FlagPoweringUp), fmt.Sprintf("%+v %+v", n, j)
	})
	p := podOf(t, victim)
	if p == nil {
		t.Fatalf("job %s runs on %s, which has no pod: %+v", id, victim, pods(t))
	}
	deleted := time.Now()
	if err := core.Pods(namespace).Delete(elastic.Timeout(t, time.Minute), p.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, 2*time.Minute, victim, "dead", deleted)
	t.Logf("figure: %s failed over %s after its pod was deleted (saw: %s)", victim, ev.Time.Sub(deleted).Round(time.Millisecond), ev.Saw)
	j = waitJob(t, id, 4*time.Minute, "COMPLETED")
	if j.Restarts < 1 {
		t.Fatalf("job %s completed without a requeue: %+v", id, j)
	}
	out, _ := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
	host := strings.TrimSpace(string(out))
	if host != "k8s1" && host != "k8s2" {
		t.Fatalf("job %s printed %q, want a k8s node", id, out)
	}
	t.Logf("figure: job %s requeued %d time(s), completed on %s, %s after the delete", id, j.Restarts, host, time.Since(deleted).Round(time.Second))
	waitIdle(t, 3*time.Minute)
}

// TestKubernetesOrphanPod: a node pod left while Slurm has the node
// powered down (a resume killed half way) is removed by the reconciler once
// older than orphan_grace; the node stays as it was.
func TestKubernetesOrphanPod(t *testing.T) {
	reset(t)
	ctx := elastic.Timeout(t, 3*time.Minute)
	// The pod as the runtime makes it, as the admin (the head's account
	// may not be the one that left it).
	r, err := kubernetes.New(ctx, kubernetes.Options{Cluster: cl.Name, Namespace: namespace, Kubeconfig: kc.Kubeconfig,
		ConfServer: "127.0.0.1:1", MungeSecret: mungeSecret, ImagePullPolicy: "Never", Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	made := time.Now()
	res := r.Launch(ctx, []runtime.NodeSpec{{Name: "k8s2", Group: "k8s", Template: runtime.Template{Image: cl.Image, CPUs: 0.1, MemoryMB: 256}}})[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	ev := waitEvent(t, 2*time.Minute, "k8s2", "orphan", made)
	t.Logf("figure: orphan pod removed %s after it was made (orphan_grace 10s; saw: %s)", ev.Time.Sub(made).Round(time.Millisecond), ev.Saw)
	if p := podOf(t, "k8s2"); p != nil && string(p.UID) == res.Instance.ID {
		t.Fatalf("orphan pod %s still there after the event", p.Name)
	}
	if n := node(t, "k8s2"); !n.Has(slurm.FlagPoweredDown) || n.State != slurm.StateIdle || n.Reason != "" {
		t.Fatalf("k8s2 changed by the orphan removal: %+v", n)
	}
	waitIdle(t, time.Minute)
}

// TestKubernetesCapacity: a group whose pods ask for more CPU than any
// Kubernetes node has is refused as Capacity (Unschedulable): the resume
// hook returns the node with the Capacity reason and leaves no pod; the
// reconciler cools the group down (the node DOWN, its sibling drained,
// under the Cooldown reason) instead of failing it for good. With the
// template fixed, the job runs once the cooldown is over.
func TestKubernetesCapacity(t *testing.T) {
	reset(t)
	big := settings()
	big.Kubernetes.CPUs = 64
	configure(t, big)
	t.Cleanup(func() { cl.Configure(context.Background(), settings()) })
	logStart := len(cl.HookLog(t))
	since := time.Now()
	id := sbatch(t, "-p", "k8s", "-N1", "-w", "k8s1", "-o", "/shared/job-%j.out", "--wrap", "hostname")
	ev := waitEvent(t, 2*time.Minute, "k8s1", "capacity", since)
	t.Logf("figure: Capacity cooldown %s after submit (saw: %s)", ev.Time.Sub(since).Round(time.Millisecond), ev.Saw)
	if !strings.Contains(ev.Saw, "(Code:Capacity)") || !strings.Contains(ev.Saw, "no Kubernetes node has room") {
		t.Errorf("the cooldown saw %q, want the resume hook's Capacity reason (no Kubernetes node has room)", ev.Saw)
	}
	elastic.WaitFor(t, time.Minute, "k8s[1-2] under the Cooldown reason", func() (bool, string) {
		n1, n2 := node(t, "k8s1"), node(t, "k8s2")
		// k8s1 is DOWN under the reason; slurmctld may already be powering
		// it down (a DOWN CLOUD node is powered down; seen in CI): the
		// reason is what must hold, and no job may be on it.
		down1 := n1.State == slurm.StateDown || n1.Has(slurm.FlagPoweringDown) || n1.Has(slurm.FlagPoweredDown)
		ok := strings.HasPrefix(n1.Reason, "slurm-elastic: (Code:Cooldown) group k8s paused until ") && down1 &&
			strings.HasPrefix(n2.Reason, "slurm-elastic: (Code:Cooldown) group k8s paused until ") && n2.Has(slurm.FlagDrain)
		return ok, fmt.Sprintf("k8s1 %s %v %q; k8s2 %s %v %q", n1.State, n1.Flags, n1.Reason, n2.State, n2.Flags, n2.Reason)
	})
	if ps := pods(t); len(ps) != 0 {
		t.Fatalf("pods left after the refused launch: %d, first %s %s", len(ps), ps[0].Name, ps[0].Status.Phase)
	}
	if l := cl.HookLog(t)[logStart:]; !strings.Contains(l, `"class":"Capacity"`) {
		t.Errorf("hook log has no Capacity-class launch failure:\n%s", l)
	}
	if j := getJob(t, id); slices.Contains(j.State, "COMPLETED") {
		t.Fatalf("job %s completed on a group without room: %+v", id, j)
	}
	configure(t, settings())
	j := waitJob(t, id, 4*time.Minute, "COMPLETED")
	t.Logf("figure: job %s completed %s after submit, after the cooldown (requeued %d time(s))", id, time.Since(since).Round(time.Second), j.Restarts)
	waitEvent(t, time.Minute, "k8s1", "cooldown_end", since)
	waitIdle(t, 3*time.Minute)
}

// TestKubernetesBadKubeconfig: a kubeconfig the API server refuses (a
// revoked or foreign token) and one that is not there: the nodes a job
// asks for are set DOWN at once with a Config reason that names the
// kubeconfig; no pod is made; with the kubeconfig fixed the job runs.
func TestKubernetesBadKubeconfig(t *testing.T) {
	reset(t)
	t.Cleanup(func() { cl.Configure(context.Background(), settings()) })
	const bad = "/etc/slurm-elastic/kubeconfig-refused"
	var tok string
	for _, l := range strings.Split(string(kubeconfig), "\n") {
		if strings.Contains(l, "token:") {
			tok = l
		}
	}
	refused := strings.Replace(string(kubeconfig), tok, `users: [{name: slurm-elastic, user: {token: "not-a-token-of-this-cluster"}}]`, 1)
	if tok == "" || refused == string(kubeconfig) {
		t.Fatalf("no token line in the kubeconfig")
	}
	if err := cl.WriteFileInHead(elastic.Timeout(t, time.Minute), bad, []byte(refused), 0o640, "root:slurm"); err != nil {
		t.Fatal(err)
	}

	t.Run("refused", func(t *testing.T) {
		s := settings()
		s.Kubernetes.Kubeconfig = bad
		configure(t, s)
		id := sbatch(t, "-p", "k8s", "-N1", "-w", "k8s2", "-o", "/shared/job-%j.out", "--wrap", "hostname")
		var n slurm.Node
		elastic.WaitFor(t, time.Minute, "k8s2 DOWN with a Config reason", func() (bool, string) {
			n = node(t, "k8s2")
			return n.State == slurm.StateDown && strings.HasPrefix(n.Reason, "slurm-elastic: (Code:Config) "), fmt.Sprintf("%+v", n)
		})
		t.Logf("k8s2: %s", n.Reason)
		if !strings.Contains(n.Reason, "Unauthorized") || !strings.Contains(n.Reason, bad) {
			t.Errorf("k8s2 reason %q: want the refusal (Unauthorized) and the kubeconfig %s", n.Reason, bad)
		}
		// A Config failure not confined to a host: the idle sibling goes
		// DOWN too, saying why, instead of failing the next job again.
		if n1 := node(t, "k8s1"); n1.State != slurm.StateDown || !strings.Contains(n1.Reason, "group k8s cannot start nodes") || !strings.Contains(n1.Reason, bad) {
			t.Errorf("k8s1 %s %q: want DOWN, the group unable to start nodes, naming %s", n1.State, n1.Reason, bad)
		}
		if ps := pods(t); len(ps) != 0 {
			t.Fatalf("pods made with a refused kubeconfig: %d", len(ps))
		}
		// The admin fixes the kubeconfig and resumes the nodes once Slurm
		// requeued the job and powered them down.
		elastic.WaitFor(t, 2*time.Minute, "job "+id+" requeued, k8s[1-2] powered down", func() (bool, string) {
			j := getJob(t, id)
			n1, n2 := node(t, "k8s1"), node(t, "k8s2")
			settled := func(n slurm.Node) bool {
				return n.Has(slurm.FlagPoweredDown) && !n.Has(slurm.FlagPoweringUp) && !n.Has(slurm.FlagPoweringDown)
			}
			return slices.Contains(j.State, "PENDING") && j.Restarts >= 1 && settled(n1) && settled(n2),
				fmt.Sprintf("job %+v; k8s1 %s %v; k8s2 %s %v", j, n1.State, n1.Flags, n2.State, n2.Flags)
		})
		configure(t, settings())
		cl.MustExec(t, "scontrol", "update", "nodename=k8s[1-2]", "state=resume")
		waitJob(t, id, 4*time.Minute, "COMPLETED")
		waitIdle(t, 3*time.Minute)
	})
	t.Run("missing", func(t *testing.T) {
		const missing = "/etc/slurm-elastic/no-such-kubeconfig"
		s := settings()
		s.Kubernetes.Kubeconfig = missing
		configure(t, s)
		// The resume hook as slurmctld runs it, on a powered-down node.
		out, err := cl.ExecAs(elastic.Timeout(t, 2*time.Minute), "slurm", "/usr/libexec/slurm-elastic/slurm-elastic-resume", "k8s1")
		if err == nil {
			t.Fatalf("resume with a missing kubeconfig succeeded: %s", out)
		}
		n := node(t, "k8s1")
		t.Logf("k8s1: %s %v %s", n.State, n.Flags, n.Reason)
		if n.State != slurm.StateDown || !strings.HasPrefix(n.Reason, "slurm-elastic: (Code:Config) ") ||
			!strings.Contains(n.Reason, "kubernetes.kubeconfig") || !strings.Contains(n.Reason, missing) {
			t.Errorf("k8s1 %s %q: want DOWN with a Config reason naming kubernetes.kubeconfig %s", n.State, n.Reason, missing)
		}
		if ps := pods(t); len(ps) != 0 {
			t.Fatalf("pods made with a missing kubeconfig: %d", len(ps))
		}
		configure(t, settings())
		cl.MustExec(t, "scontrol", "update", "nodename=k8s1", "state=resume")
		waitIdle(t, 2*time.Minute)
	})
}
