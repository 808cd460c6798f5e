package pool

import (
	"context"
	"testing"
	"time"
)

// BenchmarkRunOverhead: the pool's own cost per call (no-op calls, 10,000
// per Run, 256 workers as a 10,000-node resume would use).
func BenchmarkRunOverhead(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		errs := Run(ctx, n, Options{Concurrency: 256}, func(context.Context, int) error { return nil })
		if len(errs) != n {
			b.Fatal(len(errs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/call")
}

// BenchmarkRunPaced: 1,000 calls of 5 ms each at a client rate of 5,000
// calls/s and 64 workers. The ideal wall time is 1000/5000 s + 5 ms = 205 ms;
// "x-ideal" is how far above it the pool's pacing lands.
func BenchmarkRunPaced(b *testing.B) {
	const (
		n       = 1000
		r       = 5000.0
		latency = 5 * time.Millisecond
	)
	ctx := context.Background()
	ideal := time.Duration(float64(n)/r*float64(time.Second)) + latency
	var worst time.Duration
	for b.Loop() {
		t0 := time.Now()
		Run(ctx, n, Options{Concurrency: 64, Rate: r}, func(context.Context, int) error {
			time.Sleep(latency)
			return nil
		})
		worst = max(worst, time.Since(t0))
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(ideal), "x-ideal")
	b.ReportMetric(float64(worst)/float64(ideal), "x-ideal-worst")
}

// BenchmarkRunRetryThrottled: every call is refused once (as a throttling
// API would) and succeeds on its retry after a 1 ms backoff; 1,000 calls,
// 64 workers. Shows the cost of one retry round per call.
func BenchmarkRunRetryThrottled(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		seen := make([]bool, n)
		errs := Run(ctx, n, Options{Concurrency: 64, Attempts: 3, Backoff: time.Millisecond,
			Retry: func(err error) bool { return err == errTransient }},
			func(_ context.Context, i int) error {
				if !seen[i] {
					seen[i] = true
					return errTransient
				}
				return nil
			})
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
