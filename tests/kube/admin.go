package kube

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// The cluster admin's steps of the operations guide ("Kubernetes: nodes as pods",
// Access), done with client-go as the admin (system:masters) instead of kubectl, which
// this cluster does not build.

// Admin returns the typed core/v1 and rbac/v1 clients of the cluster admin. It reads
// the admin kubeconfig and connects to nothing.
func (c *Cluster) Admin() (corev1client.CoreV1Interface, rbacv1client.RbacV1Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("kube: admin kubeconfig %s: %w", c.Kubeconfig, err)
	}
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kube: admin client: %w", err)
	}
	rbac, err := rbacv1client.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kube: admin client: %w", err)
	}
	return core, rbac, nil
}

// Apply creates the objects of the YAML manifest file path (documents separated by
// "---"; kinds Namespace, ServiceAccount, Role, RoleBinding, Secret), as `kubectl apply
// -f path` does on a cluster that has none of them, and waits until each namespace it
// creates has its default ServiceAccount (pods need it). It returns how many objects it
// created. Blocks for an API call per object; not idempotent (an object that exists is
// an error).
func (c *Cluster) Apply(ctx context.Context, path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("kube: apply: %w", err)
	}
	core, rbac, err := c.Admin()
	if err != nil {
		return 0, err
	}
	n := 0
	var namespaces []string
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			return n, fmt.Errorf("kube: apply %s: object %d: %w", path, n+1, err)
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			_, err = core.Namespaces().Create(ctx, o, metav1.CreateOptions{})
			namespaces = append(namespaces, o.Name)
		case *corev1.ServiceAccount:
			_, err = core.ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = core.Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = rbac.Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = rbac.RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("kind %T is not one Apply creates", obj)
		}
		if err != nil {
			return n, fmt.Errorf("kube: apply %s: object %d: %w", path, n+1, err)
		}
		n++
	}
	for _, ns := range namespaces {
		for {
			_, err := core.ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			if err == nil {
				break
			}
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return n, fmt.Errorf("kube: apply %s: namespace %s has no default ServiceAccount: %w", path, ns, err)
			}
		}
	}
	return n, nil
}

// CreateSecret creates the Secret ns/name holding data, as `kubectl -n ns create secret
// generic name --from-file=KEY=FILE...` does. Blocks for one API call.
func (c *Cluster) CreateSecret(ctx context.Context, ns, name string, data map[string][]byte) error {
	core, _, err := c.Admin()
	if err != nil {
		return err
	}
	if _, err := core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data},
		metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("kube: create secret %s/%s: %w", ns, name, err)
	}
	return nil
}

// AccountKubeconfig returns a kubeconfig for the ServiceAccount ns/account: the API
// server (APIURL), the cluster CA inline (the file stands alone: it can be copied to
// another machine or container) and a token of the account valid for d, as
// `kubectl -n ns create token account --duration=d` makes it. It is what an admin gives
// a client outside the cluster. Blocks for one API call.
func (c *Cluster) AccountKubeconfig(ctx context.Context, ns, account string, d time.Duration) ([]byte, error) {
	core, _, err := c.Admin()
	if err != nil {
		return nil, err
	}
	secs := int64(d / time.Second)
	tok, err := core.ServiceAccounts(ns).CreateToken(ctx, account,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("kube: token of %s/%s: %w", ns, account, err)
	}
	if tok.Status.Token == "" {
		return nil, errors.New("kube: token request answered without a token")
	}
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: %[1]s, cluster: {server: %[2]q, certificate-authority-data: %[3]s}}]
users: [{name: %[4]s, user: {token: %[5]q}}]
contexts: [{name: %[1]s, context: {cluster: %[1]s, user: %[4]s, namespace: %[6]s}}]
current-context: %[1]s
`, c.Name, c.APIURL, base64.StdEncoding.EncodeToString(ca), account, tok.Status.Token, ns), nil
}
