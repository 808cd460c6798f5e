package runtimefake

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

func spec(name, image string) runtime.NodeSpec {
	return runtime.NodeSpec{Name: name, Group: "g", Template: runtime.Template{Image: image}}
}

// clock is a manual clock for the rate limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestLaunchSemantics(t *testing.T) {
	ctx := context.Background()
	f := New(Options{Cluster: "c1"})
	r := f.Launch(ctx, []runtime.NodeSpec{spec("n1", "img"), spec("n2", "img")})
	if len(r) != 2 || r[0].Err != nil || r[1].Err != nil {
		t.Fatalf("launch: %+v", r)
	}
	if r[0].Name != "n1" || r[1].Name != "n2" {
		t.Fatalf("results out of order: %+v", r)
	}
	in := r[0].Instance
	if in.Name != "n1" || in.Group != "g" || in.Host != Host || in.Addr != "fake-n1" || in.State != runtime.StateRunning || in.ID == "" {
		t.Fatalf("instance: %+v", in)
	}
	if r[0].Instance.ID == r[1].Instance.ID {
		t.Fatalf("two nodes share ID %s", in.ID)
	}

	// Relaunch of a running node: same instance, nothing new.
	again := f.Launch(ctx, []runtime.NodeSpec{spec("n1", "img")})
	if again[0].Err != nil || again[0].Instance.ID != in.ID {
		t.Fatalf("relaunch gave %+v, want ID %s", again[0], in.ID)
	}
	if s := f.Stats(); s.Launched != 2 || s.Calls != 3 {
		t.Fatalf("stats after relaunch: %+v", s)
	}

	// A stopped node is replaced by a new instance.
	if !f.SetState("n1", runtime.StateExited) {
		t.Fatal("SetState: n1 missing")
	}
	rep := f.Launch(ctx, []runtime.NodeSpec{spec("n1", "img")})
	if rep[0].Err != nil || rep[0].Instance.ID == in.ID || rep[0].Instance.State != runtime.StateRunning {
		t.Fatalf("replace gave %+v (old ID %s)", rep[0], in.ID)
	}
	if f.Len() != 2 {
		t.Fatalf("Len = %d, want 2", f.Len())
	}

	// The same node twice in one batch: one instance.
	dup := f.Launch(ctx, []runtime.NodeSpec{spec("n3", "img"), spec("n3", "img")})
	if dup[0].Err != nil || dup[1].Err != nil || dup[0].Instance.ID != dup[1].Instance.ID {
		t.Fatalf("duplicate in batch: %+v", dup)
	}

	list, err := f.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range list {
		names = append(names, i.Name)
	}
	if fmt.Sprint(names) != "[n1 n2 n3]" {
		t.Fatalf("List names = %v", names)
	}
}

func TestTerminate(t *testing.T) {
	ctx := context.Background()
	f := New(Options{})
	f.Launch(ctx, []runtime.NodeSpec{spec("a", "i"), spec("b", "i")})
	r := f.Terminate(ctx, []string{"a", "absent", "a"})
	for _, x := range r {
		if x.Err != nil {
			t.Fatalf("terminate %s: %v", x.Name, x.Err)
		}
	}
	if r[1].Name != "absent" {
		t.Fatalf("results out of order: %+v", r)
	}
	got := f.Instances()
	if len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("after terminate: %+v", got)
	}
	if s := f.Stats(); s.Terminated != 1 {
		t.Fatalf("Terminated = %d, want 1", s.Terminated)
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		opts    Options
		pre     []runtime.NodeSpec
		launch  runtime.NodeSpec
		want    runtime.Class
		wantLen int
	}{
		{"unknown image", Options{Images: []string{"good"}}, nil, spec("n1", "bad"), runtime.ClassConfig, 0},
		{"empty image with image list", Options{Images: []string{"good"}}, nil, spec("n1", ""), runtime.ClassConfig, 0},
		{"known image", Options{Images: []string{"good"}}, nil, spec("n1", "good"), "", 1},
		{"empty name", Options{}, nil, spec("", "x"), runtime.ClassConfig, 0},
		{"capacity full", Options{Capacity: 2}, []runtime.NodeSpec{spec("a", "x"), spec("b", "x")}, spec("c", "x"), runtime.ClassCapacity, 2},
		{"capacity: running node is no new instance", Options{Capacity: 1}, []runtime.NodeSpec{spec("a", "x")}, spec("a", "x"), "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(tt.opts)
			for _, r := range f.Launch(ctx, tt.pre) {
				if r.Err != nil {
					t.Fatalf("pre-launch %s: %v", r.Name, r.Err)
				}
			}
			r := f.Launch(ctx, []runtime.NodeSpec{tt.launch})[0]
			if got := r.Class(); got != tt.want {
				t.Fatalf("class = %q (err %v), want %q", got, r.Err, tt.want)
			}
			if f.Len() != tt.wantLen {
				t.Fatalf("Len = %d, want %d", f.Len(), tt.wantLen)
			}
			if tt.want != "" && f.Stats().Refused != 1 {
				t.Fatalf("Refused = %d, want 1", f.Stats().Refused)
			}
		})
	}
}

func TestCapacityReplaceExited(t *testing.T) {
	ctx := context.Background()
	f := New(Options{Capacity: 1})
	first := f.Launch(ctx, []runtime.NodeSpec{spec("a", "x")})[0]
	f.SetState("a", runtime.StateExited)
	// Replacing a's own stopped instance needs no extra room...
	r := f.Launch(ctx, []runtime.NodeSpec{spec("a", "x")})[0]
	if r.Err != nil || r.Instance.ID == first.Instance.ID {
		t.Fatalf("replace at capacity: %+v", r)
	}
	// ...but a stopped instance still holds its slot for another node.
	f.SetState("a", runtime.StateExited)
	if c := f.Launch(ctx, []runtime.NodeSpec{spec("b", "x")})[0].Class(); c != runtime.ClassCapacity {
		t.Fatalf("class = %q, want Capacity", c)
	}
}

func TestRateLimit(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	f := New(Options{RateLimit: 2, Burst: 2, now: c.now})
	// Two calls fit the burst, the third in the same instant is throttled.
	r := f.Launch(ctx, []runtime.NodeSpec{spec("a", "x"), spec("b", "x"), spec("c", "x")})
	if r[0].Err != nil || r[1].Err != nil {
		t.Fatalf("within burst: %+v", r)
	}
	if !errors.Is(r[2].Err, ErrThrottled) || r[2].Class() != runtime.ClassTransient {
		t.Fatalf("third call: %v (class %q), want throttled Transient", r[2].Err, r[2].Class())
	}
	if f.Len() != 2 {
		t.Fatalf("throttled call changed state: Len = %d", f.Len())
	}
	if _, err := f.List(ctx); !errors.Is(err, ErrThrottled) {
		t.Fatalf("List with empty bucket: %v, want throttled", err)
	}
	// Half a second refills one token.
	c.add(500 * time.Millisecond)
	if r := f.Terminate(ctx, []string{"a", "b"}); r[0].Err != nil || !errors.Is(r[1].Err, ErrThrottled) {
		t.Fatalf("after 0.5 s: %+v", r)
	}
	// A long pause refills at most the burst.
	c.add(time.Hour)
	r = f.Launch(ctx, []runtime.NodeSpec{spec("d", "x"), spec("e", "x"), spec("f", "x")})
	if r[0].Err != nil || r[1].Err != nil || !errors.Is(r[2].Err, ErrThrottled) {
		t.Fatalf("after an hour: %+v", r)
	}
	s := f.Stats()
	if s.Calls != 9 || s.Throttled != 4 {
		t.Fatalf("stats = %+v, want 9 calls, 4 throttled", s)
	}
}

func TestFault(t *testing.T) {
	ctx := context.Background()
	f := New(Options{})
	boom := runtime.Errorf(runtime.ClassCapacity, "stockout")
	var seen []string
	f.SetFault(func(op, node string) error {
		seen = append(seen, op+":"+node)
		switch {
		case op == OpLaunch && node == "bad":
			return boom
		case op == OpTerminate && node == "ok":
			return errors.New("api hiccup")
		case op == OpList:
			return errors.New("list broken")
		}
		return nil
	})
	r := f.Launch(ctx, []runtime.NodeSpec{spec("ok", "x"), spec("bad", "x")})
	if r[0].Err != nil {
		t.Fatalf("ok: %v", r[0].Err)
	}
	if !errors.Is(r[1].Err, boom) || r[1].Class() != runtime.ClassCapacity {
		t.Fatalf("bad: %v (class %q)", r[1].Err, r[1].Class())
	}
	tr := f.Terminate(ctx, []string{"ok"})
	if tr[0].Err == nil || tr[0].Class() != runtime.ClassTransient {
		t.Fatalf("terminate fault: %v (class %q)", tr[0].Err, tr[0].Class())
	}
	if f.Len() != 1 {
		t.Fatalf("failed terminate removed the instance")
	}
	if _, err := f.List(ctx); err == nil {
		t.Fatal("List ignored its fault")
	}
	if fmt.Sprint(seen) != "[launch:ok launch:bad terminate:ok list:]" {
		t.Fatalf("fault saw %v", seen)
	}
	if f.Stats().Faults != 3 {
		t.Fatalf("Faults = %d, want 3", f.Stats().Faults)
	}
	f.SetFault(nil)
	if tr := f.Terminate(ctx, []string{"ok"}); tr[0].Err != nil || f.Len() != 0 {
		t.Fatalf("after clearing fault: %+v, Len %d", tr, f.Len())
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	f := New(Options{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := f.Launch(ctx, []runtime.NodeSpec{spec("a", "x")})
	if !errors.Is(r[0].Err, context.Canceled) || r[0].Class() != runtime.ClassTransient {
		t.Fatalf("launch with cancelled ctx: %v (class %q)", r[0].Err, r[0].Class())
	}
	if f.Len() != 0 {
		t.Fatal("cancelled launch created an instance")
	}
	if _, err := f.List(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("List: %v", err)
	}
	if tr := f.Terminate(ctx, []string{"a"}); !errors.Is(tr[0].Err, context.Canceled) {
		t.Fatalf("Terminate: %v", tr[0].Err)
	}
}

func TestLatencyApplies(t *testing.T) {
	// A deadline far shorter than the latency must cut the call short: the
	// fake really waits.
	f := New(Options{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	r := f.Launch(ctx, []runtime.NodeSpec{spec("a", "x")})
	if !errors.Is(r[0].Err, context.DeadlineExceeded) || f.Len() != 0 {
		t.Fatalf("launch under a deadline shorter than the latency: %v, Len %d", r[0].Err, f.Len())
	}
	// A call that waits out its latency succeeds.
	f = New(Options{Latency: time.Millisecond})
	if r := f.Launch(context.Background(), []runtime.NodeSpec{spec("a", "x")}); r[0].Err != nil {
		t.Fatalf("launch without deadline: %v", r[0].Err)
	}
}

func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	f := New(Options{Capacity: 50})
	const workers, nodes = 16, 100
	var wg sync.WaitGroup
	ids := make([]map[string]string, workers)
	for w := range workers {
		ids[w] = map[string]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range nodes {
				name := fmt.Sprintf("n%d", i)
				r := f.Launch(ctx, []runtime.NodeSpec{spec(name, "x")})[0]
				if r.Err == nil {
					ids[w][name] = r.Instance.ID
				} else if r.Class() != runtime.ClassCapacity {
					t.Errorf("launch %s: %v", name, r.Err)
				}
			}
		}()
	}
	wg.Wait()
	// Every worker that got a node got the same instance: never two.
	byNode := map[string]string{}
	for _, m := range ids {
		for n, id := range m {
			if old, ok := byNode[n]; ok && old != id {
				t.Fatalf("node %s has two instances: %s and %s", n, old, id)
			}
			byNode[n] = id
		}
	}
	if len(byNode) != 50 || f.Len() != 50 || f.Stats().Launched != 50 {
		t.Fatalf("nodes %d, Len %d, Launched %d; want 50 each", len(byNode), f.Len(), f.Stats().Launched)
	}
	if s := f.Stats(); s.Calls != workers*nodes {
		t.Fatalf("Calls = %d, want %d", s.Calls, workers*nodes)
	}
}

func TestMemory10k(t *testing.T) {
	const n = 10000
	specs := make([]runtime.NodeSpec, n)
	for i := range specs {
		specs[i] = spec(fmt.Sprintf("cloud%05d", i), "img")
	}
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	f := New(Options{Cluster: "sim"})
	for i := 0; i < n; i += 1000 {
		for _, r := range f.Launch(context.Background(), specs[i:i+1000]) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("10,000 instances: heap grew %d bytes (%d per instance)", grown, grown/n)
	if f.Len() != n {
		t.Fatalf("Len = %d", f.Len())
	}
	if grown > 2<<20 {
		t.Fatalf("10,000 instances take %d bytes of heap, want under 2 MiB", grown)
	}
	goruntime.KeepAlive(specs)
}

func BenchmarkLaunchTerminate(b *testing.B) {
	ctx := context.Background()
	f := New(Options{})
	s := []runtime.NodeSpec{spec("n", "x")}
	for b.Loop() {
		f.Launch(ctx, s)
		f.Terminate(ctx, []string{"n"})
	}
}
