package podman

import (
	"errors"
	"strings"
	"testing"

	"github.com/containers/podman/v4/pkg/bindings/containers"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Logs reads a node container's output (stdout and stderr, in order) from
// the real Podman, also once the container exited (a dead node), cut to
// the last max bytes; a node without a container is ErrNoInstance.
func TestIntegrationLogs(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	p := e.newRuntime(t, "rt-logs", e.host(0))
	if _, err := p.Logs(ctx, "log1", 4096); !errors.Is(err, runtime.ErrNoInstance) {
		t.Fatalf("logs of a node without a container: %v, want ErrNoInstance", err)
	}
	n := node("log1")
	// SIGTERM is ignored until all is printed, so the stop below (TERM,
	// then KILL after its timeout) never cuts the output short.
	n.Template.Command = []string{"/bin/sh", "-c", "trap '' TERM; echo out-line; echo err-line >&2; i=0; while [ $i -lt 2000 ]; do echo filler$i; i=$((i+1)); done; echo last-line; " + idleCmd[2]}
	in := mustLaunch(t, p, ctx, n)[0]
	// Stopped, the container has flushed all its output, as a dead node's.
	if err := containers.Stop(e.conns[0], in.ID, new(containers.StopOptions).WithTimeout(5)); err != nil {
		t.Fatal(err)
	}
	whole, err := p.Logs(ctx, "log1", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s := string(whole.Tail)
	out, errl, last := strings.Index(s, "out-line\n"), strings.Index(s, "err-line\n"), strings.Index(s, "last-line\n")
	if out < 0 || errl < out || last < errl || whole.Truncated || whole.ID != in.ID || whole.Host != "h0" || !strings.Contains(whole.Image, "slurm-elastic-test/busybox") {
		t.Fatalf("whole log: id %s host %s image %s truncated %v, %d bytes:\n%.300s", whole.ID, whole.Host, whole.Image, whole.Truncated, len(s), s)
	}
	tail, err := p.Logs(ctx, "log1", 4096)
	if err != nil || len(tail.Tail) > 4096 || !tail.Truncated || !strings.HasSuffix(string(tail.Tail), "last-line\n") || strings.Contains(string(tail.Tail), "out-line") {
		t.Fatalf("tail: %d bytes, truncated %v, %v:\n%.200s", len(tail.Tail), tail.Truncated, err, tail.Tail)
	}
	if r := p.Terminate(ctx, []string{"log1"})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
}
