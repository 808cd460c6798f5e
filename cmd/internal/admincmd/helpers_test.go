package admincmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
)

// `conf helpers` prints helpers.conf for the groups' images, and exits 3
// saying none is needed when no group lists images.
func TestConfHelpers(t *testing.T) {
	const base = `cluster: t
slurm: {conf_server: head}
podman: {hosts: [{name: l, uri: "unix:///run/podman/podman.sock"}]}
groups:
  - name: cpu
    nodes: cpu[1-2]
    template: {image: "localhost/node:1", network: n}
`
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var out, errb bytes.Buffer
	if got := Main(context.Background(), []string{"slurm-elastic", "--config", write(base), "conf", "helpers"}, &out, &errb); got != exitcode.Config ||
		out.Len() != 0 || !strings.Contains(errb.String(), "no group lists images") {
		t.Errorf("without images: exit %d, stdout %q, stderr %q", got, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	with := base + "    images: [{name: Rocky9, image: \"localhost/rocky:9\"}, {name: cuda12, image: \"localhost/cuda:12\"}]\n"
	if got := Main(context.Background(), []string{"slurm-elastic", "--config", write(with), "conf", "helpers"}, &out, &errb); got != exitcode.OK ||
		!strings.Contains(out.String(), "\nFeature=Rocky9 Helper=/usr/local/sbin/slurm-elastic-node-image\nFeature=cuda12 Helper=/usr/local/sbin/slurm-elastic-node-image\nMutuallyExclusive=Rocky9,cuda12\n") {
		t.Errorf("with images: exit %d, stdout %q, stderr %q", got, out.String(), errb.String())
	}
}
