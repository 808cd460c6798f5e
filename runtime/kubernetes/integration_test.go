package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// The integration test runs against a real single-node Kubernetes
// (tests/kube) with the Slurm node image imported into its containerd. It
// acts as the ServiceAccount of the shipped packaging/kubernetes/rbac.yaml,
// so the manifest is what is tested: a missing permission fails it.
// Cluster name: $SE_KUBE_RT_NAME, default se-kube-rt.

// rbacManifest is the shipped RBAC (namespace slurm-elastic, account
// slurm-elastic, Secret slurm-elastic-munge).
const rbacManifest = "../../packaging/kubernetes/rbac.yaml"

const itNamespace, itAccount, itSecret = "slurm-elastic", "slurm-elastic", "slurm-elastic-munge"

func TestIntegrationKubernetes(t *testing.T) {
	name, ctx := itStart(t, "a real Kubernetes (tests/kube)")
	ref, err := harness.BuildImage(ctx, "", t.Output())
	if err != nil {
		t.Fatal(err)
	}
	kc := startKube(ctx, t, name, ref, "")
	core := kc.core
	// As the cluster admin: the shipped RBAC, the munge key Secret, a
	// kubeconfig of the account only.
	kcfg := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcfg, kc.shippedRBAC(ctx, t, bytes.Repeat([]byte("k"), 1024)), 0o600); err != nil {
		t.Fatal(err)
	}

	r, err := New(ctx, Options{
		Cluster: "it", Namespace: itNamespace, Kubeconfig: kcfg,
		// Nothing listens there: slurmd retries its config fetch, and
		// the pod runs.
		ConfServer: "127.0.0.1:6817", MungeSecret: itSecret,
		ImagePullPolicy: "Never", ImagePullGrace: 5 * time.Second, StopTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatalf("check as the account of the shipped RBAC: %v", err)
	}
	node := func(n string) runtime.NodeSpec {
		return runtime.NodeSpec{Name: n, Group: "k8s", Template: runtime.Template{Image: ref, CPUs: 0.1, MemoryMB: 256,
			Env: map[string]string{"FOO": "bar"}}}
	}
	sub := netip.MustParsePrefix(kc.Subnet)

	t.Run("launch two, list, idempotent", func(t *testing.T) {
		t0 := time.Now()
		res := r.Launch(ctx, []runtime.NodeSpec{node("k8s1"), node("k8s2")})
		t.Logf("figure: launch of 2 pods to Running with IPs %s", time.Since(t0).Round(time.Millisecond))
		ids := map[string]string{}
		for _, rs := range res {
			if rs.Err != nil {
				t.Fatalf("launch %s: %v", rs.Name, rs.Err)
			}
			a, err := netip.ParseAddr(rs.Instance.Addr)
			if err != nil || !sub.Contains(a) || rs.Instance.Host != kc.NodeName || rs.Instance.State != runtime.StateRunning {
				t.Fatalf("instance %+v: address not a pod IP in %s or not on node %s", rs.Instance, kc.Subnet, kc.NodeName)
			}
			ids[rs.Name] = rs.Instance.ID
		}
		list, err := r.List(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("list: %+v %v", list, err)
		}
		for _, in := range list {
			if in.ID != ids[in.Name] || in.Addr == "" || in.State != runtime.StateRunning || in.Group != "k8s" {
				t.Fatalf("listed %+v", in)
			}
		}
		for _, rs := range r.Launch(ctx, []runtime.NodeSpec{node("k8s1")}) {
			if rs.Err != nil || rs.Instance.ID != ids["k8s1"] {
				t.Fatalf("second launch: %+v", rs)
			}
		}
		// The pod is what the node contract says.
		p, err := core.Pods(itNamespace).Get(ctx, PodName("it", "k8s1"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.Hostname != "k8s1" || p.Spec.RestartPolicy != corev1.RestartPolicyNever || p.Labels[runtime.LabelCluster] != "it" {
			t.Fatalf("pod %s: hostname %q restart %q labels %v", p.Name, p.Spec.Hostname, p.Spec.RestartPolicy, p.Labels)
		}
		if _, err := r.Logs(ctx, "k8s1", 4096); err != nil {
			t.Fatalf("logs: %v", err)
		}
	})

	t.Run("more CPU than the node has is Capacity", func(t *testing.T) {
		n := node("big1")
		n.Template.CPUs = 512
		rs := r.Launch(ctx, []runtime.NodeSpec{n})[0]
		if rs.Class() != runtime.ClassCapacity || !strings.Contains(rs.Err.Error(), "Insufficient cpu") {
			t.Fatalf("%s: %v", rs.Class(), rs.Err)
		}
		gone(ctx, t, r, "big1")
	})

	t.Run("missing image is Config", func(t *testing.T) {
		n := node("noimg1")
		n.Template.Image = "localhost/slurm-elastic-no-such-image:1"
		rs := r.Launch(ctx, []runtime.NodeSpec{n})[0]
		if rs.Class() != runtime.ClassConfig || !strings.Contains(rs.Err.Error(), reasonErrImageNeverPull) {
			t.Fatalf("%s: %v", rs.Class(), rs.Err)
		}
		gone(ctx, t, r, "noimg1")
	})

	t.Run("container that exits at once is Config, with its log", func(t *testing.T) {
		n := node("exit1")
		n.Template.Command = []string{"/bin/sh", "-c", "echo slurmd-died-here >&2; exit 3"}
		rs := r.Launch(ctx, []runtime.NodeSpec{n})[0]
		if rs.Err == nil {
			// The kubelet may report the pod Running (with its IP) before
			// the container's exit: then the launch succeeds and the node
			// must be listed exited (a dead node for the reconciler, which
			// keeps its log) and never restarted.
			for in := listed(ctx, t, r, "exit1"); in.State != runtime.StateExited; in = listed(ctx, t, r, "exit1") {
				if in.State != runtime.StateRunning {
					t.Fatalf("listed %+v", in)
				}
				select {
				case <-ctx.Done():
					t.Fatal(ctx.Err())
				case <-time.After(200 * time.Millisecond):
				}
			}
			if res := r.Terminate(ctx, []string{"exit1"}); res[0].Err != nil {
				t.Fatal(res[0].Err)
			}
			return
		}
		if rs.Class() != runtime.ClassConfig || !strings.Contains(rs.Err.Error(), "exit code 3") {
			t.Fatalf("%s: %v", rs.Class(), rs.Err)
		}
		if rs.Log == nil || !strings.Contains(string(rs.Log.Tail), "slurmd-died-here") || rs.Log.Image != ref {
			t.Fatalf("log kept: %+v", rs.Log)
		}
		gone(ctx, t, r, "exit1")
	})

	t.Run("a node whose slurmd dies is exited, not restarted", func(t *testing.T) {
		n := node("dies1")
		n.Template.Command = []string{"/bin/sh", "-c", "sleep 3; exit 1"}
		rs := r.Launch(ctx, []runtime.NodeSpec{n})[0]
		if rs.Err != nil {
			t.Fatal(rs.Err)
		}
		// Wait (bounded by ctx) until the list shows it ended.
		for {
			in := listed(ctx, t, r, "dies1")
			if in.State == runtime.StateExited {
				break
			}
			if in.State != runtime.StateRunning {
				t.Fatalf("listed %+v", in)
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
		}
		p, err := core.Pods(itNamespace).Get(ctx, PodName("it", "dies1"), metav1.GetOptions{})
		// The phase may still say Running for a moment: the container's
		// own state is what ended (and it is never restarted).
		if err != nil || p.Spec.RestartPolicy != corev1.RestartPolicyNever || len(p.Status.ContainerStatuses) != 1 ||
			p.Status.ContainerStatuses[0].State.Terminated == nil || p.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Fatalf("pod (%v): phase %s, %+v", err, p.Status.Phase, p.Status.ContainerStatuses)
		}
		// Launch replaces the dead pod.
		n.Template.Command = nil
		if rs := r.Launch(ctx, []runtime.NodeSpec{n})[0]; rs.Err != nil || rs.Instance.ID == string(p.UID) {
			t.Fatalf("relaunch: %+v", rs)
		}
	})

	t.Run("terminate", func(t *testing.T) {
		t0 := time.Now()
		for _, rs := range r.Terminate(ctx, []string{"k8s1", "k8s2", "dies1", "k8s1", "never-launched"}) {
			if rs.Err != nil {
				t.Fatalf("terminate %s: %v", rs.Name, rs.Err)
			}
		}
		t.Logf("figure: terminate of 3 pods (1 s grace) to gone %s", time.Since(t0).Round(time.Millisecond))
		l, err := core.Pods(itNamespace).List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 0 {
			t.Fatalf("pods left: %d %v", len(l.Items), err)
		}
	})

	t.Run("a ResourceQuota refusal is Capacity", func(t *testing.T) {
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "no-pods", Namespace: itNamespace},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}}}
		if _, err := core.ResourceQuotas(itNamespace).Create(ctx, q, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer core.ResourceQuotas(itNamespace).Delete(context.WithoutCancel(ctx), q.Name, metav1.DeleteOptions{})
		// Admission counts against the quota once the controller manager
		// has computed its status.
		for {
			got, err := core.ResourceQuotas(itNamespace).Get(ctx, q.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got.Status.Hard[corev1.ResourcePods]; ok {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
		rs := r.Launch(ctx, []runtime.NodeSpec{node("quota1")})[0]
		if rs.Class() != runtime.ClassCapacity || !strings.Contains(rs.Err.Error(), quotaPrefix) {
			t.Fatalf("%s: %v", rs.Class(), rs.Err)
		}
		gone(ctx, t, r, "quota1")
	})

	t.Run("wrong kubeconfig names the file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "kubeconfig")
		if err := os.WriteFile(bad, []byte("clusters: [oops"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{bad, filepath.Join(t.TempDir(), "missing")} {
			_, err := New(ctx, Options{Cluster: "it", Namespace: itNamespace, Kubeconfig: f, ConfServer: "h", MungeSecret: itSecret})
			if err == nil || !strings.Contains(err.Error(), f) {
				t.Fatalf("%s: %v", f, err)
			}
		}
		// A kubeconfig whose token the API server refuses: Config.
		wrong := filepath.Join(t.TempDir(), "kubeconfig")
		if err := os.WriteFile(wrong, []byte(regexp.MustCompile(`token: "[^"]+"`).ReplaceAllString(mustRead(t, kcfg), `token: "not-a-token"`)), 0o600); err != nil {
			t.Fatal(err)
		}
		w, err := New(ctx, Options{Cluster: "it", Namespace: itNamespace, Kubeconfig: wrong, ConfServer: "h", MungeSecret: itSecret})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.List(ctx); runtime.ClassOf(err) != runtime.ClassConfig || !strings.Contains(fmt.Sprint(err), "kubeconfig "+wrong) {
			t.Fatalf("list with a refused token: %s: %v (want Config, naming the kubeconfig)", runtime.ClassOf(err), err)
		}
	})
}

// listed returns node's instance as List shows it; fails t when absent.
func listed(ctx context.Context, t *testing.T, r *Kubernetes, node string) runtime.Instance {
	t.Helper()
	list, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if in.Name == node {
			return in
		}
	}
	t.Fatalf("node %s not listed: %+v", node, list)
	return runtime.Instance{}
}

// gone fails t when node still has a pod.
func gone(ctx context.Context, t *testing.T, r *Kubernetes, node string) {
	t.Helper()
	p, err := r.find(ctx, node)
	if err != nil || p != nil {
		t.Fatalf("node %s: pod left after a failed launch: %v %v", node, p != nil, err)
	}
}

func mustRead(t *testing.T, f string) string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIntegrationSlurmInPods runs Slurm cloud nodes as pods of a real
// Kubernetes for a real slurmctld (tests/harness, in Podman): the nodes are
// powered up (ResumeProgram /bin/true), the test does what the resume hook
// does — two pods launched by the runtime, their pod IPs set as NodeAddr —
// the pods fetch their config from the head (configless, the munge key
// from the Secret), register, and `srun -N2` runs on both. The hooks
// themselves are not in the loop: they run in the head container, which
// does not reach this test cluster's API server (127.0.0.1 of the host).
// Names: $SE_KUBE_RT_NAME-hc (Slurm), $SE_KUBE_RT_NAME-s (Kubernetes).
func TestIntegrationSlurmInPods(t *testing.T) {
	name, ctx := itStart(t, "a Slurm cluster in Podman and a Kubernetes cluster (tests/harness, tests/kube)")
	logw := t.Output()
	nodes := []string{"k8s1", "k8s2"}

	hc, err := harness.Start(ctx, harness.Options{Name: name + "-hc", NodeNames: nodes, Log: logw,
		// Cloud nodes, as slurm-elastic's are (their NodeAddr reaches srun
		// only then); the test itself plays the resume hook.
		SlurmConf: strings.Join([]string{"ResumeProgram=/bin/true", "SuspendProgram=/bin/true", "ResumeTimeout=300",
			"SuspendTime=3600", "NodeName=k8s[1-2] CPUs=1 RealMemory=100 State=CLOUD",
			"PartitionName=k8s Nodes=k8s[1-2] MaxTime=INFINITE State=UP"}, "\n")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(hc.Diagnostics(context.WithoutCancel(ctx)))
		}
		hc.Stop(context.WithoutCancel(ctx))
	}()
	kc := startKube(ctx, t, name+"-s", hc.Image, hc.Subnet)
	core := kc.core
	const ns = "slurm-nodes"
	if _, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(hc.MungeKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "munge"},
		Data: map[string][]byte{"munge.key": key}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDefaultAccount(ctx, t, core, ns)

	r, err := New(ctx, Options{Cluster: hc.Name, Namespace: ns, Kubeconfig: kc.Kubeconfig, ConfServer: hc.HeadIP,
		MungeSecret: "munge", ImagePullPolicy: "Never", StopTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var specs []runtime.NodeSpec
	for _, n := range nodes {
		specs = append(specs, runtime.NodeSpec{Name: n, Group: "k8s", Template: runtime.Template{Image: hc.Image, CPUs: 0.2, MemoryMB: 512}})
	}
	if out, err := hc.Exec(ctx, "scontrol", "update", "nodename=k8s[1-2]", "state=power_up"); err != nil {
		t.Fatalf("power up: %v: %s", err, out)
	}
	t0 := time.Now()
	for _, rs := range r.Launch(ctx, specs) {
		if rs.Err != nil {
			t.Fatalf("launch %s: %v", rs.Name, rs.Err)
		}
		// What the resume hook does with the instance's address.
		if out, err := hc.Exec(ctx, "scontrol", "update", "nodename="+rs.Name, "nodeaddr="+rs.Instance.Addr, "nodehostname="+rs.Name); err != nil {
			t.Fatalf("scontrol update %s: %v: %s", rs.Name, err, out)
		}
	}
	for { // until both registered (slurmd retries its config fetch every 10 s)
		out, err := hc.Exec(ctx, "sinfo", "-h", "-N", "-p", "k8s", "-o", "%N %T")
		if err == nil && strings.Count(out+"\n", " idle\n") == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nodes did not register: %s (%v)", out, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	t.Logf("figure: launch of 2 pods to both nodes idle in Slurm %s", time.Since(t0).Round(time.Millisecond))
	out, err := hc.Exec(ctx, "timeout", "120", "srun", "-N2", "-p", "k8s", "hostname")
	if err != nil {
		t.Fatalf("srun: %v: %s", err, out)
	}
	lines := strings.Fields(out)
	slices.Sort(lines)
	if strings.Join(lines, ",") != "k8s1,k8s2" {
		t.Fatalf("srun -N2 hostname: %q, want k8s1 and k8s2", out)
	}
	for _, rs := range r.Terminate(ctx, nodes) {
		if rs.Err != nil {
			t.Fatalf("terminate %s: %v", rs.Name, rs.Err)
		}
	}
}

// waitDefaultAccount waits (bounded by ctx) until namespace ns has its
// default service account, which pods need and the controller manager adds.
func waitDefaultAccount(ctx context.Context, t *testing.T, core corev1client.CoreV1Interface, ns string) {
	t.Helper()
	for {
		if _, err := core.ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("namespace %s: no default service account: %v", ns, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
