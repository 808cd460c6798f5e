package slurm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
)

// FailTimeout bounds one Fail call. Fail runs detached from its caller's
// cancellation: a node set DOWN but never powered down is worse than a
// late exit. A caller's earlier deadline (a hook's budget) bounds it too.
const FailTimeout = 20 * time.Second

// updateRetry is the one retry policy for Slurm node updates: every error
// but an unknown node is worth another try.
var updateRetry = pool.Options{
	Concurrency: 8,
	Attempts:    3,
	Backoff:     200 * time.Millisecond,
	Retry:       func(err error) bool { return !errors.Is(err, ErrNodeNotFound) },
}

// UpdateEach applies u to nodes: one call for all (retried), and when that
// fails node by node (each retried), so one bad node never fails the
// others. It returns every node's error (nil = done). It blocks for the
// calls and is idempotent for a given u.
func UpdateEach(ctx context.Context, c Client, nodes []string, u NodeUpdate) map[string]error {
	out := make(map[string]error, len(nodes))
	if len(nodes) == 0 {
		return out
	}
	one := updateRetry
	one.Concurrency = 1
	if err := pool.Run(ctx, 1, one, func(ctx context.Context, _ int) error { return c.Update(ctx, nodes, u) })[0]; err == nil || len(nodes) == 1 {
		for _, n := range nodes {
			out[n] = err
		}
		return out
	}
	errs := pool.Run(ctx, len(nodes), updateRetry, func(ctx context.Context, i int) error {
		return c.Update(ctx, []string{nodes[i]}, u)
	})
	for i, n := range nodes {
		out[n] = errs[i]
	}
	return out
}

// Failed is what Fail did to one node.
type Failed struct {
	// Err: nil when the node was set DOWN (and, for a retryable code,
	// powered down).
	Err error
	// Down: the node was set DOWN with the reason.
	Down bool
	// PoweredDown: POWER_DOWN_FORCE was taken as well (retryable codes).
	PoweredDown bool
}

// Fail is the one way to fail nodes: it sets them DOWN with
// reason.Format(code, msg), which makes Slurm requeue their jobs at once,
// and, when the registry says the failure may pass (reason.Retryable),
// POWER_DOWN_FORCE: in Slurm 23.11+ that ends POWERING_UP at once and
// returns the node to the pool after SuspendTimeout (the reason kept as a
// record), so a later job tries again. Nodes failed with a code that is
// not retryable stay DOWN until an admin acts.
//
// Nodes are updated in one call each step, node by node when that call
// fails, with the one retry policy (UpdateEach). Fail is detached from
// ctx's cancellation (SIGTERM) but not from its deadline: it blocks until
// ctx's deadline or for FailTimeout, whichever comes first, so a hook
// whose budget ends before Slurm kills it never outlives it. It is
// idempotent.
func Fail(ctx context.Context, c Client, nodes []string, code reason.Code, msg string) map[string]Failed {
	end := time.Now().Add(FailTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
		end = dl
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), end)
	defer cancel()
	out := make(map[string]Failed, len(nodes))
	var down []string
	for n, err := range UpdateEach(ctx, c, nodes, NodeUpdate{State: SetDown, Reason: reason.Format(code, msg)}) {
		out[n] = Failed{Err: err, Down: err == nil}
		if err == nil {
			down = append(down, n)
		}
	}
	if !reason.Retryable(code) {
		return out
	}
	for n, err := range UpdateEach(ctx, c, down, NodeUpdate{State: SetPowerDownForce}) {
		f := out[n]
		f.PoweredDown = err == nil
		if err != nil {
			f.Err = fmt.Errorf("set DOWN, but power down: %w", err)
		}
		out[n] = f
	}
	return out
}
