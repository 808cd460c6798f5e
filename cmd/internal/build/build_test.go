package build

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/runtime/kubernetes"
)

func TestPlacement(t *testing.T) {
	p := placement(conf.GroupKubernetes{
		NodeSelector: map[string]string{"pool": "gpu"},
		Tolerations:  []conf.Toleration{{Key: "gpu", Operator: "Exists", Effect: "NoSchedule"}},
		NodeAffinity: []conf.NodeRequirement{{Key: "zone", Operator: "In", Values: []string{"a", "b"}}, {Key: "spot", Operator: "DoesNotExist"}},
		Volumes: []conf.KubernetesVolume{
			{Name: "home", Destination: "/home", PVC: "homes"},
			{Name: "apps", Destination: "/apps", ReadOnly: true, NFS: conf.NFSVolume{Server: "nfs1", Path: "/export"}},
		},
	})
	if p.NodeSelector["pool"] != "gpu" || len(p.Tolerations) != 1 || p.Tolerations[0].Operator != corev1.TolerationOpExists ||
		p.Tolerations[0].Effect != corev1.TaintEffectNoSchedule {
		t.Fatalf("%+v", p)
	}
	terms := p.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 2 || terms[0].MatchExpressions[0].Operator != corev1.NodeSelectorOpIn ||
		strings.Join(terms[0].MatchExpressions[0].Values, ",") != "a,b" {
		t.Fatalf("affinity %+v: want one term with both requirements (all required)", terms)
	}
	want := []kubernetes.Volume{{Name: "home", Destination: "/home", PVC: "homes"},
		{Name: "apps", Destination: "/apps", ReadOnly: true, NFSServer: "nfs1", NFSPath: "/export"}}
	for i := range want {
		if p.Volumes[i] != want[i] {
			t.Fatalf("volume %d: %+v, want %+v", i, p.Volumes[i], want[i])
		}
	}
	if placement(conf.GroupKubernetes{}).Affinity != nil {
		t.Fatal("affinity without requirements")
	}
}

// A config with a Kubernetes group builds its runtime from the kubeconfig;
// a broken kubeconfig is an error naming the file.
func TestRuntimesKubernetes(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: "t"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := conf.Default()
	cfg.Cluster = "t"
	cfg.Slurm.ConfServer = "head"
	cfg.Kubernetes.Kubeconfig = kc
	cfg.Groups = []conf.Group{{Name: "k8s", Nodes: "k8s[1-2]", Runtime: conf.RuntimeKubernetes, Template: conf.Template{Image: "i"}}}
	log := slog.New(slog.DiscardHandler)
	rts, err := Runtimes(context.Background(), &cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rts[conf.RuntimeKubernetes].(*kubernetes.Kubernetes); !ok || len(rts) != 1 {
		t.Fatalf("%v", rts)
	}
	if err := os.WriteFile(kc, []byte("clusters: [oops"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Runtimes(context.Background(), &cfg, log); err == nil || !strings.Contains(err.Error(), kc) {
		t.Fatalf("broken kubeconfig: %v", err)
	}
}
