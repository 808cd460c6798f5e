package kubernetes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// hooksConfig is the slurm-elastic config of TestIntegrationColdStartHooks:
// tests/elastic's groups cloud and broken (its slurm.conf partitions name
// them; never powered up here) and the group k8s on Kubernetes, in the
// namespace, account and Secret of the shipped RBAC's defaults.
const hooksConfig = `cluster: %[1]s
slurm:
  backend: scontrol
  scontrol: /usr/bin/scontrol
  user: slurm
  timeout: 5s
  conf_server: "%[2]s"
podman:
  munge_key: /etc/munge/munge.key
  hosts: [{name: local, uri: "unix:///run/podman/podman.sock"}]
kubernetes:
  kubeconfig: "%[3]s"
  image_pull_policy: Never
  image_pull_grace: 10s
log:
  file: /var/log/slurm-elastic/slurm-elastic.log
  level: debug
state_dir: /var/lib/slurm-elastic
power_save:
  bin_dir: /usr/libexec/slurm-elastic
  resume_timeout: 60s
  suspend_timeout: 20s
  suspend_time: 10s
groups:
  - {name: cloud, nodes: "cloud[1-4]", cpus: 1, real_memory_mb: 500, template: {image: "%[4]s", network: slurm}}
  - {name: broken, nodes: "broken[1-2]", cpus: 1, real_memory_mb: 500, template: {image: "%[4]s", network: slurm}}
  - name: k8s
    nodes: "k8s[1-2]"
    runtime: kubernetes
    cpus: 1
    real_memory_mb: 100
    template: {image: "%[4]s", cpus: 0.2, memory_mb: 512}
`

// TestIntegrationColdStartHooks is the whole path on a real Slurm and a
// real Kubernetes: slurmctld (tests/elastic, in Podman) runs slurm-elastic's
// hooks as SlurmUser; they reach the API server (on the Kubernetes node's
// address: kube.Options.APIOnGateway) with a kubeconfig for the account
// of the shipped RBAC. A cold
// `srun -N2` on the Kubernetes partition makes the resume hook launch two
// pods, the nodes register from their pod IPs and the job runs in both;
// once idle for suspend_time, the suspend hook deletes the pods. Needs the
// binaries (`make build`, or SE_BIN_DIR). Names: $SE_KUBE_RT_NAME-e (Slurm),
// $SE_KUBE_RT_NAME-k (Kubernetes).
func TestIntegrationColdStartHooks(t *testing.T) {
	name, ctx := itStart(t, "a Slurm cluster in Podman and a Kubernetes cluster (tests/elastic, tests/kube)")
	binDir := os.Getenv("SE_BIN_DIR")
	if binDir == "" {
		binDir, _ = filepath.Abs("../../bin")
	}
	logw := t.Output()

	// Rendered on this host for the slurm.conf lines: no kubeconfig yet
	// (conf check stats it), placeholders for the cluster's addresses.
	cl, err := elastic.Start(ctx, elastic.Settings{Name: name + "-e",
		Raw: fmt.Sprintf(hooksConfig, name+"-e", "10.222.0.2", "", "localhost/placeholder:0")}, binDir, logw)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(cl.Diagnostics(context.WithoutCancel(ctx)))
			if out, err := cl.Exec(context.WithoutCancel(ctx), "tail", "-n", "60", "/var/log/slurm-elastic/slurm-elastic.log"); err == nil {
				t.Logf("hook log:\n%s", out)
			}
		}
		cl.Stop(context.WithoutCancel(ctx))
	}()
	kc := startKube(ctx, t, name+"-k", cl.Image, cl.Subnet)
	// As the cluster admin: the shipped RBAC, the head's munge key as the
	// Secret, a kubeconfig of the account (its token; the API server on
	// the node address, where the head reaches it: APIOnGateway).
	key, err := os.ReadFile(cl.MungeKey)
	if err != nil {
		t.Fatal(err)
	}
	kcfg := kc.shippedRBAC(ctx, t, key)
	const kubeconfigInHead = "/etc/slurm-elastic/kubeconfig"
	if err := cl.WriteFileInHead(ctx, kubeconfigInHead, kcfg, 0o640, "root:slurm"); err != nil {
		t.Fatal(err)
	}
	s := cl.Settings
	s.Raw = fmt.Sprintf(hooksConfig, cl.Name, cl.HeadIP, kubeconfigInHead, cl.Image)
	if err := cl.Configure(ctx, s); err != nil {
		t.Fatal(err)
	}
	// The documented check, from head, as the hooks run.
	out, err := cl.ExecAs(ctx, "slurm", "slurm-elastic", "--config", harness.ConfigInHead, "conf", "check", "--connect")
	if err != nil || !strings.Contains(out, "connect: ok") {
		t.Fatalf("conf check --connect in head: %v: %s", err, out)
	}

	// Cold: the nodes are powered down; the job powers them up.
	t0 := time.Now()
	out, err = cl.Exec(ctx, "timeout", "240", "srun", "-N2", "-p", "k8s", "hostname")
	if err != nil {
		t.Fatalf("srun: %v: %s", err, out)
	}
	t.Logf("figure: cold srun -N2 on Kubernetes to done %s", time.Since(t0).Round(time.Millisecond))
	lines := strings.Fields(out)
	slices.Sort(lines)
	if strings.Join(lines, ",") != "k8s1,k8s2" {
		t.Fatalf("srun -N2 hostname: %q, want k8s1 and k8s2", out)
	}
	r, err := New(ctx, Options{Cluster: cl.Name, Namespace: itNamespace, Kubeconfig: kc.Kubeconfig, ConfServer: "x", MungeSecret: itSecret})
	if err != nil {
		t.Fatal(err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("pods after the job: %+v %v", list, err)
	}
	for _, in := range list {
		nodeAddr, err := cl.Exec(ctx, "sinfo", "-h", "-N", "-n", in.Name, "-o", "%o")
		if err != nil || strings.TrimSpace(nodeAddr) != in.Addr {
			t.Fatalf("node %s: NodeAddr %q (%v), want its pod IP %s", in.Name, nodeAddr, err, in.Addr)
		}
	}
	// Idle for suspend_time: the suspend hook deletes the pods.
	for {
		list, err := r.List(ctx)
		if err == nil && len(list) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pods not deleted after suspend_time: %+v (%v)", list, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	t.Logf("figure: job done to both pods deleted by the suspend hook %s", time.Since(t0).Round(time.Second))
}
