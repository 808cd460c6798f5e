package runtimefake

import (
	"context"
	"errors"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Logs returns the canned output of an existing instance (its last max
// bytes) with its identity; no instance is ErrNoInstance; a fault fails it.
func TestLogs(t *testing.T) {
	ctx := context.Background()
	f := New(Options{Cluster: "c1"})
	if _, err := f.Logs(ctx, "n1", 100); !errors.Is(err, runtime.ErrNoInstance) {
		t.Fatalf("logs of absent node: %v, want ErrNoInstance", err)
	}
	in := f.Launch(ctx, []runtime.NodeSpec{spec("n1", "img:1")})[0].Instance
	f.SetLog("n1", "slurmd: error: cannot reach controller\n")
	l, err := f.Logs(ctx, "n1", 10)
	if err != nil || string(l.Tail) != "ontroller\n" || !l.Truncated || l.ID != in.ID || l.Image != "img:1" || l.Host != Host {
		t.Fatalf("logs: %+v, %v", l, err)
	}
	f.SetFault(func(op, node string) error {
		if op == OpLogs {
			return runtime.Errorf(runtime.ClassTransient, "api down")
		}
		return nil
	})
	if _, err := f.Logs(ctx, "n1", 10); err == nil || runtime.ClassOf(err) != runtime.ClassTransient {
		t.Fatalf("logs under fault: %v", err)
	}
}

// An instance that exits at once is removed by Launch, which fails with
// ClassConfig and the instance's log in its Result.
func TestExitOnStartCarriesLog(t *testing.T) {
	ctx := context.Background()
	f := New(Options{Cluster: "c1"})
	f.SetLog("n1", "panic: no munge key\n")
	f.SetExitOnStart("n1", true)
	r := f.Launch(ctx, []runtime.NodeSpec{spec("n1", "img:1")})[0]
	if r.Class() != runtime.ClassConfig || r.Log == nil || string(r.Log.Tail) != "panic: no munge key\n" || r.Log.Image != "img:1" {
		t.Fatalf("launch: %+v (log %+v)", r, r.Log)
	}
	if f.Len() != 0 {
		t.Fatalf("%d instances left after a failed launch", f.Len())
	}
	f.SetExitOnStart("n1", false)
	if r := f.Launch(ctx, []runtime.NodeSpec{spec("n1", "img:1")})[0]; r.Err != nil || r.Log != nil {
		t.Fatalf("launch after the fix: %+v", r)
	}
}
