package kube

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// ImportImage copies image ref from the Podman harness's image store (harness.BuildImage)
// into the cluster's containerd (namespace k8s.io) under the same name, streaming
// `podman save` into `ctr images import`. Pods then use ref with imagePullPolicy Never.
// It blocks (seconds; the Slurm image is ~300 MB). Idempotent.
func (c *Cluster) ImportImage(ctx context.Context, ref string) error {
	t0 := time.Now()
	pr, pw := io.Pipe()
	saveErr := make(chan error, 1)
	go func() {
		err := harness.SaveImage(ctx, ref, pw)
		pw.CloseWithError(err)
		saveErr <- err
	}()
	err := c.ctrImport(ctx, pr, "-")
	pr.CloseWithError(fmt.Errorf("import ended"))
	if serr := <-saveErr; serr != nil {
		return fmt.Errorf("kube: import %s into %s: %w", ref, c.Name, serr)
	}
	if err != nil {
		return fmt.Errorf("kube: import %s into %s: %w", ref, c.Name, err)
	}
	fmt.Fprintf(c.log, "kube: %s: imported %s in %s\n", c.Name, ref, time.Since(t0).Round(time.Millisecond))
	return nil
}

// ctrImportFile imports a docker-archive or OCI tar file into containerd's k8s.io namespace.
func (c *Cluster) ctrImportFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	defer f.Close()
	return c.ctrImport(ctx, f, "-")
}

func (c *Cluster) ctrImport(ctx context.Context, in io.Reader, arg string) error {
	args := []string{"--address", c.Socket, "--namespace", "k8s.io", "images", "import", arg}
	cmd := exec.CommandContext(ctx, "ctr", args...)
	cmd.Stdin = in
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, tail(out.Bytes(), 2000))
	}
	return nil
}
