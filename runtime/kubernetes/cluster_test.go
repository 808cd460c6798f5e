package kubernetes

import (
	"context"
	"os"
	"testing"
	"time"

	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/slurm-elastic/slurm-elastic/tests/kube"
)

// The set-up the integration tests share: a real single-node Kubernetes
// (tests/kube) with the Slurm node image imported, the cluster admin's
// clients, and the shipped RBAC.

// itStart makes the checks every integration test makes (not with -short,
// as root; what names what it starts) and returns the base of its
// clusters' names ($SE_KUBE_RT_NAME, default se-kube-rt) and a context
// bounding the test (30 minutes), cancelled when it ends.
func itStart(t *testing.T, what string) (string, context.Context) {
	t.Helper()
	if testing.Short() {
		t.Skipf("starts %s: not run with -short", what)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("needs root (starts %s)", what)
	}
	name := os.Getenv("SE_KUBE_RT_NAME")
	if name == "" {
		name = "se-kube-rt"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	t.Cleanup(cancel)
	return name, ctx
}

// itKube is a test's Kubernetes, with the cluster admin's core client.
type itKube struct {
	*kube.Cluster
	core corev1client.CoreV1Interface
}

// startKube starts the tests/kube cluster name with image imported into
// its containerd, stopped when the test ends. headSubnet, when not "", is
// the Podman network of a Slurm head: the pods' subnet is routed to it,
// head and pods see each other's own addresses (kube.Options.PodRoutes:
// a pod that saw srun's launch come masqueraded from the host would have
// slurmstepd connect back to srun there), and the API server listens on
// the node's address, where the head reaches it (APIOnGateway).
func startKube(ctx context.Context, t *testing.T, name, image, headSubnet string) *itKube {
	t.Helper()
	o := kube.Options{Name: name, Log: t.Output()}
	if headSubnet != "" {
		o.PodRoutes, o.APIOnGateway = []string{headSubnet}, true
	}
	kc, err := kube.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kc.Stop(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("stop %s: %v", kc.Name, err)
		}
	})
	if err := kc.ImportImage(ctx, image); err != nil {
		t.Fatal(err)
	}
	core, _, err := kc.Admin()
	if err != nil {
		t.Fatal(err)
	}
	return &itKube{Cluster: kc, core: core}
}

// shippedRBAC applies the shipped RBAC manifest (rbacManifest), creates
// its munge key Secret (itSecret) holding key, and returns a kubeconfig
// of its account (itAccount) valid for an hour: what an admin hands the
// head.
func (k *itKube) shippedRBAC(ctx context.Context, t *testing.T, key []byte) []byte {
	t.Helper()
	if n, err := k.Apply(ctx, rbacManifest); err != nil || n != 4 {
		t.Fatalf("%s: %d objects (want namespace, account, role, binding): %v", rbacManifest, n, err)
	}
	if err := k.CreateSecret(ctx, itNamespace, itSecret, map[string][]byte{DefaultMungeSecretKey: key}); err != nil {
		t.Fatal(err)
	}
	b, err := k.AccountKubeconfig(ctx, itNamespace, itAccount, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
