package kubernetes

import (
	"context"
	"fmt"
	"io"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// api is the part of the Kubernetes API the runtime uses: the pods of one
// namespace, their logs, one Secret. restAPI speaks it to a server; the
// unit tests put client-go's fake clientset behind it.
type api interface {
	ListPods(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error)
	WatchPods(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	CreatePod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error)
	DeletePod(ctx context.Context, name string, opts metav1.DeleteOptions) error
	PodLogs(ctx context.Context, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
	GetSecret(ctx context.Context, name string) (*corev1.Secret, error)
}

// restAPI is api over a rest.RESTClient that knows the core/v1 types only.
// It does not use client-go's typed clientset on purpose: that registers
// every API group of Kubernetes in its scheme (k8s.io/client-go/kubernetes/
// scheme), which more than doubled every hook binary and its start-up;
// this needs k8s.io/api/core/v1 alone.
type restAPI struct {
	rc *rest.RESTClient
	ns string
	pc k8sruntime.ParameterCodec
}

// coreScheme knows core/v1 and the meta/v1 options and status; built on
// first use, so a process that never talks to Kubernetes never builds it.
var coreScheme = sync.OnceValue(func() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(fmt.Sprintf("kubernetes: core/v1 scheme: %v", err)) // static registration: cannot fail
	}
	return s
})

// newRESTAPI returns the api of namespace ns over the server of c (which
// it copies). It does not connect.
func newRESTAPI(c *rest.Config, ns string) (*restAPI, error) {
	c = rest.CopyConfig(c)
	s := coreScheme()
	gv := corev1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/api"
	c.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &restAPI{rc: rc, ns: ns, pc: k8sruntime.NewParameterCodec(s)}, nil
}

func (a *restAPI) ListPods(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error) {
	var l corev1.PodList
	err := a.rc.Get().Namespace(a.ns).Resource("pods").VersionedParams(&opts, a.pc).Do(ctx).Into(&l)
	return &l, err
}

func (a *restAPI) WatchPods(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return a.rc.Get().Namespace(a.ns).Resource("pods").VersionedParams(&opts, a.pc).Watch(ctx)
}

func (a *restAPI) CreatePod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	var out corev1.Pod
	err := a.rc.Post().Namespace(a.ns).Resource("pods").Body(pod).Do(ctx).Into(&out)
	return &out, err
}

func (a *restAPI) DeletePod(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return a.rc.Delete().Namespace(a.ns).Resource("pods").Name(name).Body(&opts).Do(ctx).Error()
}

func (a *restAPI) PodLogs(ctx context.Context, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return a.rc.Get().Namespace(a.ns).Resource("pods").Name(name).SubResource("log").VersionedParams(opts, a.pc).Stream(ctx)
}

func (a *restAPI) GetSecret(ctx context.Context, name string) (*corev1.Secret, error) {
	var out corev1.Secret
	err := a.rc.Get().Namespace(a.ns).Resource("secrets").Name(name).Do(ctx).Into(&out)
	return &out, err
}

// credited is api with every refusal of the credentials named: an
// Unauthorized or Forbidden (not a quota's) error says whose credentials
// (src: the kubeconfig file, or the in-cluster account) the API server
// refused, so the node's reason points the admin at the file to fix. The
// errors stay API statuses (classify and apierrors see through).
type credited struct {
	api
	src string
}

func (c credited) explain(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w (the API server refused the credentials of %s)", err, c.src)
	case apierrors.IsForbidden(err) && !isQuota(err):
		return fmt.Errorf("%w (the account of %s lacks this permission: see packaging/kubernetes/rbac.yaml)", err, c.src)
	}
	return err
}

func (c credited) ListPods(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error) {
	l, err := c.api.ListPods(ctx, opts)
	return l, c.explain(err)
}

func (c credited) WatchPods(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := c.api.WatchPods(ctx, opts)
	return w, c.explain(err)
}

func (c credited) CreatePod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	p, err := c.api.CreatePod(ctx, pod)
	return p, c.explain(err)
}

func (c credited) DeletePod(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return c.explain(c.api.DeletePod(ctx, name, opts))
}

func (c credited) PodLogs(ctx context.Context, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	r, err := c.api.PodLogs(ctx, name, opts)
	return r, c.explain(err)
}

func (c credited) GetSecret(ctx context.Context, name string) (*corev1.Secret, error) {
	s, err := c.api.GetSecret(ctx, name)
	return s, c.explain(err)
}
