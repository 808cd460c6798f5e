package prolog

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/internal/timeline"
)

type world struct {
	f   *slurmfake.Fake
	dir string
	mu  sync.Mutex
	rec []timeline.Record
}

func newWorld(t *testing.T, names ...string) *world {
	return &world{f: slurmfake.New(names...), dir: t.TempDir()}
}

func (w *world) deps() Deps {
	return Deps{Slurm: w.f, StateDir: w.dir, Log: slog.New(slog.DiscardHandler), Observe: func(r timeline.Record) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.rec = append(w.rec, r)
	}}
}

func (w *world) events() map[string][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]string{}
	for _, r := range w.rec {
		out[r.Event] = append(out[r.Event], r.Node+r.Nodes)
	}
	return out
}

func (w *world) powerUp(t *testing.T, names ...string) {
	t.Helper()
	if err := w.f.Update(context.Background(), names, slurm.NodeUpdate{State: slurm.SetPowerUp}); err != nil {
		t.Fatal(err)
	}
}

func TestWaitNodesAlreadyUpAsksSlurmOnce(t *testing.T) {
	w := newWorld(t, "c1", "c2")
	w.f.Register("c1", "c2")
	if got := Wait(context.Background(), w.deps(), Job{ID: "1", Nodes: []string{"c1", "c2"}}); got != NoWait {
		t.Fatalf("outcome %s, want %s", got, NoWait)
	}
	if n := w.f.Calls("nodes"); n != 1 {
		t.Fatalf("%d Slurm requests, want 1", n)
	}
	if len(w.events()) != 0 {
		t.Fatalf("records for a job that did not wait: %v", w.events())
	}
}

func TestWaitSettledMarkersAskNothing(t *testing.T) {
	w := newWorld(t, "c1", "c2")
	for _, n := range []string{"c1", "c2"} {
		if err := timeline.MarkUp(w.dir, n); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-SettleTime - time.Second)
		if err := os.Chtimes(filepath.Join(w.dir, timeline.UpDir, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if got := Wait(context.Background(), w.deps(), Job{ID: "1", Nodes: []string{"c1", "c2"}}); got != NoWait {
		t.Fatalf("outcome %s, want %s", got, NoWait)
	}
	if n := w.f.Calls("nodes"); n != 0 {
		t.Fatalf("%d Slurm requests for settled nodes, want 0", n)
	}
	// A fresh marker is not settled: Slurm is asked.
	w.f.Register("c1", "c2")
	if err := timeline.MarkUp(w.dir, "c2"); err != nil {
		t.Fatal(err)
	}
	Wait(context.Background(), w.deps(), Job{ID: "1", Nodes: []string{"c1", "c2"}})
	if n := w.f.Calls("nodes"); n != 1 {
		t.Fatalf("%d Slurm requests with a fresh marker, want 1", n)
	}
}

func TestWaitEndsWhenNodesRegister(t *testing.T) {
	w := newWorld(t, "c1", "c2", "c3")
	w.powerUp(t, "c1", "c2")
	go func() {
		time.Sleep(300 * time.Millisecond)
		timeline.MarkUp(w.dir, "c1")
		timeline.MarkUp(w.dir, "c2")
		time.Sleep(300 * time.Millisecond)
		w.f.Register("c1")
		time.Sleep(300 * time.Millisecond)
		w.f.Register("c2")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got := Wait(ctx, w.deps(), Job{ID: "7", Nodes: []string{"c1", "c2"}}); got != Up {
		t.Fatalf("outcome %s, want %s", got, Up)
	}
	ev := w.events()
	if got := ev[timeline.PrologWait]; len(got) != 1 || got[0] != "c[1-2]" {
		t.Errorf("prolog_wait records %v, want one for c[1-2]", got)
	}
	if got := ev[timeline.Registered]; len(got) != 2 || got[0] != "c1" || got[1] != "c2" {
		t.Errorf("registered records %v, want c1 then c2", got)
	}
	// Once addressed, the prolog asks every FastPoll; before, it only
	// looks at the markers: well under one request per LocalPoll overall.
	if n := w.f.Calls("nodes"); n < 3 || n > 12 {
		t.Errorf("%d Slurm requests over about a second, want 3-12", n)
	}
}

func TestWaitAsksSlowlyUntilAddressed(t *testing.T) {
	w := newWorld(t, "c1")
	w.powerUp(t, "c1")
	ctx, cancel := context.WithTimeout(context.Background(), SlowPoll/2)
	defer cancel()
	if got := Wait(ctx, w.deps(), Job{ID: "1", Nodes: []string{"c1"}}); got != Timeout {
		t.Fatalf("outcome %s, want %s", got, Timeout)
	}
	if n := w.f.Calls("nodes"); n != 1 {
		t.Fatalf("%d Slurm requests before the node was addressed, want 1 (then one per SlowPoll)", n)
	}
}

func TestWaitStopsWhenANodeGoesDown(t *testing.T) {
	w := newWorld(t, "c1", "c2")
	w.powerUp(t, "c1", "c2")
	timeline.MarkUp(w.dir, "c1")
	go func() {
		time.Sleep(300 * time.Millisecond)
		w.f.Update(context.Background(), []string{"c2"}, slurm.NodeUpdate{State: slurm.SetDown, Reason: "slurm-elastic: (Code:Config) bad image"})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got := Wait(ctx, w.deps(), Job{ID: "1", Nodes: []string{"c1", "c2"}}); got != NodeDown {
		t.Fatalf("outcome %s, want %s", got, NodeDown)
	}
}

func TestWaitRidesOutSlurmErrors(t *testing.T) {
	w := newWorld(t, "c1")
	w.powerUp(t, "c1")
	timeline.MarkUp(w.dir, "c1")
	var mu sync.Mutex
	failing := true
	w.f.SetFault(func(op string, _ []string, _ slurm.NodeUpdate) error {
		mu.Lock()
		defer mu.Unlock()
		if failing && op == "nodes" {
			return context.DeadlineExceeded
		}
		return nil
	})
	go func() {
		time.Sleep(600 * time.Millisecond)
		mu.Lock()
		failing = false
		mu.Unlock()
		w.f.Register("c1")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got := Wait(ctx, w.deps(), Job{ID: "1", Nodes: []string{"c1"}}); got != Up && got != NoWait {
		t.Fatalf("outcome %s, want the wait to go on through Slurm errors and end %s", got, Up)
	}
}
