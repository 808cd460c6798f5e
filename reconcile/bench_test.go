package reconcile

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

const benchNodes = 10000

// benchWorld is 10,000 nodes: 6,000 up with a running instance, the rest
// powered down with none.
func benchWorld(b *testing.B) *world {
	names := make([]string, benchNodes)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i+1)
	}
	w := newWorld(b, fmt.Sprintf("c[1-%d]", benchNodes), names...)
	specs := make([]runtime.NodeSpec, 0, 6000)
	for i := range 6000 {
		w.up(names[i], slurm.StateAllocated)
		specs = append(specs, runtime.NodeSpec{Name: names[i], Group: "g", Template: runtime.Template{Image: "img"}})
	}
	for _, r := range w.rt.Launch(context.Background(), specs) {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	w.clock.Add(time.Hour)
	return w
}

func reportRSS(b *testing.B) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB") // Linux: KiB
	}
}

// BenchmarkRound10kSteady: a round over 10,000 nodes where nothing needs
// doing (the common case).
func BenchmarkRound10kSteady(b *testing.B) {
	w := benchWorld(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		acts, err := w.r.Round(ctx)
		if err != nil || len(acts) != 0 {
			b.Fatalf("%d actions, %v", len(acts), err)
		}
	}
	reportRSS(b)
}

// BenchmarkRound10kActions: a round over 10,000 nodes that removes 100
// orphans and fails over 100 dead nodes (set up again, untimed, before
// each round), then saves events and status.
func BenchmarkRound10kActions(b *testing.B) {
	w := benchWorld(b)
	ctx := context.Background()
	dir := b.TempDir()
	for b.Loop() {
		b.StopTimer()
		var orphans []runtime.NodeSpec
		for i := range 100 {
			dead := fmt.Sprintf("c%d", 5901+i) // up, instance killed
			w.up(dead, slurm.StateAllocated)
			w.rt.SetState(dead, runtime.StateExited)
			n := fmt.Sprintf("c%d", 9001+i) // powered down, instance left
			w.up(n, slurm.StateIdle, slurm.FlagPoweredDown)
			orphans = append(orphans, runtime.NodeSpec{Name: n, Group: "g", Template: runtime.Template{Image: "img"}})
		}
		w.rt.Launch(ctx, orphans)
		w.clock.Add(time.Hour)
		b.StartTimer()
		acts, err := w.r.Round(ctx)
		if err != nil || len(acts) != 200 {
			b.Fatalf("%d actions, %v", len(acts), err)
		}
		if err := w.r.SaveState(dir); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		// Put the dead nodes' instances back for the next round.
		var specs []runtime.NodeSpec
		for i := range 100 {
			specs = append(specs, runtime.NodeSpec{Name: fmt.Sprintf("c%d", 5901+i), Group: "g", Template: runtime.Template{Image: "img"}})
		}
		w.rt.Launch(ctx, specs)
		b.StartTimer()
	}
	reportRSS(b)
}
