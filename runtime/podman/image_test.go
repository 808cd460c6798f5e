package podman

import (
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// onlyH1Image is tagged on host h1 only (TestIntegrationImageOnOneHost).
const onlyH1Image = "localhost/slurm-elastic-test/only-h1:1"

// TestIntegrationImageOnOneHost (issue 15): with image_pull_policy never,
// a node whose image (here the group's default, Image "") only h1 has is
// placed on h1 though placement prefers h0; h0 is not cooled down, so the
// next node of another image still goes to h0; a node whose image no host
// has fails alone with Config naming the image and both hosts, and h0 and
// h1 still start other nodes.
func TestIntegrationImageOnOneHost(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	if _, err := run(1, "podman", "tag", testImage, onlyH1Image); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = run(1, "podman", "rmi", onlyH1Image) })
	if _, err := run(0, "podman", "image", "exists", onlyH1Image); err == nil {
		t.Fatalf("h0 has %s: the test needs it on h1 only", onlyH1Image)
	}
	h0, h1 := e.host(0), e.host(1)
	h1.MaxNodes = 8 // h0 unlimited: the emptier host, placement's first choice
	p := e.newRuntime(t, "rt-imgpol", h0, h1)

	n1 := node("pol1")
	n1.Template.Image = onlyH1Image
	in := mustLaunch(t, p, ctx, n1)[0]
	if in.Host != "h1" {
		t.Fatalf("node of an image only h1 has is on %s", in.Host)
	}
	if got := mustLaunch(t, p, ctx, node("pol2"))[0]; got.Host != "h0" {
		t.Fatalf("node of the shared image on %s, want h0: h0 was taken out of placement for another image's absence", got.Host)
	}
	n3 := node("pol3")
	n3.Template.Image = onlyH1Image
	if got := mustLaunch(t, p, ctx, n3)[0]; got.Host != "h1" {
		t.Fatalf("second node of the h1-only image on %s", got.Host)
	}

	bad := node("pol4")
	bad.Image, bad.Template.Image = "nowhere", "localhost/slurm-elastic-test/nowhere:1"
	r := p.Launch(ctx, []runtime.NodeSpec{bad})[0]
	if r.Class() != runtime.ClassConfig || runtime.HostOf(r.Err) != "" ||
		!strings.Contains(r.Err.Error(), `image "localhost/slurm-elastic-test/nowhere:1" is on no podman host (h0, h1)`) {
		t.Fatalf("image on no host: class %q host %q err %v", r.Class(), runtime.HostOf(r.Err), r.Err)
	}
	if ids := append(e.ctrsOf(t, 0, "rt-imgpol"), e.ctrsOf(t, 1, "rt-imgpol")...); len(ids) != 3 {
		t.Fatalf("containers %v, want the 3 launched (the failed one left none)", ids)
	}
	if got := mustLaunch(t, p, ctx, node("pol5"))[0]; got.Host != "h0" {
		t.Fatalf("after the missing image, a node of the shared image is on %s, want h0", got.Host)
	}
}

// TestIntegrationImagePull (issue 15): h0 has image_pull_policy never, h1
// missing; placement prefers h0. A node of an image neither host has is
// started on h1 after h1 pulled it from the loopback test registry (h0
// skipped, and never pulls); further nodes of the image, launched
// together, go to h1 without another pull. A pull the registry refuses
// (401) fails the node with Config naming the image and both hosts; a
// pull that hangs fails it with Transient after pull_timeout. No other
// registry is contacted (registries.conf: no search registries).
func TestIntegrationImagePull(t *testing.T) {
	e := getEnv(t)
	ctx := testCtx(t)
	ref := e.reg.ref("slurm-elastic-test/pulled")
	rmi := func() {
		for i := range numHosts {
			_, _ = run(i, "podman", "rmi", "-f", ref)
		}
	}
	rmi()
	t.Cleanup(rmi)
	h0, h1 := e.host(0), e.host(1)
	h0.PullPolicy, h1.PullPolicy = PullNever, PullMissing
	h1.MaxNodes = 8 // h0 unlimited: the emptier host, placement's first choice
	p := e.newRuntimeOpts(t, Options{Cluster: "rt-pull", Hosts: []Host{h0, h1}, MungeKey: e.mungeKey, PullTimeout: 3 * time.Second})

	n1 := node("pull1")
	n1.Image, n1.Template.Image = "pulled", ref
	if in := mustLaunch(t, p, ctx, n1)[0]; in.Host != "h1" {
		t.Fatalf("node of a pullable image on %s, want h1 (the host that pulls)", in.Host)
	}
	if _, err := run(1, "podman", "image", "exists", ref); err != nil {
		t.Fatalf("h1 has not got %s: %v", ref, err)
	}
	if _, err := run(0, "podman", "image", "exists", ref); err == nil {
		t.Fatalf("h0 (image_pull_policy never) pulled %s", ref)
	}
	gets := e.reg.manifestGets("slurm-elastic-test/pulled")
	if gets == 0 {
		t.Fatal("the registry served no manifest: the image did not come from it")
	}
	n2, n3 := n1, n1
	n2.Name, n3.Name = "pull2", "pull3"
	for _, in := range mustLaunch(t, p, ctx, n2, n3) {
		if in.Host != "h1" {
			t.Fatalf("%s on %s, want h1", in.Name, in.Host)
		}
	}
	if now := e.reg.manifestGets("slurm-elastic-test/pulled"); now != gets {
		t.Fatalf("the registry served the manifest %d more times: pulled again though h1 has the image", now-gets)
	}

	denied := node("pull4")
	denied.Image, denied.Template.Image = "denied", e.reg.ref("denied/x")
	r := p.Launch(ctx, []runtime.NodeSpec{denied})[0]
	if r.Class() != runtime.ClassConfig || runtime.HostOf(r.Err) != "" ||
		!strings.Contains(r.Err.Error(), "is on no podman host (h0, h1)") || !strings.Contains(r.Err.Error(), "pull image") {
		t.Fatalf("refused pull: class %q host %q err %v", r.Class(), runtime.HostOf(r.Err), r.Err)
	}

	hang := node("pull5")
	hang.Image, hang.Template.Image = "hangs", e.reg.hangRef("slurm-elastic-test/hang")
	r = p.Launch(ctx, []runtime.NodeSpec{hang})[0]
	if r.Class() != runtime.ClassTransient || !strings.Contains(r.Err.Error(), "pull_timeout") {
		t.Fatalf("hanging pull: class %q err %v", r.Class(), r.Err)
	}
	if in := mustLaunch(t, p, ctx, node("pull6"))[0]; in.Host != "h0" {
		t.Fatalf("after the failed pulls a node of the shared image is on %s, want h0", in.Host)
	}
	if ids := append(e.ctrsOf(t, 0, "rt-pull"), e.ctrsOf(t, 1, "rt-pull")...); len(ids) != 4 {
		t.Fatalf("containers %v, want the 4 launched", ids)
	}
}
