package podman

import (
	"fmt"
	"math"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"

	nettypes "github.com/containers/common/libnetwork/types"
	"github.com/containers/podman/v4/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Internal labels recording what a container reserves on its host, so that
// placement can count a host's load from one list call.
const (
	labelCPUs     = "slurm-elastic.cpus"
	labelMemoryMB = "slurm-elastic.memory_mb"
	// labelGPUs lists the CDI devices the container was given, comma
	// separated: each host's GPU assignments are recovered from it by any
	// process (the hooks are short-lived), so no device is given twice.
	labelGPUs = "slurm-elastic.gpus"
)

// contract is what every node container gets beside its template (the
// node contract of package runtime).
type contract struct {
	confServer string // value of runtime.EnvConfServer
	mungeKey   string // host path bind-mounted read-only at runtime.MungeKeyPath
}

// cpuPeriod is the CFS period used for CPU limits (100 ms, the kernel default).
const cpuPeriod = 100000

// imageNameRe is a group image name: a Slurm feature name the
// node_features/helpers plugin accepts (conf validates the same).
var imageNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]{0,62}$`)

// validName is what Podman accepts as a container name.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ContainerName is the name of the container that runs node in cluster.
func ContainerName(cluster, node string) string { return cluster + "-" + node }

// checkSpec reports template problems that no host can fix (ClassConfig).
func checkSpec(cluster string, n runtime.NodeSpec) error {
	if n.Name == "" {
		return fmt.Errorf("empty node name")
	}
	if !validName.MatchString(ContainerName(cluster, n.Name)) {
		return fmt.Errorf("node name %q does not make a valid container name", n.Name)
	}
	t := n.Template
	if t.Image == "" {
		return fmt.Errorf("template has no image")
	}
	if t.CPUs < 0 || math.IsNaN(t.CPUs) || math.IsInf(t.CPUs, 0) {
		return fmt.Errorf("template cpus %v is not a valid limit", t.CPUs)
	}
	if t.MemoryMB < 0 {
		return fmt.Errorf("template memory_mb %d is negative", t.MemoryMB)
	}
	for _, m := range t.Mounts {
		if m.Source == "" || m.Destination == "" {
			return fmt.Errorf("mount %q -> %q needs both source and destination", m.Source, m.Destination)
		}
		if path.Clean(m.Destination) == runtime.MungeKeyPath {
			return fmt.Errorf("template mount %q -> %s: the runtime mounts the munge key there (podman.munge_key)", m.Source, runtime.MungeKeyPath)
		}
	}
	if _, ok := t.Env[runtime.EnvNode]; ok {
		return fmt.Errorf("template env %s: the runtime sets it to the node name", runtime.EnvNode)
	}
	if _, ok := t.Env[runtime.EnvConfServer]; ok {
		return fmt.Errorf("template env %s: the runtime sets it from slurm.conf_server", runtime.EnvConfServer)
	}
	if _, ok := t.Env[runtime.EnvImage]; ok {
		return fmt.Errorf("template env %s: the runtime sets it to the node's image name", runtime.EnvImage)
	}
	if n.Image != "" && !imageNameRe.MatchString(n.Image) {
		return fmt.Errorf("image name %q is not a Slurm feature name", n.Image)
	}
	if t.GPUs < 0 {
		return fmt.Errorf("template gpus %d is negative", t.GPUs)
	}
	for _, d := range t.DNS {
		if d != runtime.DNSNone && net.ParseIP(d) == nil {
			return fmt.Errorf("template dns %q: want an IP address or %q", d, runtime.DNSNone)
		}
	}
	return nil
}

// buildSpec returns the container spec for node n of cluster: name
// <cluster>-<node>, hostname = node, ownership labels, env, network, limits,
// bind mounts, the CDI devices gpus (the node's share of its host's GPUs,
// also in labelGPUs), and the node contract c (runtime.EnvNode,
// runtime.EnvConfServer, the munge key at runtime.MungeKeyPath) with the
// image name n.Image as runtime.EnvImage and runtime.LabelImage. Pure; the
// caller checked n with checkSpec.
func buildSpec(cluster string, c contract, n runtime.NodeSpec, gpus []string) *specgen.SpecGenerator {
	t := n.Template
	s := specgen.NewSpecGenerator(t.Image, false)
	s.Name = ContainerName(cluster, n.Name)
	s.Hostname = n.Name
	s.Labels = map[string]string{
		runtime.LabelCluster: cluster,
		runtime.LabelGroup:   n.Group,
		runtime.LabelNode:    n.Name,
		labelCPUs:            strconv.FormatFloat(t.CPUs, 'f', -1, 64),
		labelMemoryMB:        strconv.FormatInt(t.MemoryMB, 10),
	}
	if len(gpus) > 0 {
		s.Labels[labelGPUs] = strings.Join(gpus, ",")
	}
	if n.Image != "" {
		s.Labels[runtime.LabelImage] = n.Image
	}
	s.Env = make(map[string]string, len(t.Env)+2)
	for k, v := range t.Env {
		s.Env[k] = v
	}
	s.Env[runtime.EnvNode] = n.Name
	s.Env[runtime.EnvConfServer] = c.confServer
	if n.Image != "" {
		s.Env[runtime.EnvImage] = n.Image
	}
	if len(t.Command) > 0 {
		s.Command = append([]string(nil), t.Command...)
	}
	if t.Network != "" {
		s.NetNS = specgen.Namespace{NSMode: specgen.Bridge}
		s.Networks = map[string]nettypes.PerNetworkOptions{t.Network: {}}
	}
	if t.CPUs > 0 || t.MemoryMB > 0 {
		s.ResourceLimits = &spec.LinuxResources{}
		if t.CPUs > 0 {
			period := uint64(cpuPeriod)
			quota := int64(math.Ceil(t.CPUs * cpuPeriod))
			s.ResourceLimits.CPU = &spec.LinuxCPU{Period: &period, Quota: &quota}
		}
		if t.MemoryMB > 0 {
			limit := t.MemoryMB << 20
			s.ResourceLimits.Memory = &spec.LinuxMemory{Limit: &limit}
		}
	}
	for _, m := range t.Mounts {
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, spec.Mount{Type: "bind", Source: m.Source, Destination: m.Destination, Options: opts})
	}
	s.Mounts = append(s.Mounts, spec.Mount{Type: "bind", Source: c.mungeKey, Destination: runtime.MungeKeyPath, Options: []string{"rbind", "ro"}})
	for _, g := range gpus {
		s.Devices = append(s.Devices, spec.LinuxDevice{Path: g})
	}
	for _, d := range t.DNS {
		if d == runtime.DNSNone {
			s.UseImageResolvConf = true
			s.DNSServers = nil
			break
		}
		if ip := net.ParseIP(d); ip != nil {
			s.DNSServers = append(s.DNSServers, ip)
		}
	}
	s.Privileged = t.Privileged
	// No restart policy: a node that dies stays dead and Slurm sees it.
	return s
}

// need returns the host resources node n reserves, but which GPUs
// (placement picks them).
func need(n runtime.NodeSpec) usage {
	return usage{cpus: n.Template.CPUs, memMB: n.Template.MemoryMB}
}

// usageFromLabels reads what a listed container reserves; unknown = 0.
func usageFromLabels(l map[string]string) usage {
	var u usage
	if v, err := strconv.ParseFloat(l[labelCPUs], 64); err == nil && v > 0 && !math.IsInf(v, 0) {
		u.cpus = v
	}
	if v, err := strconv.ParseInt(l[labelMemoryMB], 10, 64); err == nil && v > 0 {
		u.memMB = v
	}
	for g := range strings.SplitSeq(l[labelGPUs], ",") {
		if g != "" {
			u.gpus = append(u.gpus, g)
		}
	}
	return u
}
