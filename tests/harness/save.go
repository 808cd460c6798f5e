package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
)

// SaveImage writes image ref of the harness's image store (BuildImage's) to w as a
// docker-archive tar (`podman save`), e.g. for another runtime's image import (tests/kube).
// It blocks for seconds (the Slurm image is ~300 MB) and does not change the store.
func SaveImage(ctx context.Context, ref string, w io.Writer) error {
	st, err := buildStore()
	if err != nil {
		return fmt.Errorf("save image %s: %w", ref, err)
	}
	c := st.cmd(ctx, "save", "--format", "docker-archive", ref)
	var stderr bytes.Buffer
	c.Stdout, c.Stderr = w, &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("podman save %s: %w: %s", ref, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
