package podman

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// TestIntegrationSSHRedial (issue 11, defect 3): a Podman host reached over
// ssh:// whose SSH connection dies (the host rebooted) is dialled again:
// after the one call that meets the dead connection, calls work again.
func TestIntegrationSSHRedial(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	sock := strings.TrimPrefix(e.socks[0], "unix://")
	srv, identity := newSSHServer(t, sock)
	p := e.newRuntime(t, "rt-ssh", Host{Name: "h0", URI: srv.uri(sock), Identity: identity, KnownHosts: srv.knownHosts(t, false)})
	in := mustLaunch(t, p, ctx, node("ssh1"))[0]
	srv.dropAll()
	if _, err := p.List(ctx); err != nil && runtime.ClassOf(err) != runtime.ClassTransient {
		t.Fatalf("list on the dead connection: %v, want Transient", err)
	}
	insts, err := p.List(ctx)
	if err != nil {
		t.Fatalf("list after the SSH connection died: %v", err)
	}
	if len(insts) != 1 || insts[0].ID != in.ID || insts[0].State != runtime.StateRunning {
		t.Fatalf("instances %+v, want %s running", insts, in.ID)
	}
}

// TestIntegrationHostDown (issue 11, defect 5): with one of two hosts
// down, List returns the other's instances and a PartialError naming the
// down host; a launch goes to the host that answers (though the down one
// has more room); removal of a node on the host that answers works; a
// node that may be on the down host is not reported terminated.
func TestIntegrationHostDown(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	h0, h1 := e.host(0), e.host(1)
	h0.MaxNodes = 2 // h1 unlimited: the emptier host, placement's first choice
	p := e.newRuntime(t, "rt-down", h0, h1)
	before := mustLaunch(t, p, ctx, node("up1"))[0]
	if before.Host != "h1" {
		t.Fatalf("first node on %s, want h1 (more room)", before.Host)
	}
	e.stopService(t, 1)

	insts, err := p.List(ctx)
	var pe *runtime.PartialError
	if !errors.As(err, &pe) || !slices.Equal(pe.Hosts, []string{"h1"}) || len(insts) != 0 {
		t.Fatalf("list with h1 down: %v, %+v; want PartialError naming h1 and no instances", err, insts)
	}
	r := p.Launch(ctx, []runtime.NodeSpec{node("up2")})[0]
	if r.Err != nil || r.Instance.Host != "h0" {
		t.Fatalf("launch with h1 down: %+v, want it on h0", r)
	}
	insts, err = p.List(ctx)
	if !errors.As(err, &pe) || len(insts) != 1 || insts[0].Name != "up2" {
		t.Fatalf("list: %v, %+v; want up2 and a PartialError", err, insts)
	}
	for _, tr := range p.Terminate(ctx, []string{"up2", "up1"}) {
		switch tr.Name {
		case "up2":
			if tr.Err != nil {
				t.Fatalf("terminate up2 (on h0): %v", tr.Err)
			}
		case "up1":
			if tr.Err == nil || runtime.HostOf(tr.Err) != "h1" {
				t.Fatalf("terminate up1 (on the down h1): %v, want an error naming h1", tr.Err)
			}
		}
	}
	if ids := e.ctrsOf(t, 0, "rt-down"); len(ids) != 0 {
		t.Fatalf("h0 still has %v", ids)
	}
}
