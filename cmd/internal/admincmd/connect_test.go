package admincmd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
)

// `conf check --connect` reaches the Kubernetes API server only when a
// group uses it, and says which file is wrong or that the server did not
// answer. (Against a real cluster: runtime/kubernetes's integration test.)
func TestConfCheckConnect(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A port nothing listens on: take one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	kcOK := write("kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: "t"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, addr))
	kcBad := write("bad-kubeconfig", "clusters: [oops")
	config := func(name, kubeconfig, runtime string) string {
		return write(name, fmt.Sprintf(`cluster: t
slurm: {backend: scontrol, conf_server: head}
podman: {hosts: [{name: local, uri: "unix:///run/podman/podman.sock"}]}
kubernetes: {kubeconfig: %q, timeout: 5s}
groups:
  - name: k8s
    nodes: k8s[1-2]
    runtime: %s
    template: {image: node:1, network: %q}
`, kubeconfig, runtime, map[string]string{"podman": "slurm", "kubernetes": ""}[runtime]))
	}
	for _, c := range []struct {
		name, cfg string
		want      int
		says      string
	}{
		{"no kubernetes group", config("podman.yaml", kcOK, "podman"), exitcode.OK, "nothing to reach"},
		{"server does not answer", config("down.yaml", kcOK, "kubernetes"), exitcode.Failed, addr},
		{"kubeconfig unreadable", config("bad.yaml", kcBad, "kubernetes"), exitcode.Config, kcBad},
	} {
		var out, errb bytes.Buffer
		got := Main(context.Background(), []string{"slurm-elastic", "--config", c.cfg, "conf", "check", "--connect"}, &out, &errb)
		if got != c.want || !strings.Contains(out.String()+errb.String(), c.says) {
			t.Errorf("%s: exit %d, want %d; output %q %q, want it to say %q", c.name, got, c.want, out.String(), errb.String(), c.says)
		}
	}
}
