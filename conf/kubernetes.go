package conf

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// KubernetesConf says how to reach the Kubernetes cluster that runs the
// groups with runtime kubernetes (section kubernetes:).
type KubernetesConf struct {
	// Kubeconfig is the kubeconfig file (it holds credentials: 0600 or
	// 0640). "": the in-cluster service account (slurm-elastic runs in a pod).
	Kubeconfig string `mapstructure:"kubeconfig"`
	// Context in the kubeconfig; "": its current context.
	Context string `mapstructure:"context"`
	// Namespace the node pods live in. Default slurm-elastic.
	Namespace string `mapstructure:"namespace"`
	// MungeSecret is the Secret in Namespace holding the cluster's munge
	// key under MungeSecretKey; it is mounted read-only at
	// runtime.MungeKeyPath in every pod. Default slurm-elastic-munge, key
	// munge.key.
	MungeSecret    string `mapstructure:"munge_secret"`
	MungeSecretKey string `mapstructure:"munge_secret_key"`
	// GPUResource is the extended resource template.gpu_count asks for,
	// so the device plugin gives each pod distinct GPUs. Default
	// nvidia.com/gpu.
	GPUResource string `mapstructure:"gpu_resource"`
	// ImagePullPolicy: Always, IfNotPresent, Never; "": Kubernetes's
	// default for the image's tag.
	ImagePullPolicy string `mapstructure:"image_pull_policy"`
	// ImagePullGrace is how long a pod may fail to pull its image (or
	// create its container) before the launch fails as a config problem.
	// Default 30s.
	ImagePullGrace time.Duration `mapstructure:"image_pull_grace"`
	// Timeout bounds one API call. Default 30s.
	Timeout time.Duration `mapstructure:"timeout"`
}

// GroupKubernetes places a group's pods (groups[].kubernetes): the
// scheduler's constraints and the volumes the admin lists. The runtime
// gets it as kubernetes.Placement (cmd/internal/build).
type GroupKubernetes struct {
	// NodeSelector: labels a Kubernetes node must have.
	NodeSelector map[string]string `mapstructure:"node_selector" yaml:"node_selector"`
	// Tolerations of taints (e.g. of GPU nodes).
	Tolerations []Toleration `mapstructure:"tolerations" yaml:"tolerations"`
	// NodeAffinity: requirements a Kubernetes node must meet, all of them
	// (requiredDuringSchedulingIgnoredDuringExecution, one term).
	NodeAffinity []NodeRequirement `mapstructure:"node_affinity" yaml:"node_affinity"`
	// Volumes mounted into every pod of the group.
	Volumes []KubernetesVolume `mapstructure:"volumes" yaml:"volumes"`
}

// Toleration is a pod toleration (operator Equal or Exists; effect
// NoSchedule, PreferNoSchedule, NoExecute or "" for all).
type Toleration struct {
	Key      string `mapstructure:"key" yaml:"key"`
	Operator string `mapstructure:"operator" yaml:"operator"`
	Value    string `mapstructure:"value" yaml:"value"`
	Effect   string `mapstructure:"effect" yaml:"effect"`
}

// NodeRequirement is one node selector requirement (operator In, NotIn,
// Exists, DoesNotExist, Gt, Lt).
type NodeRequirement struct {
	Key      string   `mapstructure:"key" yaml:"key"`
	Operator string   `mapstructure:"operator" yaml:"operator"`
	Values   []string `mapstructure:"values" yaml:"values"`
}

// KubernetesVolume is one volume of a group's pods: exactly one of
// host_path, pvc or nfs, mounted at destination.
type KubernetesVolume struct {
	Name        string    `mapstructure:"name" yaml:"name"`
	Destination string    `mapstructure:"destination" yaml:"destination"`
	ReadOnly    bool      `mapstructure:"read_only" yaml:"read_only"`
	HostPath    string    `mapstructure:"host_path" yaml:"host_path"`
	PVC         string    `mapstructure:"pvc" yaml:"pvc"`
	NFS         NFSVolume `mapstructure:"nfs" yaml:"nfs"`
}

// NFSVolume is an NFS export.
type NFSVolume struct {
	Server string `mapstructure:"server" yaml:"server"`
	Path   string `mapstructure:"path" yaml:"path"`
}

var (
	// dns1123Label: a pod hostname, a namespace, a volume name.
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// dns1123Subdomain: a Secret or PVC name.
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// labelKeyRe: [prefix/]name of a label (or resource) key.
	labelKeyRe   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValueRe = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
)

var pullPolicies = []string{"", "Always", "IfNotPresent", "Never"}

// kubernetesGroups lists the groups using runtime kubernetes, as key (name).
func (c *Config) kubernetesGroups() []string {
	var out []string
	for i, g := range c.Groups {
		if g.Runtime == RuntimeKubernetes {
			out = append(out, fmt.Sprintf("groups[%d] (%s)", i, g.Name))
		}
	}
	return out
}

func (c *Config) validateKubernetes(p *problems) {
	k := c.Kubernetes
	if k.Kubeconfig != "" {
		checkSecretFile(p, "kubernetes.kubeconfig", k.Kubeconfig)
	}
	if !dns1123Label.MatchString(k.Namespace) || len(k.Namespace) > 63 {
		p.add("kubernetes.namespace", "%q: a namespace name is lower-case letters, digits and '-', at most 63 characters", k.Namespace)
	}
	if !dns1123Subdomain.MatchString(k.MungeSecret) || len(k.MungeSecret) > 253 {
		p.add("kubernetes.munge_secret", "%q: a Secret name is lower-case letters, digits, '-' and '.'", k.MungeSecret)
	}
	if k.MungeSecretKey == "" || strings.ContainsAny(k.MungeSecretKey, "/ ") {
		p.add("kubernetes.munge_secret_key", "%q: the key of the munge key in the Secret, e.g. munge.key", k.MungeSecretKey)
	}
	if !labelKeyRe.MatchString(k.GPUResource) || !strings.Contains(k.GPUResource, "/") {
		p.add("kubernetes.gpu_resource", "%q: an extended resource name domain/name, e.g. nvidia.com/gpu", k.GPUResource)
	}
	if !slices.Contains(pullPolicies, k.ImagePullPolicy) {
		p.add("kubernetes.image_pull_policy", "%q: want Always, IfNotPresent or Never (or leave it unset)", k.ImagePullPolicy)
	}
	if k.ImagePullGrace < 0 {
		p.add("kubernetes.image_pull_grace", "%s: must not be negative (0: the default)", k.ImagePullGrace)
	}
	positive(p, "kubernetes.timeout", k.Timeout)
}

// validateGroupKubernetes checks what a group with runtime kubernetes
// needs beyond the common template checks, and that a group with another
// runtime sets no kubernetes key.
func validateGroupKubernetes(p *problems, key string, g *Group, nodes []string) {
	gk := g.Kubernetes
	if g.Runtime != RuntimeKubernetes {
		if len(gk.NodeSelector)+len(gk.Tolerations)+len(gk.NodeAffinity)+len(gk.Volumes) > 0 {
			p.add(key+".kubernetes", "only used with runtime kubernetes; remove it or set runtime: kubernetes")
		}
		return
	}
	t := g.Template
	if t.Network != "" {
		p.add(key+".template.network", "%q: pods join the Kubernetes pod network; remove it with runtime kubernetes", t.Network)
	}
	if slices.Contains(t.DNS, "none") {
		p.add(key+".template.dns", "\"none\" is not possible for a pod (dnsPolicy None needs a name server): list IP addresses or leave it unset")
	}
	if !labelValueRe.MatchString(g.Name) {
		p.add(key+".name", "%q: with runtime kubernetes a group name is a label value: letters, digits, '-', '_', '.', starting and ending with a letter or digit", g.Name)
	}
	var bad []string
	for _, n := range nodes {
		if !dns1123Label.MatchString(n) {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		p.add(key+".nodes", "%d node name(s) are not pod hostnames (%s): with runtime kubernetes use lower-case letters, digits and '-'", len(bad), listNames(bad))
	}
	for _, k := range slices.Sorted(maps.Keys(gk.NodeSelector)) {
		if !labelKeyRe.MatchString(k) {
			p.add(fmt.Sprintf("%s.kubernetes.node_selector[%q]", key, k), "not a label key")
		} else if !labelValueRe.MatchString(gk.NodeSelector[k]) {
			p.add(fmt.Sprintf("%s.kubernetes.node_selector[%q]", key, k), "%q: not a label value", gk.NodeSelector[k])
		}
	}
	for j, tl := range gk.Tolerations {
		tk := fmt.Sprintf("%s.kubernetes.tolerations[%d]", key, j)
		if tl.Key != "" && !labelKeyRe.MatchString(tl.Key) {
			p.add(tk+".key", "%q: not a taint key", tl.Key)
		}
		switch tl.Operator {
		case "", "Equal":
			if tl.Key == "" {
				p.add(tk+".key", "required with operator Equal (an empty key needs operator Exists)")
			}
		case "Exists":
			if tl.Value != "" {
				p.add(tk+".value", "must be empty with operator Exists")
			}
		default:
			p.add(tk+".operator", "%q: want Equal or Exists", tl.Operator)
		}
		switch tl.Effect {
		case "", "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			p.add(tk+".effect", "%q: want NoSchedule, PreferNoSchedule or NoExecute (or empty: all)", tl.Effect)
		}
	}
	for j, r := range gk.NodeAffinity {
		rk := fmt.Sprintf("%s.kubernetes.node_affinity[%d]", key, j)
		if !labelKeyRe.MatchString(r.Key) {
			p.add(rk+".key", "%q: not a label key", r.Key)
		}
		switch r.Operator {
		case "In", "NotIn":
			if len(r.Values) == 0 {
				p.add(rk+".values", "required with operator %s", r.Operator)
			}
		case "Exists", "DoesNotExist":
			if len(r.Values) > 0 {
				p.add(rk+".values", "must be empty with operator %s", r.Operator)
			}
		case "Gt", "Lt":
			if len(r.Values) != 1 {
				p.add(rk+".values", "one integer with operator %s", r.Operator)
			}
		default:
			p.add(rk+".operator", "%q: want In, NotIn, Exists, DoesNotExist, Gt or Lt", r.Operator)
		}
	}
	seen := map[string]int{}
	dests := map[string]string{}
	for _, m := range t.Mounts {
		dests[filepath.Clean(m.Destination)] = "template.mounts"
	}
	for j, v := range gk.Volumes {
		vk := fmt.Sprintf("%s.kubernetes.volumes[%d]", key, j)
		if !dns1123Label.MatchString(v.Name) || len(v.Name) > 59 {
			p.add(vk+".name", "%q: lower-case letters, digits and '-', at most 59 characters", v.Name)
		} else if i, dup := seen[v.Name]; dup {
			p.add(vk+".name", "%q: already used by volumes[%d]", v.Name, i)
		} else {
			seen[v.Name] = j
		}
		switch d := filepath.Clean(v.Destination); {
		case !filepath.IsAbs(v.Destination):
			p.add(vk+".destination", "%q: must be an absolute path", v.Destination)
		case d == runtime.MungeKeyPath:
			p.add(vk+".destination", "%s: the runtime mounts the munge key there itself (kubernetes.munge_secret)", d)
		case dests[d] != "":
			p.add(vk+".destination", "%s: already mounted by %s", d, dests[d])
		default:
			dests[d] = fmt.Sprintf("kubernetes.volumes[%d]", j)
		}
		kinds := 0
		if v.HostPath != "" {
			kinds++
			if !filepath.IsAbs(v.HostPath) {
				p.add(vk+".host_path", "%q: must be an absolute path", v.HostPath)
			}
		}
		if v.PVC != "" {
			kinds++
			if !dns1123Subdomain.MatchString(v.PVC) {
				p.add(vk+".pvc", "%q: not a PersistentVolumeClaim name", v.PVC)
			}
		}
		if v.NFS != (NFSVolume{}) {
			kinds++
			if v.NFS.Server == "" || (net.ParseIP(v.NFS.Server) == nil && !hostRe.MatchString(v.NFS.Server)) {
				p.add(vk+".nfs.server", "%q: a host name or IP address", v.NFS.Server)
			}
			if !filepath.IsAbs(v.NFS.Path) {
				p.add(vk+".nfs.path", "%q: must be the absolute path of the export", v.NFS.Path)
			}
		}
		if kinds != 1 {
			p.add(vk, "give exactly one of host_path, pvc, nfs")
		}
	}
}
