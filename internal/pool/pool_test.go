package pool

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

var errTransient = errors.New("transient")

func TestRunBoundsConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int32
	errs := Run(context.Background(), 40, Options{Concurrency: 4}, func(ctx context.Context, i int) error {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		inFlight.Add(-1)
		if i%10 == 3 {
			return errors.New("boom")
		}
		return nil
	})
	if got := peak.Load(); got > 4 || got < 2 {
		t.Fatalf("peak concurrency %d, want 2..4", got)
	}
	for i, err := range errs {
		if (i%10 == 3) != (err != nil) {
			t.Fatalf("errs[%d] = %v", i, err)
		}
	}
}

func TestRunRetriesOnlyWhatRetryAccepts(t *testing.T) {
	var calls [3]atomic.Int32
	errs := Run(context.Background(), 3, Options{
		Concurrency: 3, Attempts: 3, Backoff: time.Millisecond,
		Retry: func(err error) bool { return errors.Is(err, errTransient) },
	}, func(ctx context.Context, i int) error {
		c := calls[i].Add(1)
		switch i {
		case 0: // succeeds on the second try
			if c == 1 {
				return errTransient
			}
			return nil
		case 1: // permanent: never retried
			return errors.New("permanent")
		default: // always transient: gives up after 3
			return errTransient
		}
	})
	if errs[0] != nil || calls[0].Load() != 2 {
		t.Errorf("index 0: err %v after %d calls, want nil after 2", errs[0], calls[0].Load())
	}
	if errs[1] == nil || calls[1].Load() != 1 {
		t.Errorf("index 1: err %v after %d calls, want error after 1", errs[1], calls[1].Load())
	}
	if !errors.Is(errs[2], errTransient) || calls[2].Load() != 3 {
		t.Errorf("index 2: err %v after %d calls, want transient after 3", errs[2], calls[2].Load())
	}
}

func TestRunRateLimits(t *testing.T) {
	// 11 calls at 100/s with a burst of one need at least 100ms.
	start := time.Now()
	Run(context.Background(), 11, Options{Concurrency: 11, Rate: 100}, func(context.Context, int) error { return nil })
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Fatalf("11 calls at 100/s took %v: the rate was not applied", el)
	}
}

func TestRunStopsStartingWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	errs := Run(ctx, 100, Options{Concurrency: 1}, func(ctx context.Context, i int) error {
		if started.Add(1) == 5 {
			cancel()
		}
		return nil
	})
	if s := started.Load(); s >= 100 {
		t.Fatalf("all %d calls started after cancel", s)
	}
	var ok, canceled int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, context.Canceled):
			canceled++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != int(started.Load()) || ok+canceled != 100 {
		t.Fatalf("ok=%d canceled=%d started=%d", ok, canceled, started.Load())
	}
}

func TestBackoffsDoubleCapAndJitter(t *testing.T) {
	plain := backoffs(100*time.Millisecond, time.Second, false)
	for a, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		if got := plain(a); got != want {
			t.Errorf("retry %d: wait %v, want %v", a, got, want)
		}
	}
	jit := backoffs(100*time.Millisecond, time.Second, true)
	seen := map[time.Duration]bool{}
	for range 200 {
		d := jit(5)
		if d < 500*time.Millisecond || d >= time.Second {
			t.Fatalf("jittered wait %v outside [500ms, 1s)", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct jittered waits in 200 draws", len(seen))
	}
}

// TestRunCancelledStartsNothing: with ctx already done no call starts,
// whatever the scheduler does (a select with a free worker and a done
// ctx picks at random: seen as a resume that launched after its signal).
func TestRunCancelledStartsNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 500 {
		var calls atomic.Int32
		errs := Run(ctx, 4, Options{Concurrency: 4}, func(context.Context, int) error { calls.Add(1); return nil })
		if calls.Load() != 0 {
			t.Fatalf("%d calls started after the end", calls.Load())
		}
		for i, err := range errs {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("call %d: %v, want context.Canceled", i, err)
			}
		}
	}
}
