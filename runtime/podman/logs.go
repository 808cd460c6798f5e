package podman

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/containers/podman/v4/pkg/bindings/containers"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// logLines is how many lines of a container's log are asked for before
// the tail is cut to the bytes wanted: enough for any tail kept, bounded
// for a container that wrote millions of lines.
const logLines = 4000

// Logs implements runtime.Runtime: the last max bytes of the output of
// node's container (the running one, else the newest), with timestamps,
// stdout and stderr in the order Podman logged them. No container on any
// host: an error wrapping runtime.ErrNoInstance. Blocks for a list per
// host, one inspect and one log read; changes nothing.
func (p *Podman) Logs(ctx context.Context, node string, max int) (runtime.Log, error) {
	if max <= 0 {
		return runtime.Log{}, runtime.Errorf(runtime.ClassConfig, "node %s: logs: max %d: must be positive", node, max)
	}
	found, _, err := p.find(ctx, node)
	if err != nil {
		return runtime.Log{}, runtime.Errorf(classify(err), "node %s: logs: find: %w", node, err)
	}
	if len(found) == 0 {
		return runtime.Log{}, fmt.Errorf("node %s: logs: %w", node, runtime.ErrNoInstance)
	}
	c := slices.MaxFunc(found, func(a, b ctr) int {
		if ra, rb := a.state == runtime.StateRunning, b.state == runtime.StateRunning; ra != rb {
			if ra {
				return 1
			}
			return -1
		}
		return a.created.Compare(b.created)
	})
	l, err := p.tail(ctx, p.hosts[c.host], c.id, max)
	if isNotFound(err) {
		return runtime.Log{}, fmt.Errorf("node %s: logs: %w (removed meanwhile)", node, runtime.ErrNoInstance)
	}
	if err != nil {
		return runtime.Log{}, runtime.Errorf(classify(err), "node %s on host %s: logs: %w", node, p.hosts[c.host].Name, err)
	}
	return l, nil
}

// tail reads the last max bytes of container id's log on h, and its image.
// Blocks for an inspect and one log read, each bounded by the per-call
// timeout.
func (p *Podman) tail(ctx context.Context, h *host, id string, max int) (runtime.Log, error) {
	l := runtime.Log{ID: id, Host: h.Name}
	d, err := p.inspect(ctx, h, id)
	if err != nil {
		return l, fmt.Errorf("inspect: %w", err)
	}
	l.Image = d.ImageName
	err = p.do(ctx, h, p.timeout, func(cctx context.Context) error {
		out, errc := make(chan string), make(chan string)
		done := make(chan error, 1)
		go func() {
			done <- containers.Logs(cctx, id, new(containers.LogOptions).WithStdout(true).WithStderr(true).
				WithTimestamps(true).WithTail(strconv.Itoa(logLines)), out, errc)
		}()
		// Frames come one at a time on either channel (the binding sends each
		// before reading the next), so appending as they come keeps the order.
		buf := runtime.TailBuffer{Max: max}
		for {
			var s string
			select {
			case s = <-out:
			case s = <-errc:
			case err := <-done:
				if err != nil {
					return fmt.Errorf("read log: %w", err)
				}
				l.Tail, l.Truncated = buf.Tail()
				return nil
			}
			buf.Write([]byte(s))
		}
	})
	return l, err
}

// keepTail reads the tail of the failed container id on h before it is
// removed (runtime.Result.Log), bounded like a cleanup (it outlives the
// caller's cancellation). Nil when it cannot be read: that is logged, and
// the launch fails with its own error all the same.
func (p *Podman) keepTail(ctx context.Context, h *host, node, id string) *runtime.Log {
	cctx, cancel := p.cleanupCtx(ctx)
	defer cancel()
	l, err := p.tail(cctx, h, id, runtime.MaxLogTail)
	if err != nil {
		p.log.Warn("could not read the failed node container's log before removing it", "node", node, "host", h.Name, "id", id, "error", err)
		return nil
	}
	return &l
}
