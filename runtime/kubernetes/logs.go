package kubernetes

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// logLines is how many lines of a pod's log are asked for before the tail
// is cut to the bytes wanted.
const logLines = 4000

// Logs implements runtime.Runtime: the last max bytes of the output of
// node's pod (its slurmd container), with timestamps. No pod: an error
// wrapping runtime.ErrNoInstance. Blocks for a list and one log read;
// changes nothing.
func (k *Kubernetes) Logs(ctx context.Context, node string, max int) (runtime.Log, error) {
	if max <= 0 {
		return runtime.Log{}, runtime.Errorf(runtime.ClassConfig, "node %s: logs: max %d: must be positive", node, max)
	}
	pod, err := k.find(ctx, node)
	if err != nil {
		return runtime.Log{}, runtime.Errorf(classify(err), "node %s: logs: find pod: %w", node, err)
	}
	if pod == nil {
		return runtime.Log{}, fmt.Errorf("node %s: logs: %w", node, runtime.ErrNoInstance)
	}
	l, err := k.tail(ctx, pod, max)
	if err != nil {
		return runtime.Log{}, runtime.Errorf(classify(err), "node %s: logs of pod %s/%s: %w", node, k.o.Namespace, pod.Name, err)
	}
	return l, nil
}

// tail reads the last max bytes of pod's slurmd log. Blocks for one log
// read bounded by the per-call timeout.
func (k *Kubernetes) tail(ctx context.Context, pod *corev1.Pod, max int) (runtime.Log, error) {
	l := runtime.Log{ID: string(pod.UID), Host: pod.Spec.NodeName}
	if len(pod.Spec.Containers) > 0 {
		l.Image = pod.Spec.Containers[0].Image
	}
	cctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	defer cancel()
	rc, err := k.pods.PodLogs(cctx, pod.Name, &corev1.PodLogOptions{Container: ContainerName, Timestamps: true,
		TailLines: ptrTo(int64(logLines))})
	if err != nil {
		return l, fmt.Errorf("read log: %w", err)
	}
	defer rc.Close()
	buf := runtime.TailBuffer{Max: max}
	if _, err := io.Copy(&buf, rc); err != nil {
		return l, fmt.Errorf("read log: %w", err)
	}
	l.Tail, l.Truncated = buf.Tail()
	return l, nil
}

// keepTail reads the tail of the failed pod before it is deleted
// (runtime.Result.Log), bounded and outliving the caller's cancellation.
// Nil when it cannot be read: that is logged.
func (k *Kubernetes) keepTail(ctx context.Context, node string, pod *corev1.Pod) *runtime.Log {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.o.Timeout)
	defer cancel()
	l, err := k.tail(cctx, pod, runtime.MaxLogTail)
	if err != nil {
		k.log.Warn("could not read the failed node pod's log before deleting it", "node", node, "pod", pod.Name, "error", err)
		return nil
	}
	return &l
}
