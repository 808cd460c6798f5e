package kubernetes

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"

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

// itKube is a test's Kubernetes, with the cluster admin's clients.
type itKube struct {
	*kube.Cluster
	core corev1client.CoreV1Interface
	rbac rbacv1client.RbacV1Interface
}

// startKube starts the tests/kube cluster name with image imported into
// its containerd, stopped when the test ends. headSubnet, when not "", is
// the Podman network of a Slurm head: the pods' subnet is routed to it and
// what goes from it to the pods is not masqueraded (Podman masquerades what
// leaves its network; a pod would see srun's launch come from the host,
// where slurmstepd would connect back to srun: head and pods must see each
// other's own addresses, as the operations guide says).
func startKube(ctx context.Context, t *testing.T, name, image, headSubnet string) *itKube {
	t.Helper()
	o := kube.Options{Name: name, Log: t.Output()}
	if headSubnet != "" {
		o.PodRoutes = []string{headSubnet}
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
	if headSubnet != "" {
		noNAT := []string{"POSTROUTING", "-s", headSubnet, "-d", kc.Subnet, "-j", "RETURN"}
		if out, err := exec.CommandContext(ctx, "iptables", append([]string{"-t", "nat", "-I"}, noNAT...)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("iptables", append([]string{"-t", "nat", "-D"}, noNAT...)...).CombinedOutput(); err != nil {
				t.Errorf("iptables: %v: %s", err, out)
			}
		})
	}
	admin, err := RESTConfig(kc.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	k := &itKube{Cluster: kc}
	if k.core, err = corev1client.NewForConfig(admin); err != nil {
		t.Fatal(err)
	}
	if k.rbac, err = rbacv1client.NewForConfig(admin); err != nil {
		t.Fatal(err)
	}
	return k
}

// shippedRBAC applies the shipped RBAC manifest, creates its munge key
// Secret (itSecret) holding key, and returns a token of its account
// (itAccount) valid for an hour.
func (k *itKube) shippedRBAC(ctx context.Context, t *testing.T, key []byte) string {
	t.Helper()
	applyRBAC(ctx, t, k.core, k.rbac)
	if _, err := k.core.Secrets(itNamespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: itSecret},
		Data: map[string][]byte{DefaultMungeSecretKey: key}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := k.core.ServiceAccounts(itNamespace).CreateToken(ctx, itAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Status.Token
}
