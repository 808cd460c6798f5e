package conf_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
)

// kubeGroup is a valid group on Kubernetes.
func kubeGroup() conf.Group {
	return conf.Group{Name: "k8s", Nodes: "k8s[1-2]", Runtime: conf.RuntimeKubernetes, Partition: "k8s",
		Template: conf.Template{Image: "registry.example.org/node:1", CPUs: 2, MemoryMB: 1024, GPUCount: 4,
			Mounts: []conf.Mount{{Source: "/srv/data", Destination: "/data"}}},
		Kubernetes: conf.GroupKubernetes{
			NodeSelector: map[string]string{"node.kubernetes.io/instance-type": "c5.xlarge"},
			Tolerations:  []conf.Toleration{{Key: "slurm", Operator: "Equal", Value: "true", Effect: "NoSchedule"}, {Operator: "Exists"}},
			NodeAffinity: []conf.NodeRequirement{{Key: "topology.kubernetes.io/zone", Operator: "In", Values: []string{"a"}}},
			Volumes: []conf.KubernetesVolume{
				{Name: "home", Destination: "/home", PVC: "homes"},
				{Name: "apps", Destination: "/apps", ReadOnly: true, NFS: conf.NFSVolume{Server: "nfs1", Path: "/export/apps"}},
				{Name: "scratch", Destination: "/scratch", HostPath: "/srv/scratch"},
			},
		}}
}

func TestValidateKubernetesOK(t *testing.T) {
	c := validConfig()
	c.Groups = append(c.Groups, kubeGroup())
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Kubernetes only: no Podman host needed.
	c = validConfig()
	c.Podman.Hosts = nil
	c.Groups = []conf.Group{kubeGroup()}
	c.Kubernetes.Kubeconfig = secretFile(t, 0o600)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateKubernetesProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(c *conf.Config, g *conf.Group)
		key  string // the key the problem names
	}{
		{"network", func(_ *conf.Config, g *conf.Group) { g.Template.Network = "slurm" }, "groups[2].template.network"},
		{"dns none", func(_ *conf.Config, g *conf.Group) { g.Template.DNS = []string{"none"} }, "groups[2].template.dns"},
		{"upper-case nodes", func(_ *conf.Config, g *conf.Group) { g.Nodes = "K8s[1-2]" }, "groups[2].nodes"},
		{"label key", func(_ *conf.Config, g *conf.Group) { g.Kubernetes.NodeSelector = map[string]string{"bad key": "x"} }, `groups[2].kubernetes.node_selector["bad key"]`},
		{"toleration operator", func(_ *conf.Config, g *conf.Group) { g.Kubernetes.Tolerations[0].Operator = "Maybe" }, "groups[2].kubernetes.tolerations[0].operator"},
		{"toleration effect", func(_ *conf.Config, g *conf.Group) { g.Kubernetes.Tolerations[0].Effect = "Never" }, "groups[2].kubernetes.tolerations[0].effect"},
		{"affinity values", func(_ *conf.Config, g *conf.Group) { g.Kubernetes.NodeAffinity[0].Values = nil }, "groups[2].kubernetes.node_affinity[0].values"},
		{"two volume kinds", func(_ *conf.Config, g *conf.Group) { g.Kubernetes.Volumes[0].HostPath = "/x" }, "groups[2].kubernetes.volumes[0]"},
		{"no volume kind", func(_ *conf.Config, g *conf.Group) { g.Kubernetes.Volumes[0].PVC = "" }, "groups[2].kubernetes.volumes[0]"},
		{"volume name", func(_ *conf.Config, g *conf.Group) { g.Kubernetes.Volumes[1].Name = "home" }, "groups[2].kubernetes.volumes[1].name"},
		{"volume on munge key", func(_ *conf.Config, g *conf.Group) {
			g.Kubernetes.Volumes[0].Destination = "/run/slurm-elastic/munge.key"
		}, "groups[2].kubernetes.volumes[0].destination"},
		{"volume on a mount", func(_ *conf.Config, g *conf.Group) { g.Kubernetes.Volumes[0].Destination = "/data" }, "groups[2].kubernetes.volumes[0].destination"},
		{"nfs path", func(_ *conf.Config, g *conf.Group) { g.Kubernetes.Volumes[1].NFS.Path = "export" }, "groups[2].kubernetes.volumes[1].nfs.path"},
		{"kubernetes keys on podman", func(c *conf.Config, _ *conf.Group) {
			c.Groups[0].Kubernetes.NodeSelector = map[string]string{"a": "b"}
		}, "groups[0].kubernetes"},
		{"namespace", func(c *conf.Config, _ *conf.Group) { c.Kubernetes.Namespace = "Slurm" }, "kubernetes.namespace"},
		{"secret", func(c *conf.Config, _ *conf.Group) { c.Kubernetes.MungeSecret = "" }, "kubernetes.munge_secret"},
		{"pull policy", func(c *conf.Config, _ *conf.Group) { c.Kubernetes.ImagePullPolicy = "always" }, "kubernetes.image_pull_policy"},
		{"gpu resource", func(c *conf.Config, _ *conf.Group) { c.Kubernetes.GPUResource = "gpu" }, "kubernetes.gpu_resource"},
		{"timeout", func(c *conf.Config, _ *conf.Group) { c.Kubernetes.Timeout = 0 }, "kubernetes.timeout"},
		{"kubeconfig missing", func(c *conf.Config, _ *conf.Group) { c.Kubernetes.Kubeconfig = "/nonexistent/kubeconfig" }, "kubernetes.kubeconfig"},
		{"kubeconfig world-readable", func(c *conf.Config, _ *conf.Group) { c.Kubernetes.Kubeconfig = secretFile(t, 0o644) }, "kubernetes.kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			c.Groups = append(c.Groups, kubeGroup())
			tc.mut(c, &c.Groups[2])
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), testFile+": "+tc.key+":") {
				t.Fatalf("want a problem at %s, got %v", tc.key, err)
			}
		})
	}
}

// The Kubernetes group shown commented out in the shipped example loads
// and validates once uncommented.
func TestExampleKubernetesGroup(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	start := strings.Index(s, "  # - name: k8s\n")
	end := strings.Index(s, "\n# Structured")
	if start < 0 || end < start {
		t.Fatal("no commented Kubernetes group in the example")
	}
	block := regexp.MustCompile(`(?m)^  # ?`).ReplaceAllString(s[start:end], "  ")
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(s[:start]+block+s[end:]), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := conf.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	g := c.Groups[len(c.Groups)-1]
	if g.Runtime != conf.RuntimeKubernetes || len(g.Kubernetes.Volumes) != 3 || g.Kubernetes.NodeSelector["node.kubernetes.io/instance-type"] != "c5.xlarge" {
		t.Fatalf("%+v", g)
	}
	// Files the example names (token, SSH key) are not on this machine:
	// only problems of the groups or the kubernetes section count.
	if err := c.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if strings.Contains(line, "groups[") || strings.Contains(line, "kubernetes") {
				t.Error(line)
			}
		}
	}
}
