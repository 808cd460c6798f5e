// Package pool runs per-node work with bounded concurrency, a start rate and
// retries of transient failures — the pacing every hook and the reconciler
// apply to runtime and Slurm calls.
package pool

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options bound a Run.
type Options struct {
	// Concurrency is the number of calls in flight at once; < 1 means 1.
	Concurrency int
	// Rate is the number of calls started per second, retries included;
	// 0 means unlimited.
	Rate float64
	// Attempts is how many times a call whose error Retry accepts is
	// tried in all; < 1 means 1.
	Attempts int
	// Backoff is the wait before the first retry; it doubles on each
	// further retry. 0 means 200ms.
	Backoff time.Duration
	// MaxBackoff caps the wait between tries; 0 means no cap.
	MaxBackoff time.Duration
	// Jitter spreads each wait over [wait/2, wait), so calls throttled
	// together do not come back together.
	Jitter bool
	// Retry reports whether err is worth another attempt. nil means never.
	Retry func(err error) bool
}

// Run calls fn(ctx, i) once for each i in [0, n) and returns the last error
// of each index (nil for success). It blocks until every call has returned.
// Calls not yet started when ctx ends are not started; their error is
// ctx's error. Run is safe for concurrent use with separate Options.
func Run(ctx context.Context, n int, o Options, fn func(ctx context.Context, i int) error) []error {
	errs := make([]error, n)
	if n == 0 {
		return errs
	}
	workers := max(o.Concurrency, 1)
	workers = min(workers, n)
	attempts := max(o.Attempts, 1)
	backoff := o.Backoff
	if backoff <= 0 {
		backoff = 200 * time.Millisecond
	}
	var lim *rate.Limiter
	if o.Rate > 0 {
		// Burst of one: calls start evenly spaced, never in a clump that a
		// rate-limited API would throttle.
		lim = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}

	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = attempt(ctx, lim, attempts, backoffs(backoff, o.MaxBackoff, o.Jitter), o.Retry, func(ctx context.Context) error { return fn(ctx, i) })
			}
		}()
	}
	sent := 0
	for ; sent < n; sent++ {
		// A select with both cases ready picks one at random: without this
		// check a cancelled ctx could still start a call.
		if ctx.Err() != nil {
			break
		}
		select {
		case next <- sent:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(next)
	wg.Wait()
	for i := sent; i < n; i++ {
		errs[i] = context.Cause(ctx)
	}
	return errs
}

// backoffs returns the wait before retry number a (1 = the first retry):
// first doubled a-1 times, capped at limit when limit > 0, and with jitter
// drawn from [wait/2, wait).
func backoffs(first, limit time.Duration, jitter bool) func(a int) time.Duration {
	return func(a int) time.Duration {
		d := first
		for i := 1; i < a && (limit <= 0 || d < limit); i++ {
			d *= 2
		}
		if limit > 0 && d > limit {
			d = limit
		}
		if jitter && d > 1 {
			d = d/2 + rand.N(d/2)
		}
		return d
	}
}

func attempt(ctx context.Context, lim *rate.Limiter, attempts int, wait func(a int) time.Duration, retry func(error) bool, call func(context.Context) error) error {
	var err error
	for a := 0; a < attempts; a++ {
		if a == 0 && ctx.Err() != nil {
			return context.Cause(ctx) // never start a call after the end
		}
		if a > 0 {
			t := time.NewTimer(wait(a))
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, context.Cause(ctx))
			case <-t.C:
			}
		}
		if lim != nil {
			if werr := lim.Wait(ctx); werr != nil {
				if err != nil {
					return errors.Join(err, werr)
				}
				return werr
			}
		}
		err = call(ctx)
		if err == nil || retry == nil || !retry(err) {
			return err
		}
	}
	return err
}
