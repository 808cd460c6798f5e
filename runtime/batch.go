package runtime

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// What the runtimes share to implement Runtime: the per-node loops of
// Launch and Terminate, and the log of a failed launch's instance carried
// from where it was read up to Launch's Result.

// ForEach calls fn(i) for each i in [0, n), at most limit (< 1: 1) at once,
// and returns when every call has returned. A single call (n == 1) runs on
// the caller's goroutine. Blocks.
func ForEach(n, limit int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// LaunchEach is a runtime's Launch loop: it calls launch for every node,
// at most limit at once (ForEach), and returns one Result per node in
// input order. A failure is logged on log ("launch failed" with node,
// group, class and error) and its Result carries the log the error
// carries (WithLog). Blocks until every call has returned; as idempotent
// as launch.
func LaunchEach(ctx context.Context, log *slog.Logger, limit int, nodes []NodeSpec,
	launch func(ctx context.Context, n NodeSpec) (Instance, error)) []Result {
	res := make([]Result, len(nodes))
	ForEach(len(nodes), limit, func(i int) {
		n := nodes[i]
		inst, err := launch(ctx, n)
		res[i] = Result{Name: n.Name, Instance: inst, Err: err, Log: LogOf(err)}
		if err != nil {
			log.Warn("launch failed", "node", n.Name, "group", n.Group, "class", ClassOf(err), "error", err)
		}
	})
	return res
}

// TerminateEach is a runtime's Terminate loop: it calls terminate for
// every name, at most limit at once (ForEach), and returns one Result per
// name in input order. A failure is logged on log ("terminate failed" with
// node, class and error). Blocks until every call has returned; as
// idempotent as terminate.
func TerminateEach(ctx context.Context, log *slog.Logger, limit int, names []string,
	terminate func(ctx context.Context, name string) error) []Result {
	res := make([]Result, len(names))
	ForEach(len(names), limit, func(i int) {
		err := terminate(ctx, names[i])
		res[i] = Result{Name: names[i], Err: err}
		if err != nil {
			log.Warn("terminate failed", "node", names[i], "class", ClassOf(err), "error", err)
		}
	})
	return res
}

// withLog carries the log of an instance that a failed launch removed;
// its message is err's.
type withLog struct {
	err error
	log Log
}

func (e *withLog) Error() string { return e.err.Error() }
func (e *withLog) Unwrap() error { return e.err }

// WithLog returns err carrying l, the output of the instance a failed
// launch removed, for LogOf (LaunchEach puts it in Result.Log). A nil l
// or err returns err as it is. The message, class and chain stay err's.
func WithLog(err error, l *Log) error {
	if l == nil || err == nil {
		return err
	}
	return &withLog{err: err, log: *l}
}

// LogOf returns the log err carries (WithLog), nil when none.
func LogOf(err error) *Log {
	var w *withLog
	if errors.As(err, &w) {
		l := w.log
		return &l
	}
	return nil
}

// TailBuffer keeps the last Max bytes of what is written to it (an
// instance's output read for Log.Tail), holding at most about twice Max
// between writes however much is written. The zero value with Max set is
// ready; not safe for concurrent use.
type TailBuffer struct {
	Max int
	buf []byte
	cut bool
}

// Write appends p, dropping what lies before the last Max bytes once more
// than twice Max is held. It never fails.
func (t *TailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.Max {
		t.buf, t.cut = append([]byte(nil), t.buf[len(t.buf)-t.Max:]...), true
	}
	return len(p), nil
}

// Tail returns the last Max bytes written and whether anything was
// written before them (Log.Tail, Log.Truncated).
func (t *TailBuffer) Tail() ([]byte, bool) {
	if len(t.buf) > t.Max {
		return t.buf[len(t.buf)-t.Max:], true
	}
	return t.buf, t.cut
}
