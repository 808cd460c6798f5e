package kubernetes

import (
	"fmt"
	"maps"
	"math"
	"net"
	"path"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// ContainerName is the name of the one container of a node's pod.
const ContainerName = "slurmd"

// mungeVolume is the name of the pod volume holding the munge key.
const mungeVolume = "slurm-elastic-munge"

var (
	// dnsLabel is an RFC 1123 label: what a pod's hostname must be.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// labelValue is a Kubernetes label value (non-empty here).
	labelValue = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

// PodName is the name of the pod that runs node in cluster.
func PodName(cluster, node string) string { return cluster + "-" + node }

// contract is what every node pod gets beside its template (the node
// contract of package runtime).
type contract struct {
	confServer string // value of runtime.EnvConfServer
	secret     string // Secret holding the munge key
	secretKey  string // its key in the Secret
}

// checkSpec reports template problems no retry can fix (ClassConfig).
func checkSpec(cluster string, n runtime.NodeSpec, groups map[string]Placement) error {
	if n.Name == "" {
		return fmt.Errorf("empty node name")
	}
	if len(n.Name) > 63 || !dnsLabel.MatchString(n.Name) {
		return fmt.Errorf("node name %q is not a pod hostname (RFC 1123 label: lower-case letters, digits, '-', at most 63)", n.Name)
	}
	if len(PodName(cluster, n.Name)) > 253 {
		return fmt.Errorf("pod name %q is longer than 253 characters", PodName(cluster, n.Name))
	}
	if len(n.Group) > 63 || !labelValue.MatchString(n.Group) {
		return fmt.Errorf("group name %q is not a Kubernetes label value", n.Group)
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
	if t.GPUs < 0 {
		return fmt.Errorf("template gpus %d is negative", t.GPUs)
	}
	if t.Network != "" {
		return fmt.Errorf("template network %q: pods join the cluster's pod network; remove it", t.Network)
	}
	for _, m := range t.Mounts {
		if !path.IsAbs(m.Source) || !path.IsAbs(m.Destination) {
			return fmt.Errorf("mount %q -> %q: both must be absolute paths", m.Source, m.Destination)
		}
		if path.Clean(m.Destination) == runtime.MungeKeyPath {
			return fmt.Errorf("template mount %q -> %s: the runtime mounts the munge key there (kubernetes.munge_secret)", m.Source, runtime.MungeKeyPath)
		}
	}
	for _, v := range groups[n.Group].Volumes {
		if path.Clean(v.Destination) == runtime.MungeKeyPath {
			return fmt.Errorf("volume %s -> %s: the runtime mounts the munge key there (kubernetes.munge_secret)", v.Name, runtime.MungeKeyPath)
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
	for _, d := range t.DNS {
		if d == runtime.DNSNone {
			return fmt.Errorf("template dns %q: a pod needs at least one name server under dnsPolicy None; list IP addresses or leave dns empty", d)
		}
		if net.ParseIP(d) == nil {
			return fmt.Errorf("template dns %q: want an IP address", d)
		}
	}
	return nil
}

// buildPod returns the pod for node n of cluster in namespace ns: name
// <cluster>-<node>, hostname = node, the ownership labels, one container
// (ContainerName) from the template with requests = limits for CPU and
// memory, GPUs as the extended resource gpuRes, the group's placement
// (node selector, tolerations, affinity, volumes), restartPolicy Never, and
// the node contract c (runtime.EnvNode, runtime.EnvConfServer, the munge
// key from its Secret at runtime.MungeKeyPath) with the image name n.Image
// as runtime.EnvImage and the annotation runtime.LabelImage (Instance.Image
// reads it back). Pure; the caller checked n with checkSpec.
func buildPod(cluster, ns string, c contract, o *Options, n runtime.NodeSpec) *corev1.Pod {
	t := n.Template
	pl := o.Groups[n.Group]
	grace := int64((o.StopTimeout + 999_999_999) / 1_000_000_000)

	ctr := corev1.Container{
		Name:            ContainerName,
		Image:           t.Image,
		ImagePullPolicy: corev1.PullPolicy(o.ImagePullPolicy),
		// Template.Command replaces the image's command, keeping its
		// entrypoint, as in Podman: Kubernetes calls that args.
		Args: slices.Clone(t.Command),
	}
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: k, Value: t.Env[k]})
	}
	ctr.Env = append(ctr.Env,
		corev1.EnvVar{Name: runtime.EnvNode, Value: n.Name},
		corev1.EnvVar{Name: runtime.EnvConfServer, Value: c.confServer})
	if n.Image != "" {
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: runtime.EnvImage, Value: n.Image})
	}

	res := corev1.ResourceList{}
	if t.CPUs > 0 {
		res[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Ceil(t.CPUs*1000)), resource.DecimalSI)
	}
	if t.MemoryMB > 0 {
		res[corev1.ResourceMemory] = *resource.NewQuantity(t.MemoryMB<<20, resource.BinarySI)
	}
	if t.GPUs > 0 {
		res[corev1.ResourceName(o.GPUResource)] = *resource.NewQuantity(int64(t.GPUs), resource.DecimalSI)
	}
	if len(res) > 0 {
		// Requests = limits: the scheduler reserves what the node
		// advertises to Slurm, and the pod is not squeezed later.
		ctr.Resources = corev1.ResourceRequirements{Requests: res.DeepCopy(), Limits: res}
	}
	if t.Privileged {
		ctr.SecurityContext = &corev1.SecurityContext{Privileged: ptrTo(true)}
	}

	var vols []corev1.Volume
	ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{
		Name: mungeVolume, MountPath: runtime.MungeKeyPath, SubPath: "munge.key", ReadOnly: true,
	})
	vols = append(vols, corev1.Volume{Name: mungeVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  c.secret,
		Items:       []corev1.KeyToPath{{Key: c.secretKey, Path: "munge.key"}},
		DefaultMode: ptrTo(int32(0o400)),
	}}})
	for i, m := range t.Mounts {
		name := fmt.Sprintf("mount-%d", i)
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: m.Source},
		}})
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: m.Destination, ReadOnly: m.ReadOnly})
	}
	for _, v := range pl.Volumes {
		vol := corev1.Volume{Name: "vol-" + v.Name}
		switch {
		case v.HostPath != "":
			vol.HostPath = &corev1.HostPathVolumeSource{Path: v.HostPath}
		case v.PVC != "":
			vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.PVC, ReadOnly: v.ReadOnly}
		case v.NFSServer != "":
			vol.NFS = &corev1.NFSVolumeSource{Server: v.NFSServer, Path: v.NFSPath, ReadOnly: v.ReadOnly}
		}
		vols = append(vols, vol)
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: vol.Name, MountPath: v.Destination, ReadOnly: v.ReadOnly})
	}

	spec := corev1.PodSpec{
		Hostname:      n.Name,
		RestartPolicy: corev1.RestartPolicyNever, // a dead slurmd is a dead node, never a silent restart
		// A node needs no Kubernetes API access, nor the Services' env.
		AutomountServiceAccountToken:  ptrTo(false),
		EnableServiceLinks:            ptrTo(false),
		TerminationGracePeriodSeconds: &grace,
		NodeSelector:                  maps.Clone(pl.NodeSelector),
		Tolerations:                   slices.Clone(pl.Tolerations),
		Containers:                    []corev1.Container{ctr},
		Volumes:                       vols,
	}
	if pl.Affinity != nil {
		spec.Affinity = pl.Affinity.DeepCopy()
	}
	if len(t.DNS) > 0 {
		spec.DNSPolicy = corev1.DNSNone
		spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: slices.Clone(t.DNS)}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      PodName(cluster, n.Name),
			Namespace: ns,
			Labels: map[string]string{
				runtime.LabelCluster: cluster,
				runtime.LabelGroup:   n.Group,
				runtime.LabelNode:    n.Name,
			},
		},
		Spec: spec,
	}
	if n.Image != "" {
		// An annotation, not a label: an image name ("_gpu", "v1.") need not
		// be a label value, and nothing selects by it.
		pod.Annotations = map[string]string{runtime.LabelImage: n.Image}
	}
	return pod
}

// selector is the label selector of this cluster's pods, only node's when
// node is set.
func selector(cluster, node string) string {
	s := runtime.LabelCluster + "=" + cluster
	if node != "" {
		s += "," + runtime.LabelNode + "=" + node
	}
	return s
}

// owned reports whether pod belongs to cluster (and to node, when set):
// ownership is decided here again, not only by the server's selector.
func owned(pod *corev1.Pod, cluster, node string) bool {
	l := pod.Labels
	if l[runtime.LabelCluster] != cluster || l[runtime.LabelNode] == "" {
		return false
	}
	return node == "" || (l[runtime.LabelNode] == node && pod.Name == PodName(cluster, node))
}

// stateOf maps a pod to a runtime.State. A pod being deleted, evicted or
// whose container ended (OOM-killed too) is exited: a dead node.
func stateOf(pod *corev1.Pod) runtime.State {
	if pod.DeletionTimestamp != nil {
		return runtime.StateExited
	}
	switch pod.Status.Phase {
	case corev1.PodRunning:
		if cs := containerStatus(pod); cs != nil && cs.State.Terminated != nil {
			return runtime.StateExited
		}
		return runtime.StateRunning
	case corev1.PodPending:
		return runtime.StateCreated
	case corev1.PodSucceeded, corev1.PodFailed:
		return runtime.StateExited
	default:
		return runtime.StateUnknown
	}
}

// instance is the runtime's view of pod.
func instance(pod *corev1.Pod) runtime.Instance {
	return runtime.Instance{
		Name:    pod.Labels[runtime.LabelNode],
		Group:   pod.Labels[runtime.LabelGroup],
		Image:   pod.Annotations[runtime.LabelImage],
		Host:    pod.Spec.NodeName,
		ID:      string(pod.UID),
		Addr:    pod.Status.PodIP,
		State:   stateOf(pod),
		Created: pod.CreationTimestamp.Time,
	}
}

// containerStatus is the status of the pod's slurmd container, nil if none yet.
func containerStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == ContainerName {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// describe is a short account of a pod's status for error messages.
func describe(pod *corev1.Pod) string {
	if pod == nil {
		return "no pod"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s", pod.Status.Phase)
	if pod.Status.Reason != "" {
		fmt.Fprintf(&b, ", reason %s", pod.Status.Reason)
	}
	if pod.Status.Message != "" {
		fmt.Fprintf(&b, ": %s", pod.Status.Message)
	}
	for _, c := range pod.Status.Conditions {
		if c.Status == corev1.ConditionFalse && c.Reason != "" {
			fmt.Fprintf(&b, "; %s: %s", c.Type, c.Reason)
			if c.Message != "" {
				fmt.Fprintf(&b, " (%s)", c.Message)
			}
		}
	}
	if cs := containerStatus(pod); cs != nil {
		switch s := cs.State; {
		case s.Waiting != nil:
			fmt.Fprintf(&b, "; container waiting: %s", s.Waiting.Reason)
			if s.Waiting.Message != "" {
				fmt.Fprintf(&b, " (%s)", s.Waiting.Message)
			}
		case s.Terminated != nil:
			fmt.Fprintf(&b, "; container terminated: %s, exit code %d", s.Terminated.Reason, s.Terminated.ExitCode)
			if s.Terminated.Message != "" {
				fmt.Fprintf(&b, ": %s", s.Terminated.Message)
			}
		}
	}
	if pod.Spec.NodeName != "" {
		fmt.Fprintf(&b, "; on node %s", pod.Spec.NodeName)
	}
	return b.String()
}

func ptrTo[T any](v T) *T { return &v }
