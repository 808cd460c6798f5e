package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ForEach runs every index once, never more than limit at once, and does
// reach limit (the calls of one batch overlap).
func TestForEach(t *testing.T) {
	for _, limit := range []int{1, 4, 16} {
		const n = 20
		var cur, most atomic.Int32
		full := make(chan struct{})
		var once sync.Once
		seen := make([]atomic.Int32, n)
		ForEach(n, limit, func(i int) {
			c := cur.Add(1)
			for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
			}
			if c == int32(limit) {
				once.Do(func() { close(full) })
			}
			select { // the first limit calls wait until all of them run
			case <-full:
			case <-time.After(10 * time.Second):
				t.Errorf("limit %d: call %d: never %d calls at once", limit, i, limit)
			}
			seen[i].Add(1)
			cur.Add(-1)
		})
		if most.Load() != int32(limit) {
			t.Errorf("limit %d: %d calls at once at the most", limit, most.Load())
		}
		for i := range seen {
			if seen[i].Load() != 1 {
				t.Errorf("limit %d: index %d ran %d times", limit, i, seen[i].Load())
			}
		}
	}
	ran := false
	ForEach(0, 4, func(int) { ran = true })
	if ran {
		t.Error("n = 0: fn ran")
	}
}

// LaunchEach returns one Result per node in input order, with the log a
// failed launch attached, and logs each failure with its class.
func TestLaunchEach(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	nodes := []NodeSpec{{Name: "n1", Group: "g"}, {Name: "n2", Group: "g"}, {Name: "n3", Group: "g"}}
	tail := &Log{ID: "c2", Tail: []byte("slurmd: fatal")}
	res := LaunchEach(context.Background(), log, 2, nodes, func(_ context.Context, n NodeSpec) (Instance, error) {
		switch n.Name {
		case "n2":
			return Instance{}, WithLog(Errorf(ClassConfig, "node n2: exited at once"), tail)
		case "n3":
			return Instance{}, Errorf(ClassCapacity, "node n3: no room")
		}
		return Instance{Name: n.Name, Group: n.Group, State: StateRunning}, nil
	})
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	for i, r := range res {
		if r.Name != nodes[i].Name {
			t.Errorf("result %d: %s, want %s", i, r.Name, nodes[i].Name)
		}
	}
	if res[0].Err != nil || res[0].Instance.Name != "n1" || res[0].Log != nil {
		t.Errorf("n1: %+v", res[0])
	}
	if res[1].Class() != ClassConfig || res[1].Log == nil || string(res[1].Log.Tail) != "slurmd: fatal" || res[1].Log.ID != "c2" {
		t.Errorf("n2: %+v", res[1])
	}
	if res[2].Class() != ClassCapacity || res[2].Log != nil {
		t.Errorf("n3: %+v", res[2])
	}
	out := logs.String()
	if strings.Count(out, "launch failed") != 2 || !strings.Contains(out, "node=n2 group=g class=Config") ||
		!strings.Contains(out, "node=n3 group=g class=Capacity") || strings.Contains(out, "node=n1") {
		t.Errorf("log:\n%s", out)
	}
}

// TerminateEach returns one Result per name in input order and logs each
// failure with its class.
func TestTerminateEach(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	names := []string{"a", "b", "c", "d"}
	res := TerminateEach(context.Background(), log, 16, names, func(_ context.Context, n string) error {
		if n == "c" {
			return Errorf(ClassTransient, "node c: api timeout")
		}
		return nil
	})
	for i, r := range res {
		if r.Name != names[i] || (r.Err != nil) != (r.Name == "c") || r.Log != nil {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if out := logs.String(); strings.Count(out, "terminate failed") != 1 || !strings.Contains(out, "node=c class=Transient") {
		t.Errorf("log:\n%s", out)
	}
}

// WithLog keeps the error's message, class and chain; LogOf finds the log
// through wrapping; nil log or nil error change nothing.
func TestWithLog(t *testing.T) {
	cause := errors.New("exit 1")
	err := Errorf(ClassConfig, "node n1: start: %w", cause)
	l := &Log{ID: "x", Tail: []byte("tail"), Truncated: true}
	w := fmt.Errorf("launch: %w", WithLog(err, l))
	if w.Error() != "launch: node n1: start: exit 1" || ClassOf(w) != ClassConfig || !errors.Is(w, cause) {
		t.Errorf("wrapped: %q class %s", w, ClassOf(w))
	}
	got := LogOf(w)
	if got == nil || got.ID != "x" || string(got.Tail) != "tail" || !got.Truncated {
		t.Fatalf("LogOf = %+v", got)
	}
	got.ID = "changed"
	if LogOf(w).ID != "x" {
		t.Error("LogOf returned the carried log itself, not a copy")
	}
	if WithLog(err, nil) != err || LogOf(err) != nil || WithLog(nil, l) != nil || LogOf(nil) != nil {
		t.Error("nil log or nil error")
	}
}

// TailBuffer keeps exactly the last Max bytes, says whether anything was
// dropped, and holds bounded memory however much is written.
func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
		cut    bool
	}{
		{"empty", 8, nil, "", false},
		{"short", 8, []string{"abc", "de"}, "abcde", false},
		{"exact", 5, []string{"abc", "de"}, "abcde", false},
		{"over", 4, []string{"abc", "de"}, "bcde", true},
		{"one large write", 3, []string{"0123456789"}, "789", true},
		{"cut while writing, short at the end", 4, []string{"0123", "4567", "89", "a"}, "789a", true},
		{"zero max", 0, []string{"abc"}, "", true},
	}
	for _, tt := range tests {
		b := TailBuffer{Max: tt.max}
		for _, w := range tt.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("%s: write %d, %v", tt.name, n, err)
			}
		}
		got, cut := b.Tail()
		if string(got) != tt.want || cut != tt.cut {
			t.Errorf("%s: %q truncated %v, want %q %v", tt.name, got, cut, tt.want, tt.cut)
		}
	}
	b := TailBuffer{Max: 1000}
	line := []byte(strings.Repeat("x", 99) + "\n")
	for i := 0; i < 10000; i++ {
		b.Write(line)
		if len(b.buf) > 2*b.Max {
			t.Fatalf("write %d: %d bytes held, max %d", i, len(b.buf), b.Max)
		}
	}
	if got, cut := b.Tail(); len(got) != 1000 || !cut || !bytes.Equal(got[900:], line) {
		t.Errorf("after 1 MB: %d bytes, truncated %v", len(got), cut)
	}
}
