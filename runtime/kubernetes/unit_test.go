package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

const ns = "slurm"

// kube is a fake API server (client-go's fake clientset: a fake of the
// outside API) with a kubelet stand-in: status(pod) runs on every created
// pod and sets what the scheduler and the kubelet would.
type fakeAPI struct {
	cs      *fake.Clientset
	creates atomic.Int32
	uid     atomic.Int32
}

func newFake(status func(p *corev1.Pod)) *fakeAPI {
	k := &fakeAPI{cs: fake.NewSimpleClientset()}
	k.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		k.creates.Add(1)
		p.UID = types.UID("uid-" + string(rune('0'+k.uid.Add(1))))
		p.CreationTimestamp = metav1.Now()
		if status != nil {
			status(p)
		}
		return false, nil, nil
	})
	return k
}

// coreAPI is the runtime's api over a typed core/v1 client (the fake's).
type coreAPI struct{ c corev1client.CoreV1Interface }

func (a coreAPI) ListPods(ctx context.Context, o metav1.ListOptions) (*corev1.PodList, error) {
	return a.c.Pods(ns).List(ctx, o)
}

func (a coreAPI) WatchPods(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return a.c.Pods(ns).Watch(ctx, o)
}

func (a coreAPI) CreatePod(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	return a.c.Pods(ns).Create(ctx, p, metav1.CreateOptions{})
}

func (a coreAPI) DeletePod(ctx context.Context, name string, o metav1.DeleteOptions) error {
	return a.c.Pods(ns).Delete(ctx, name, o)
}

func (a coreAPI) PodLogs(ctx context.Context, name string, o *corev1.PodLogOptions) (io.ReadCloser, error) {
	return a.c.Pods(ns).GetLogs(name, o).Stream(ctx)
}

func (a coreAPI) GetSecret(ctx context.Context, name string) (*corev1.Secret, error) {
	return a.c.Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

func running(p *corev1.Pod) {
	p.Spec.NodeName = "worker1"
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0." + string(rune('0'+len(p.Name)%10)),
		ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}
}

func opts(k *fakeAPI) Options {
	return Options{
		Cluster: "c1", Namespace: ns, ConfServer: "head:6817", MungeSecret: "munge",
		api: coreAPI{k.cs.CoreV1()}, ImagePullPolicy: "IfNotPresent",
		Groups: map[string]Placement{"gpu": {
			NodeSelector: map[string]string{"pool": "gpu"},
			Tolerations:  []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			Volumes: []Volume{
				{Name: "scratch", Destination: "/scratch", HostPath: "/srv/scratch"},
				{Name: "home", Destination: "/home", PVC: "homes"},
				{Name: "apps", Destination: "/apps", ReadOnly: true, NFSServer: "nfs1", NFSPath: "/export/apps"},
			},
		}},
	}
}

func newRT(t *testing.T, k *fakeAPI, mod func(*Options)) *Kubernetes {
	t.Helper()
	o := opts(k)
	if mod != nil {
		mod(&o)
	}
	r, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func spec(name string) runtime.NodeSpec {
	return runtime.NodeSpec{Name: name, Group: "gpu", Template: runtime.Template{
		Image: "slurm-node:1", Command: []string{"--debug"}, CPUs: 2, MemoryMB: 1024, GPUs: 1,
		Env: map[string]string{"B": "2", "A": "1"},
	}}
}

func getPod(t *testing.T, k *fakeAPI, node string) *corev1.Pod {
	t.Helper()
	p, err := k.cs.CoreV1().Pods(ns).Get(context.Background(), PodName("c1", node), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func podCount(t *testing.T, k *fakeAPI) int {
	t.Helper()
	l, err := k.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

func TestLaunchBuildsThePod(t *testing.T) {
	k := newFake(running)
	r := newRT(t, k, nil)
	res := r.Launch(context.Background(), []runtime.NodeSpec{spec("gpu1")})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	inst := res[0].Instance
	if inst.Name != "gpu1" || inst.Group != "gpu" || inst.Host != "worker1" || inst.Addr == "" || inst.State != runtime.StateRunning || inst.ID == "" {
		t.Fatalf("instance %+v", inst)
	}
	p := getPod(t, k, "gpu1")
	if p.Spec.Hostname != "gpu1" || p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("hostname %q restart %q", p.Spec.Hostname, p.Spec.RestartPolicy)
	}
	want := map[string]string{runtime.LabelCluster: "c1", runtime.LabelGroup: "gpu", runtime.LabelNode: "gpu1"}
	for key, v := range want {
		if p.Labels[key] != v {
			t.Errorf("label %s = %q, want %q", key, p.Labels[key], v)
		}
	}
	if *p.Spec.AutomountServiceAccountToken || p.Spec.NodeSelector["pool"] != "gpu" || len(p.Spec.Tolerations) != 1 {
		t.Errorf("spec %+v", p.Spec)
	}
	c := p.Spec.Containers[0]
	if c.Image != "slurm-node:1" || c.ImagePullPolicy != corev1.PullIfNotPresent || strings.Join(c.Args, " ") != "--debug" {
		t.Errorf("container %+v", c)
	}
	env := map[string]string{}
	var order []string
	for _, e := range c.Env {
		env[e.Name] = e.Value
		order = append(order, e.Name)
	}
	if env[runtime.EnvNode] != "gpu1" || env[runtime.EnvConfServer] != "head:6817" || env["A"] != "1" || order[0] != "A" {
		t.Errorf("env %v", c.Env)
	}
	for name, q := range map[corev1.ResourceName]string{corev1.ResourceCPU: "2", corev1.ResourceMemory: "1Gi", "nvidia.com/gpu": "1"} {
		lim, req := c.Resources.Limits[name], c.Resources.Requests[name]
		if lim.Cmp(resource.MustParse(q)) != 0 || req.Cmp(lim) != 0 {
			t.Errorf("resource %s: limit %s request %s, want %s", name, lim.String(), req.String(), q)
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	vols := map[string]corev1.Volume{}
	for _, v := range p.Spec.Volumes {
		vols[v.Name] = v
	}
	mk := mounts[runtime.MungeKeyPath]
	if !mk.ReadOnly || vols[mk.Name].Secret == nil || vols[mk.Name].Secret.SecretName != "munge" || vols[mk.Name].Secret.Items[0].Key != "munge.key" {
		t.Errorf("munge key mount %+v volume %+v", mk, vols[mk.Name])
	}
	if v := vols[mounts["/scratch"].Name]; v.HostPath == nil || v.HostPath.Path != "/srv/scratch" {
		t.Errorf("scratch %+v", v)
	}
	if v := vols[mounts["/home"].Name]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "homes" {
		t.Errorf("home %+v", v)
	}
	if v := vols[mounts["/apps"].Name]; v.NFS == nil || v.NFS.Server != "nfs1" || !mounts["/apps"].ReadOnly {
		t.Errorf("apps %+v", v)
	}
}

// The image name of a node (its job's -C) reaches the node as EnvImage and
// comes back in List (Instance.Image): the reconciler's reboot relaunches a
// node with the image it ran. The default image sets neither.
func TestLaunchKeepsTheImageName(t *testing.T) {
	k := newFake(running)
	r := newRT(t, k, nil)
	marked, plain := spec("gpu1"), spec("gpu2")
	marked.Image = "_gpu.v2." // an image name, not a label value
	for _, res := range r.Launch(context.Background(), []runtime.NodeSpec{marked, plain}) {
		if res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	env := func(node string) map[string]string {
		m := map[string]string{}
		for _, e := range getPod(t, k, node).Spec.Containers[0].Env {
			m[e.Name] = e.Value
		}
		return m
	}
	if v, ok := env("gpu1")[runtime.EnvImage]; !ok || v != "_gpu.v2." {
		t.Errorf("gpu1: %s = %q (set %v), want _gpu.v2.", runtime.EnvImage, v, ok)
	}
	if v, ok := env("gpu2")[runtime.EnvImage]; ok {
		t.Errorf("gpu2 on the default image: %s = %q, want unset", runtime.EnvImage, v)
	}
	list, err := r.List(context.Background())
	if err != nil || len(list) != 2 {
		t.Fatalf("%+v %v", list, err)
	}
	for _, in := range list {
		if want := map[string]string{"gpu1": "_gpu.v2.", "gpu2": ""}[in.Name]; in.Image != want {
			t.Errorf("%s: Instance.Image %q, want %q", in.Name, in.Image, want)
		}
	}
	n := spec("gpu3")
	n.Template.Env = map[string]string{runtime.EnvImage: "x"}
	if res := r.Launch(context.Background(), []runtime.NodeSpec{n})[0]; res.Class() != runtime.ClassConfig {
		t.Errorf("template env %s: %s %v, want a Config error", runtime.EnvImage, res.Class(), res.Err)
	}
}

func TestLaunchIsIdempotent(t *testing.T) {
	k := newFake(running)
	r := newRT(t, k, nil)
	first := r.Launch(context.Background(), []runtime.NodeSpec{spec("gpu1"), spec("gpu2")})
	again := r.Launch(context.Background(), []runtime.NodeSpec{spec("gpu1"), spec("gpu2")})
	for i := range again {
		if first[i].Err != nil || again[i].Err != nil || again[i].Instance.ID != first[i].Instance.ID {
			t.Fatalf("first %+v again %+v", first[i], again[i])
		}
	}
	if n := k.creates.Load(); n != 2 {
		t.Fatalf("%d creates, want 2", n)
	}
}

func TestLaunchReplacesEndedPod(t *testing.T) {
	k := newFake(running)
	r := newRT(t, k, nil)
	old := buildPod("c1", ns, r.contract, &r.o, spec("gpu1"))
	old.UID = "old"
	old.Status.Phase = corev1.PodFailed
	old.Status.Reason = reasonEvicted
	if _, err := k.cs.CoreV1().Pods(ns).Create(context.Background(), old, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The create reactor made it running: end it again.
	p := getPod(t, k, "gpu1")
	p.Status = old.Status
	if _, err := k.cs.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := r.List(context.Background())
	if err != nil || len(list) != 1 || list[0].State != runtime.StateExited {
		t.Fatalf("list of an evicted pod: %+v %v", list, err)
	}
	res := r.Launch(context.Background(), []runtime.NodeSpec{spec("gpu1")})
	if res[0].Err != nil || res[0].Instance.ID == string(p.UID) || res[0].Instance.State != runtime.StateRunning {
		t.Fatalf("%+v (old uid %s)", res[0], p.UID)
	}
}

func TestLaunchFailureClasses(t *testing.T) {
	unschedulable := func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: "0/1 nodes are available: 1 Insufficient cpu.",
		}}}
	}
	waiting := func(reason string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.NodeName = "worker1"
			p.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
				Name: ContainerName, Image: p.Spec.Containers[0].Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "pull access denied"}},
			}}}
		}
	}
	failed := func(reason string, oom bool) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.NodeName = "worker1"
			term := &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
			if oom {
				term.Reason, term.ExitCode = "OOMKilled", 137
			}
			p.Status = corev1.PodStatus{Phase: corev1.PodFailed, Reason: reason, ContainerStatuses: []corev1.ContainerStatus{{
				Name: ContainerName, State: corev1.ContainerState{Terminated: term},
			}}}
		}
	}
	quota := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "c1-n1",
		errors.New("exceeded quota: compute, requested: requests.cpu=2, used: requests.cpu=8, limited: requests.cpu=8"))
	rbac := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "c1-n1",
		errors.New(`User "system:serviceaccount:slurm:head" cannot create resource "pods"`))
	for _, tc := range []struct {
		name      string
		status    func(*corev1.Pod)
		createErr error
		grace     time.Duration
		class     runtime.Class
		wantLog   bool
		contains  string
	}{
		{name: "unschedulable", status: unschedulable, class: runtime.ClassCapacity, contains: "Insufficient cpu"},
		{name: "quota", createErr: quota, class: runtime.ClassCapacity, contains: "exceeded quota"},
		{name: "rbac", createErr: rbac, class: runtime.ClassConfig, contains: "cannot create"},
		{name: "invalid", createErr: apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "c1-n1", nil), class: runtime.ClassConfig},
		{name: "api down", createErr: apierrors.NewInternalError(errors.New("etcd leader changed")), class: runtime.ClassTransient},
		{name: "api timeout", createErr: apierrors.NewServerTimeout(schema.GroupResource{Resource: "pods"}, "create", 1), class: runtime.ClassTransient},
		{name: "throttled", createErr: apierrors.NewTooManyRequests("slow down", 1), class: runtime.ClassTransient},
		{name: "image pull", status: waiting(reasonImagePullBackOff), grace: -1, class: runtime.ClassConfig, contains: "cannot be pulled"},
		{name: "invalid image", status: waiting(reasonInvalidImageName), grace: time.Hour, class: runtime.ClassConfig},
		{name: "secret missing", status: waiting(reasonCreateConfigError), grace: -1, class: runtime.ClassConfig, contains: "cannot be created"},
		{name: "exited", status: failed("", false), class: runtime.ClassConfig, wantLog: true, contains: "exited at once"},
		{name: "oom killed", status: failed("", true), class: runtime.ClassConfig, wantLog: true, contains: "OOMKilled"},
		{name: "evicted", status: failed(reasonEvicted, false), class: runtime.ClassCapacity, wantLog: true},
		{name: "kubelet out of gpus", status: failed("OutOfnvidia.com/gpu", false), class: runtime.ClassCapacity, wantLog: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFake(tc.status)
			if tc.createErr != nil {
				k.cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
					return true, nil, tc.createErr
				})
			}
			r := newRT(t, k, func(o *Options) { o.ImagePullGrace = tc.grace })
			res := r.Launch(context.Background(), []runtime.NodeSpec{spec("n1")})[0]
			if res.Err == nil {
				t.Fatal("launch succeeded")
			}
			if res.Class() != tc.class || !strings.Contains(res.Err.Error(), tc.contains) || runtime.HostOf(res.Err) != "" {
				t.Fatalf("class %s (want %s), host %q: %v", res.Class(), tc.class, runtime.HostOf(res.Err), res.Err)
			}
			if (res.Log != nil) != tc.wantLog {
				t.Fatalf("log %+v, want one: %v", res.Log, tc.wantLog)
			}
			if n := podCount(t, k); n != 0 {
				t.Fatalf("%d pods left behind", n)
			}
		})
	}
}

// A pull that fails within the grace is waited for: the launch ends with
// the caller's deadline, Transient, and deletes the pod.
func TestImagePullGraceWaits(t *testing.T) {
	k := newFake(func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: ContainerName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reasonErrImagePull}},
		}}}
	})
	r := newRT(t, k, func(o *Options) { o.ImagePullGrace = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := r.Launch(ctx, []runtime.NodeSpec{spec("n1")})[0]
	if res.Class() != runtime.ClassTransient || !errors.Is(res.Err, context.DeadlineExceeded) || !strings.Contains(res.Err.Error(), reasonErrImagePull) {
		t.Fatalf("%s: %v", res.Class(), res.Err)
	}
	if n := podCount(t, k); n != 0 {
		t.Fatalf("%d pods left behind", n)
	}
}

func TestLaunchRefusesBadTemplates(t *testing.T) {
	k := newFake(running)
	r := newRT(t, k, nil)
	for name, mod := range map[string]func(*runtime.NodeSpec){
		"upper-case node": func(n *runtime.NodeSpec) { n.Name = "GPU1" },
		"underscore node": func(n *runtime.NodeSpec) { n.Name = "gpu_1" },
		"network":         func(n *runtime.NodeSpec) { n.Template.Network = "slurm" },
		"dns none":        func(n *runtime.NodeSpec) { n.Template.DNS = []string{runtime.DNSNone} },
		"env contract":    func(n *runtime.NodeSpec) { n.Template.Env = map[string]string{runtime.EnvConfServer: "x"} },
		"munge mount": func(n *runtime.NodeSpec) {
			n.Template.Mounts = []runtime.Mount{{Source: "/k", Destination: runtime.MungeKeyPath}}
		},
		"no image":          func(n *runtime.NodeSpec) { n.Template.Image = "" },
		"bad group label":   func(n *runtime.NodeSpec) { n.Group = "gpu-" },
		"relative mount":    func(n *runtime.NodeSpec) { n.Template.Mounts = []runtime.Mount{{Source: "data", Destination: "/data"}} },
		"negative cpus":     func(n *runtime.NodeSpec) { n.Template.CPUs = -1 },
		"negative gpus":     func(n *runtime.NodeSpec) { n.Template.GPUs = -1 },
		"negative memory":   func(n *runtime.NodeSpec) { n.Template.MemoryMB = -1 },
		"dns not an ip":     func(n *runtime.NodeSpec) { n.Template.DNS = []string{"dns.example"} },
		"env node contract": func(n *runtime.NodeSpec) { n.Template.Env = map[string]string{runtime.EnvNode: "x"} },
	} {
		n := spec("gpu1")
		mod(&n)
		res := r.Launch(context.Background(), []runtime.NodeSpec{n})[0]
		if res.Class() != runtime.ClassConfig {
			t.Errorf("%s: %s: %v", name, res.Class(), res.Err)
		}
	}
	if n := k.creates.Load(); n != 0 {
		t.Fatalf("%d creates", n)
	}
}

// A pod of the same name that is not this cluster's is never touched.
func TestForeignPodIsNotTouched(t *testing.T) {
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName("c1", "gpu1"), Namespace: ns,
		Labels: map[string]string{runtime.LabelCluster: "other", runtime.LabelNode: "gpu1"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.9"}}
	k := newFake(running)
	if err := k.cs.Tracker().Add(foreign); err != nil {
		t.Fatal(err)
	}
	r := newRT(t, k, nil)
	res := r.Launch(context.Background(), []runtime.NodeSpec{spec("gpu1")})[0]
	if res.Class() != runtime.ClassConfig || !strings.Contains(res.Err.Error(), "not this cluster's") {
		t.Fatalf("%s: %v", res.Class(), res.Err)
	}
	if tr := r.Terminate(context.Background(), []string{"gpu1"})[0]; tr.Err != nil {
		t.Fatal(tr.Err)
	}
	if list, err := r.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("list %+v %v", list, err)
	}
	if p := getPod(t, k, "gpu1"); p.Labels[runtime.LabelCluster] != "other" {
		t.Fatalf("foreign pod changed: %+v", p.Labels)
	}
}

func TestTerminateAndList(t *testing.T) {
	k := newFake(running)
	r := newRT(t, k, nil)
	for _, res := range r.Launch(context.Background(), []runtime.NodeSpec{spec("gpu1"), spec("gpu2")}) {
		if res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	list, err := r.List(context.Background())
	if err != nil || len(list) != 2 {
		t.Fatalf("%+v %v", list, err)
	}
	for _, in := range list {
		if in.Addr == "" || in.State != runtime.StateRunning || in.Group != "gpu" {
			t.Fatalf("%+v", in)
		}
	}
	var deletes []metav1.DeleteOptions
	k.cs.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		deletes = append(deletes, a.(k8stesting.DeleteActionImpl).DeleteOptions)
		return false, nil, nil
	})
	for _, res := range r.Terminate(context.Background(), []string{"gpu1", "gpu1", "absent"}) {
		if res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if len(deletes) != 1 || *deletes[0].GracePeriodSeconds != int64(DefaultStopTimeout/time.Second) || deletes[0].Preconditions.UID == nil {
		t.Fatalf("deletes %+v", deletes)
	}
	list, err = r.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Name != "gpu2" {
		t.Fatalf("%+v %v", list, err)
	}
}

func TestListAndTerminateErrorsAreClassed(t *testing.T) {
	k := newFake(running)
	k.cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("apiserver restarting")
	})
	r := newRT(t, k, nil)
	if _, err := r.List(context.Background()); runtime.ClassOf(err) != runtime.ClassTransient || !strings.Contains(err.Error(), "namespace "+ns) {
		t.Fatalf("%s: %v", runtime.ClassOf(err), err)
	}
	if res := r.Terminate(context.Background(), []string{"gpu1"})[0]; res.Class() != runtime.ClassTransient {
		t.Fatalf("%s: %v", res.Class(), res.Err)
	}
}

func TestLogs(t *testing.T) {
	k := newFake(running)
	r := newRT(t, k, nil)
	if _, err := r.Logs(context.Background(), "gpu1", 10); !errors.Is(err, runtime.ErrNoInstance) {
		t.Fatalf("no pod: %v", err)
	}
	if res := r.Launch(context.Background(), []runtime.NodeSpec{spec("gpu1")})[0]; res.Err != nil {
		t.Fatal(res.Err)
	}
	l, err := r.Logs(context.Background(), "gpu1", 4)
	// The fake API answers every log read with "fake logs".
	if err != nil || string(l.Tail) != "logs" || !l.Truncated || l.Image != "slurm-node:1" || l.Host != "worker1" {
		t.Fatalf("%+v %v", l, err)
	}
}

func TestCheck(t *testing.T) {
	k := newFake(running)
	r := newRT(t, k, nil)
	if err := r.Check(context.Background()); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "slurm/munge") {
		t.Fatalf("no secret: %v", err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "munge", Namespace: ns}, Data: map[string][]byte{"munge.key": []byte("k")}}
	if err := k.cs.Tracker().Add(sec); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewNamesTheKubeconfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(bad, []byte("this: [is not a kubeconfig"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, filepath.Join(dir, "missing")} {
		_, err := New(context.Background(), Options{Cluster: "c1", Namespace: ns, ConfServer: "h", MungeSecret: "m", Kubeconfig: f})
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("%s: %v", f, err)
		}
	}
	for name, o := range map[string]Options{
		"no cluster":   {Namespace: ns, ConfServer: "h", MungeSecret: "m"},
		"no namespace": {Cluster: "c1", ConfServer: "h", MungeSecret: "m"},
		"no secret":    {Cluster: "c1", Namespace: ns, ConfServer: "h"},
		"pull policy":  {Cluster: "c1", Namespace: ns, ConfServer: "h", MungeSecret: "m", ImagePullPolicy: "Sometimes"},
	} {
		o.api = coreAPI{fake.NewSimpleClientset().CoreV1()}
		if _, err := New(context.Background(), o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestClassify(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	for _, tc := range []struct {
		err   error
		class runtime.Class
	}{
		{nil, ""},
		{context.DeadlineExceeded, runtime.ClassTransient},
		{errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), runtime.ClassTransient},
		{apierrors.NewUnauthorized("token expired"), runtime.ClassConfig},
		{apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "slurm"), runtime.ClassConfig},
		{apierrors.NewBadRequest("bad"), runtime.ClassConfig},
		{apierrors.NewConflict(gr, "x", errors.New("changed")), runtime.ClassTransient},
		{apierrors.NewAlreadyExists(gr, "x"), runtime.ClassTransient},
		{apierrors.NewForbidden(gr, "x", errors.New("exceeded quota: q")), runtime.ClassCapacity},
		{apierrors.NewForbidden(gr, "x", errors.New("no RBAC")), runtime.ClassConfig},
		{runtime.Errorf(runtime.ClassCapacity, "x"), runtime.ClassCapacity},
	} {
		if got := classify(tc.err); got != tc.class {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.class)
		}
	}
}

// A fresh launch waits from the pod its create returned: one list (is
// there a pod already?), the create and a watch from the created pod's
// version; no second list, so a resume of 32 nodes stays within the
// client's burst.
func TestLaunchWaitsFromTheCreatedPod(t *testing.T) {
	k := newFake(nil) // pending until the "kubelet" below
	r := newRT(t, k, nil)
	done := make(chan struct{})
	go func() { // the kubelet: running, once the launch watches (again until it returns: a watch may start after an update)
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if p, err := k.cs.CoreV1().Pods(ns).Get(context.Background(), PodName("c1", "gpu1"), metav1.GetOptions{}); err == nil {
				running(p)
				k.cs.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := r.Launch(ctx, []runtime.NodeSpec{spec("gpu1")})[0]
	close(done)
	if res.Err != nil || res.Instance.State != runtime.StateRunning {
		t.Fatalf("%+v", res)
	}
	var verbs []string
	for _, a := range k.cs.Actions() {
		if a.GetResource().Resource == "pods" && a.GetVerb() != "get" && a.GetVerb() != "update" {
			verbs = append(verbs, a.GetVerb())
		}
	}
	if strings.Join(verbs, ",") != "list,create,watch" {
		t.Fatalf("API calls of the launch: %v, want list, create, watch", verbs)
	}
}

// A refusal of the credentials names their source, so a node's reason
// points at the kubeconfig to fix; it stays a Config failure. A quota's
// refusal (also Forbidden) is not blamed on the credentials.
func TestRefusedCredentialsNameTheirSource(t *testing.T) {
	for name, c := range map[string]struct {
		err   error
		want  string
		class runtime.Class
	}{
		"unauthorized": {apierrors.NewUnauthorized("Unauthorized"), "refused the credentials of kubeconfig /etc/kc", runtime.ClassConfig},
		"rbac":         {apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("cannot create pods")), "the account of kubeconfig /etc/kc lacks this permission", runtime.ClassConfig},
		"quota":        {apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New("exceeded quota: compute")), "", runtime.ClassCapacity},
	} {
		k := newFake(running)
		k.cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) { return true, nil, c.err })
		r := newRT(t, k, func(o *Options) { o.api = credited{api: o.api, src: "kubeconfig /etc/kc"} })
		res := r.Launch(context.Background(), []runtime.NodeSpec{spec("gpu1")})[0]
		if res.Class() != c.class || (c.want != "") != strings.Contains(fmt.Sprint(res.Err), "kubeconfig /etc/kc") ||
			!strings.Contains(fmt.Sprint(res.Err), c.want) {
			t.Errorf("%s: %s %v, want class %s naming %q", name, res.Class(), res.Err, c.class, c.want)
		}
	}
}
