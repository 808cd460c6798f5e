package suspend

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/power"
	"github.com/slurm-elastic/slurm-elastic/resume"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

func setup(t *testing.T) (power.Deps, *runtimefake.Fake, *slurmfake.Fake) {
	t.Helper()
	c := conf.Default()
	c.Cluster = "t"
	c.Groups = []conf.Group{{Name: "cloud", Nodes: "cloud[1-3]", Template: conf.Template{Image: "node:1", Network: "net"}}}
	c.ApplyDefaults()
	rt := runtimefake.New(runtimefake.Options{Cluster: "t"})
	sc := slurmfake.New("cloud1", "cloud2", "cloud3", "other1")
	d := power.Deps{Config: &c, Runtimes: map[string]runtime.Runtime{"podman": rt}, Slurm: sc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return d, rt, sc
}

func TestSuspendRemovesAndResetsAddresses(t *testing.T) {
	d, rt, sc := setup(t)
	ctx := context.Background()
	if err := resume.Resume(ctx, d, []string{"cloud1", "cloud2"}, nil); err != nil {
		t.Fatal(err)
	}
	// cloud3 has no instance: suspending it is still a success.
	if err := Suspend(ctx, d, []string{"cloud1", "cloud2", "cloud3"}); err != nil {
		t.Fatal(err)
	}
	if list, _ := rt.List(ctx); len(list) != 0 {
		t.Fatalf("instances left: %+v", list)
	}
	for _, n := range []string{"cloud1", "cloud2"} {
		sn, _ := sc.Node(n)
		if sn.Addr != n || sn.Hostname != n {
			t.Errorf("node %s address not reset: %+v", n, sn)
		}
	}
	// Idempotent.
	if err := Suspend(ctx, d, []string{"cloud1"}); err != nil {
		t.Fatal(err)
	}
}

func TestSuspendLeavesUnmanagedNodesAlone(t *testing.T) {
	d, _, sc := setup(t)
	err := Suspend(context.Background(), d, []string{"other1"})
	if err == nil || !strings.Contains(err.Error(), "other1") {
		t.Fatalf("err = %v", err)
	}
	if sc.Calls("update") != 0 {
		t.Fatal("suspend updated a node it does not manage")
	}
}

func TestSuspendReportsTerminateFailure(t *testing.T) {
	d, rt, _ := setup(t)
	ctx := context.Background()
	if err := resume.Resume(ctx, d, []string{"cloud1", "cloud2"}, nil); err != nil {
		t.Fatal(err)
	}
	rt.SetFault(func(op, node string) error {
		if op == "terminate" && node == "cloud2" {
			return runtime.Errorf(runtime.ClassConfig, "permission denied")
		}
		return nil
	})
	err := Suspend(ctx, d, []string{"cloud1", "cloud2"})
	if err == nil || !strings.Contains(err.Error(), "cloud2") || runtime.ClassOf(err) != runtime.ClassConfig {
		t.Fatalf("err = %v", err)
	}
	list, _ := rt.List(ctx)
	if len(list) != 1 || list[0].Name != "cloud2" {
		t.Fatalf("want only cloud2 left, got %+v", list)
	}
}
