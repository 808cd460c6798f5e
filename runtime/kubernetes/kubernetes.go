// Package kubernetes implements runtime.Runtime over the Kubernetes API
// (k8s.io/client-go, the core/v1 pods of one namespace). One Slurm node is
// one Pod named <cluster>-<node> whose hostname is the node name, labelled
// with runtime.LabelCluster/LabelGroup/LabelNode; Kubernetes, not this
// package, decides which machine runs it. Every pod gets the node contract
// of package runtime: EnvNode, EnvConfServer (Options.ConfServer) and the
// munge key from a Secret (Options.MungeSecret) mounted read-only at
// runtime.MungeKeyPath. Its restartPolicy is Never: a slurmd that dies is
// a dead node for the reconciler, never a silent restart under a job.
//
// A node's address (NodeAddr) is its pod IP, so slurmctld must reach pod
// IPs: it runs in the cluster, or outside with pod IPs routed to it (see
// the operations guide).
//
// Failure classes: a pod the scheduler cannot place (insufficient CPU,
// memory, GPUs: Unschedulable) and a create refused by a ResourceQuota are
// ClassCapacity; an image that cannot be pulled, a container that exits at
// once or a pod the API rejects are ClassConfig (image and container
// problems after Options.ImagePullGrace); API errors, timeouts and a pod
// deleted under a launch are ClassTransient. Failures are never
// host-scoped (runtime.Error.Host is empty): placement is Kubernetes's.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slurm-elastic/slurm-elastic/internal/version"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Defaults for Options.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultStopTimeout    = 10 * time.Second
	DefaultImagePullGrace = 30 * time.Second
	DefaultGPUResource    = "nvidia.com/gpu"
	DefaultMungeSecretKey = "munge.key"
	// maxParallel bounds the nodes one Launch/Terminate batch works on at once.
	maxParallel = 16
	// recheck is how often a wait looks at the last pod status again
	// without an event (the image pull grace runs out without one).
	recheck = time.Second
)

// Placement is where and with what a group's pods run: the Kubernetes
// side of a group's template (mirrors conf.GroupKubernetes).
type Placement struct {
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
	Affinity     *corev1.Affinity
	Volumes      []Volume
}

// Volume is one volume the admin listed for a group's pods, mounted at
// Destination: exactly one of HostPath, PVC or NFSServer (with NFSPath).
type Volume struct {
	Name        string // [a-z0-9-], unique in the group
	Destination string
	ReadOnly    bool
	HostPath    string
	PVC         string
	NFSServer   string
	NFSPath     string
}

// Options configures a Kubernetes runtime.
type Options struct {
	// Cluster is the ownership label value; required.
	Cluster string
	// Namespace the pods live in; required.
	Namespace string
	// Kubeconfig is the kubeconfig file; "": the in-cluster service
	// account (the process runs in a pod).
	Kubeconfig string
	// Context in the kubeconfig; "": its current context.
	Context string
	// ConfServer is slurmctld as pods reach it, host[:port]; every pod gets
	// it as runtime.EnvConfServer. Required.
	ConfServer string
	// MungeSecret is the Secret in Namespace holding the cluster's munge
	// key under MungeSecretKey (default DefaultMungeSecretKey); it is
	// mounted read-only at runtime.MungeKeyPath. Required.
	MungeSecret    string
	MungeSecretKey string
	// GPUResource is the extended resource a template's GPUs are asked as
	// (the device plugin gives each pod distinct devices). Default
	// DefaultGPUResource.
	GPUResource string
	// ImagePullPolicy: Always, IfNotPresent, Never or "" (Kubernetes's
	// default for the image's tag).
	ImagePullPolicy string
	// ImagePullGrace is how long a pod may fail to pull its image (or to
	// create its container) before the launch fails as ClassConfig.
	// Default DefaultImagePullGrace; negative: none.
	ImagePullGrace time.Duration
	// Timeout bounds one API call (not a wait). Default DefaultTimeout.
	Timeout time.Duration
	// StopTimeout is the pod's termination grace period. Default
	// DefaultStopTimeout.
	StopTimeout time.Duration
	// Groups holds each group's placement, by group name; a group not
	// listed has none.
	Groups map[string]Placement
	// Logger; default slog.Default().
	Logger *slog.Logger

	// api replaces the server (unit tests); nil: one built from Kubeconfig.
	api api
}

// Kubernetes is a runtime.Runtime over one namespace of a Kubernetes
// cluster. Safe for concurrent use.
type Kubernetes struct {
	o        Options
	contract contract
	pods     api
	log      *slog.Logger

	mu    sync.Mutex
	locks map[string]chan struct{} // per node, serialises work on one node
}

var _ runtime.Runtime = (*Kubernetes)(nil)

// RESTConfig returns the client config of a kubeconfig file (context kctx,
// "" = its current one), or of the in-cluster service account when
// kubeconfig is "". It reads the file but opens no connection. An error
// names the file.
func RESTConfig(kubeconfig, kctx string) (*rest.Config, error) {
	if kubeconfig == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: no kubeconfig given and no in-cluster service account: %w", err)
		}
		return c, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: kctx}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: kubeconfig %s: %w", kubeconfig, err)
	}
	return c, nil
}

// New validates o and returns a runtime. Without o.Client it reads the
// kubeconfig (or the in-cluster account) but connects to nothing, so it
// blocks only on that file. ctx is unused.
func New(ctx context.Context, o Options) (*Kubernetes, error) {
	_ = ctx
	switch {
	case o.Cluster == "":
		return nil, errors.New("kubernetes: cluster name is required")
	case o.Namespace == "":
		return nil, errors.New("kubernetes: namespace is required")
	case o.ConfServer == "":
		return nil, errors.New("kubernetes: the controller address (conf server) is required")
	case o.MungeSecret == "":
		return nil, errors.New("kubernetes: the munge key Secret is required")
	}
	switch o.ImagePullPolicy {
	case "", string(corev1.PullAlways), string(corev1.PullIfNotPresent), string(corev1.PullNever):
	default:
		return nil, fmt.Errorf("kubernetes: image pull policy %q: want Always, IfNotPresent or Never", o.ImagePullPolicy)
	}
	if o.MungeSecretKey == "" {
		o.MungeSecretKey = DefaultMungeSecretKey
	}
	if o.GPUResource == "" {
		o.GPUResource = DefaultGPUResource
	}
	if o.ImagePullGrace == 0 {
		o.ImagePullGrace = DefaultImagePullGrace
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.api == nil {
		c, err := RESTConfig(o.Kubeconfig, o.Context)
		if err != nil {
			return nil, err
		}
		c.UserAgent = "slurm-elastic/" + version.Version
		// Client-side throttling: a resume of 32 nodes makes ~100 calls.
		c.QPS, c.Burst = 50, 100
		a, err := newRESTAPI(c, o.Namespace)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: kubeconfig %s: %w", o.Kubeconfig, err)
		}
		src := "kubeconfig " + o.Kubeconfig
		if o.Kubeconfig == "" {
			src = "the in-cluster service account"
		}
		o.api = credited{api: a, src: src}
	}
	k := &Kubernetes{
		o:        o,
		contract: contract{confServer: o.ConfServer, secret: o.MungeSecret, secretKey: o.MungeSecretKey},
		pods:     o.api,
		log:      o.Logger.With("runtime", "kubernetes", "cluster", o.Cluster, "namespace", o.Namespace),
		locks:    map[string]chan struct{}{},
	}
	return k, nil
}

// Launch implements runtime.Runtime: it makes each node's pod run, in
// parallel (at most 16 at once), and returns one Result per node in input
// order. A running pod of the node is returned as is; a pending one is
// waited for; one that ended or is being deleted is replaced. A failed
// launch deletes its pod. Blocks until every pod runs with an IP or
// failed; honours ctx. Idempotent.
func (k *Kubernetes) Launch(ctx context.Context, nodes []runtime.NodeSpec) []runtime.Result {
	return runtime.LaunchEach(ctx, k.log, maxParallel, nodes, k.launchOne)
}

// Terminate implements runtime.Runtime: it deletes each named node's pod
// (termination grace Options.StopTimeout) and waits until it is gone, in
// parallel. Absent = success. Blocks; honours ctx. Idempotent.
func (k *Kubernetes) Terminate(ctx context.Context, names []string) []runtime.Result {
	return runtime.TerminateEach(ctx, k.log, maxParallel, names, k.terminateOne)
}

// List implements runtime.Runtime: every pod labelled with this cluster in
// the namespace, in any state (pending: created; ended, evicted or being
// deleted: exited), with its pod IP. Blocks for one API call.
func (k *Kubernetes) List(ctx context.Context) ([]runtime.Instance, error) {
	cctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	defer cancel()
	l, err := k.pods.ListPods(cctx, metav1.ListOptions{LabelSelector: selector(k.o.Cluster, "")})
	if err != nil {
		return nil, runtime.Errorf(classify(err), "list pods in namespace %s: %w", k.o.Namespace, err)
	}
	out := make([]runtime.Instance, 0, len(l.Items))
	for i := range l.Items {
		if p := &l.Items[i]; owned(p, k.o.Cluster, "") {
			out = append(out, instance(p))
		}
	}
	return out, nil
}

// Check reaches the API server as the runtime would: it lists this
// cluster's pods and reads the munge key Secret. Blocks for two API calls;
// changes nothing. For `conf check --connect`.
func (k *Kubernetes) Check(ctx context.Context) error {
	if _, err := k.List(ctx); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	defer cancel()
	s, err := k.pods.GetSecret(cctx, k.o.MungeSecret)
	if err != nil {
		return runtime.Errorf(classify(err), "munge key secret %s/%s: %w", k.o.Namespace, k.o.MungeSecret, err)
	}
	if len(s.Data[k.o.MungeSecretKey]) == 0 {
		return runtime.Errorf(runtime.ClassConfig, "munge key secret %s/%s has no key %q", k.o.Namespace, k.o.MungeSecret, k.o.MungeSecretKey)
	}
	return nil
}

// lockNode serialises work on one node within this process.
func (k *Kubernetes) lockNode(ctx context.Context, node string) (func(), error) {
	k.mu.Lock()
	ch, ok := k.locks[node]
	if !ok {
		ch = make(chan struct{}, 1)
		k.locks[node] = ch
	}
	k.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// find returns node's pod, nil when it has none. Blocks for one API call.
func (k *Kubernetes) find(ctx context.Context, node string) (*corev1.Pod, error) {
	cctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	defer cancel()
	l, err := k.pods.ListPods(cctx, metav1.ListOptions{LabelSelector: selector(k.o.Cluster, node)})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	return k.pick(l.Items, node), nil
}

// pick returns node's pod in items, nil if none.
func (k *Kubernetes) pick(items []corev1.Pod, node string) *corev1.Pod {
	for i := range items {
		if owned(&items[i], k.o.Cluster, node) {
			return &items[i]
		}
	}
	return nil
}

// launchOne makes node n's pod run; see Launch.
func (k *Kubernetes) launchOne(ctx context.Context, n runtime.NodeSpec) (runtime.Instance, error) {
	if err := checkSpec(k.o.Cluster, n, k.o.Groups); err != nil {
		return runtime.Instance{}, runtime.Errorf(runtime.ClassConfig, "node %s: invalid template: %w", n.Name, err)
	}
	unlock, err := k.lockNode(ctx, n.Name)
	if err != nil {
		return runtime.Instance{}, runtime.Errorf(runtime.ClassTransient, "node %s: wait for other operation on node: %w", n.Name, err)
	}
	defer unlock()
	start := time.Now()
	name := PodName(k.o.Cluster, n.Name)

	pod, err := k.find(ctx, n.Name)
	if err != nil {
		return runtime.Instance{}, runtime.Errorf(classify(err), "node %s: find pod: %w", n.Name, err)
	}
	if pod != nil {
		switch st := stateOf(pod); {
		case st == runtime.StateRunning && pod.Status.PodIP != "":
			inst := instance(pod)
			k.log.Info("node already running; not launching another", "node", n.Name, "pod", name, "k8s_node", inst.Host, "addr", inst.Addr)
			return inst, nil
		case st == runtime.StateCreated || st == runtime.StateRunning:
			// Pending: a launch under way (another process's, or one whose
			// hook was killed). Wait for it as for one's own.
			k.log.Info("node pod is starting already; waiting for it", "node", n.Name, "pod", name, "status", describe(pod))
			return k.await(ctx, n, start, nil)
		default:
			k.log.Info("replacing node pod that is not running", "node", n.Name, "pod", name, "status", describe(pod))
			if err := k.remove(ctx, n.Name, pod, k.o.StopTimeout); err != nil {
				return runtime.Instance{}, err
			}
		}
	}

	cctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	created, err := k.pods.CreatePod(cctx, buildPod(k.o.Cluster, k.o.Namespace, k.contract, &k.o, n))
	cancel()
	if err != nil {
		if apierrors.IsAlreadyExists(err) {
			if p, ferr := k.find(ctx, n.Name); ferr == nil && p == nil {
				return runtime.Instance{}, runtime.Errorf(runtime.ClassConfig,
					"node %s: pod %s/%s exists and is not this cluster's (no %s=%s label): not touching it; remove or rename it",
					n.Name, k.o.Namespace, name, runtime.LabelCluster, k.o.Cluster)
			}
		}
		return runtime.Instance{}, runtime.Errorf(classify(err), "node %s: create pod %s/%s: %w", n.Name, k.o.Namespace, name, err)
	}
	return k.await(ctx, n, start, created)
}

// await waits until node n's pod runs with an IP (success) or judge finds
// it failed; on failure (ctx ending too) it keeps the container's log when
// there is one and deletes the pod. created is the pod as its create
// returned it (the wait starts there), nil when not created by this call.
func (k *Kubernetes) await(ctx context.Context, n runtime.NodeSpec, start time.Time, created *corev1.Pod) (runtime.Instance, error) {
	name := PodName(k.o.Cluster, n.Name)
	last, err := k.watch(ctx, n.Name, created, func(p *corev1.Pod) (bool, error) { return k.judge(n.Name, p, start) })
	if err == nil {
		inst := instance(last)
		k.log.Info("node launched", "node", n.Name, "group", n.Group, "pod", name, "k8s_node", inst.Host, "addr", inst.Addr,
			"took", time.Since(start).Round(time.Millisecond))
		return inst, nil
	}
	var re *runtime.Error
	if !errors.As(err, &re) {
		// The wait itself failed: ctx ended or the API failed.
		err = runtime.Errorf(classify(err), "node %s: pod %s/%s did not start (%s): %w", n.Name, k.o.Namespace, name, describe(last), err)
	}
	var lg *runtime.Log
	if last != nil {
		if cs := containerStatus(last); cs != nil && (cs.State.Terminated != nil || cs.State.Running != nil) {
			lg = k.keepTail(ctx, n.Name, last)
		}
		// The removal outlives the caller's cancellation (a leak is worse
		// than a late return) but is bounded.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.o.Timeout+2*time.Second)
		rerr := k.remove(cctx, n.Name, last, time.Second)
		cancel()
		if rerr != nil {
			k.log.Error("could not delete failed node pod", "node", n.Name, "pod", name, "error", rerr)
		} else {
			k.log.Info("deleted failed node pod", "node", n.Name, "pod", name)
		}
	}
	return runtime.Instance{}, runtime.WithLog(err, lg)
}

// Waiting reasons of a container (the kubelet's; k8s.io/api has no
// constants for them).
const (
	reasonErrImagePull         = "ErrImagePull"
	reasonImagePullBackOff     = "ImagePullBackOff"
	reasonErrImageNeverPull    = "ErrImageNeverPull"
	reasonInvalidImageName     = "InvalidImageName"
	reasonCreateConfigError    = "CreateContainerConfigError"
	reasonCreateContainerError = "CreateContainerError"
	reasonRunContainerError    = "RunContainerError"
	reasonEvicted              = "Evicted"
)

// judge decides a starting pod's fate: done with nil when it runs with an
// IP; done with an error (class and message) when it failed; not done
// while it may still start. start is when the launch began (the image
// pull grace counts from it).
func (k *Kubernetes) judge(node string, pod *corev1.Pod, start time.Time) (bool, error) {
	name := PodName(k.o.Cluster, node)
	if pod == nil {
		return true, runtime.Errorf(runtime.ClassTransient, "node %s: pod %s/%s was deleted before it ran", node, k.o.Namespace, name)
	}
	if pod.DeletionTimestamp != nil {
		return true, runtime.Errorf(runtime.ClassTransient, "node %s: pod %s/%s is being deleted before it ran (%s)", node, k.o.Namespace, name, describe(pod))
	}
	cs := containerStatus(pod)
	switch pod.Status.Phase {
	case corev1.PodRunning:
		if cs != nil && cs.State.Terminated != nil {
			return true, k.exited(node, pod)
		}
		return pod.Status.PodIP != "", nil
	case corev1.PodFailed, corev1.PodSucceeded:
		return true, k.exited(node, pod)
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true, runtime.Errorf(runtime.ClassCapacity, "node %s: pod %s/%s: no Kubernetes node has room: %s", node, k.o.Namespace, name, c.Message)
		}
	}
	if cs != nil && cs.State.Waiting != nil {
		w := cs.State.Waiting
		switch w.Reason {
		case reasonInvalidImageName:
			return true, runtime.Errorf(runtime.ClassConfig, "node %s: pod %s/%s: image %q: %s: %s", node, k.o.Namespace, name, cs.Image, w.Reason, w.Message)
		case reasonErrImagePull, reasonImagePullBackOff, reasonErrImageNeverPull:
			if k.o.ImagePullGrace < 0 || time.Since(start) >= k.o.ImagePullGrace {
				return true, runtime.Errorf(runtime.ClassConfig, "node %s: pod %s/%s: image %q cannot be pulled (for %s): %s: %s",
					node, k.o.Namespace, name, pod.Spec.Containers[0].Image, time.Since(start).Round(time.Second), w.Reason, w.Message)
			}
		case reasonCreateConfigError, reasonCreateContainerError, reasonRunContainerError:
			if k.o.ImagePullGrace < 0 || time.Since(start) >= k.o.ImagePullGrace {
				return true, runtime.Errorf(runtime.ClassConfig, "node %s: pod %s/%s: container cannot be created (for %s): %s: %s",
					node, k.o.Namespace, name, time.Since(start).Round(time.Second), w.Reason, w.Message)
			}
		}
	}
	return false, nil
}

// exited is the error of a pod whose container ended during its launch:
// evicted or refused by its node for lack of room is ClassCapacity, any
// other end (exit, OOM kill) ClassConfig, as in Podman.
func (k *Kubernetes) exited(node string, pod *corev1.Pod) error {
	name := PodName(k.o.Cluster, node)
	r := pod.Status.Reason
	if r == reasonEvicted || (len(r) > 5 && r[:5] == "OutOf") { // kubelet admission: OutOfcpu, OutOfmemory, OutOfnvidia.com/gpu
		return runtime.Errorf(runtime.ClassCapacity, "node %s: pod %s/%s: refused by its Kubernetes node: %s", node, k.o.Namespace, name, describe(pod))
	}
	return runtime.Errorf(runtime.ClassConfig, "node %s: pod %s/%s: container exited at once: %s", node, k.o.Namespace, name, describe(pod))
}

// watch calls judge with node's pod (nil when it has none) as listed, then
// at every change and every recheck, until judge says done or ctx ends. It
// returns the last pod seen and judge's error (or ctx's, or the API's).
// Only this cluster's pods of node are listed and watched. from, when not
// nil, is the pod as just created: the first round starts from it and its
// resource version instead of a list (one API call less per launch; a
// resume of 32 nodes then stays within the client's burst).
func (k *Kubernetes) watch(ctx context.Context, node string, from *corev1.Pod, judge func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	var last *corev1.Pod
	sel := selector(k.o.Cluster, node)
	for {
		var rv string
		if from != nil {
			last, rv, from = from, from.ResourceVersion, nil
		} else {
			lctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
			l, err := k.pods.ListPods(lctx, metav1.ListOptions{LabelSelector: sel})
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return last, ctx.Err()
				}
				return last, fmt.Errorf("list pods: %w", err)
			}
			last, rv = k.pick(l.Items, node), l.ResourceVersion
		}
		if done, err := judge(last); done {
			return last, err
		}
		w, err := k.pods.WatchPods(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: rv,
			TimeoutSeconds: ptrTo(int64(60))})
		if err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, fmt.Errorf("watch pods: %w", err)
		}
		done, err := k.follow(ctx, w, node, &last, judge)
		if done {
			return last, err
		}
		// The watch ended (server timeout, expired version): list again,
		// after a pause so that a watch that ends at once does not spin.
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// follow reads w's events into *last and judges after each, and at every
// recheck, until done, ctx ends (done) or w ends (not done).
func (k *Kubernetes) follow(ctx context.Context, w watch.Interface, node string, last **corev1.Pod, judge func(*corev1.Pod) (bool, error)) (bool, error) {
	defer w.Stop()
	tick := time.NewTicker(recheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-tick.C:
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				return false, nil
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || !owned(p, k.o.Cluster, node) {
				continue
			}
			switch ev.Type {
			case watch.Deleted:
				*last = nil
			case watch.Added, watch.Modified:
				*last = p
			default:
				continue
			}
		}
		if done, err := judge(*last); done {
			return true, err
		}
	}
}

// remove deletes node's pod (this UID only, with the termination grace
// given) and waits until it is gone. Gone already is success.
func (k *Kubernetes) remove(ctx context.Context, node string, pod *corev1.Pod, grace time.Duration) error {
	name := pod.Name
	if pod.DeletionTimestamp == nil {
		secs := int64((grace + time.Second - 1) / time.Second)
		cctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
		err := k.pods.DeletePod(cctx, name, metav1.DeleteOptions{GracePeriodSeconds: &secs,
			Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		cancel()
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return runtime.Errorf(classify(err), "node %s: delete pod %s/%s: %w", node, k.o.Namespace, name, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, grace+k.o.Timeout)
	defer cancel()
	last, err := k.watch(wctx, node, nil, func(p *corev1.Pod) (bool, error) { return p == nil || p.UID != pod.UID, nil })
	if err != nil {
		return runtime.Errorf(runtime.ClassTransient, "node %s: pod %s/%s is not gone after deletion (%s): %w", node, k.o.Namespace, name, describe(last), err)
	}
	return nil
}

// terminateOne deletes node's pod and waits until it is gone.
func (k *Kubernetes) terminateOne(ctx context.Context, node string) error {
	if node == "" {
		return runtime.Errorf(runtime.ClassConfig, "terminate: empty node name")
	}
	unlock, err := k.lockNode(ctx, node)
	if err != nil {
		return runtime.Errorf(runtime.ClassTransient, "node %s: wait for other operation on node: %w", node, err)
	}
	defer unlock()
	pod, err := k.find(ctx, node)
	if err != nil {
		return runtime.Errorf(classify(err), "node %s: find pod: %w", node, err)
	}
	if pod == nil {
		k.log.Debug("node has no pod; nothing to terminate", "node", node)
		return nil
	}
	if err := k.remove(ctx, node, pod, k.o.StopTimeout); err != nil {
		return err
	}
	k.log.Info("node terminated", "node", node, "pod", pod.Name, "k8s_node", pod.Spec.NodeName)
	return nil
}
