package slurm

// TEMPORARY exploration test (to be deleted): starts the cluster, records
// real 24.11 outputs, probes slurmrestd answers.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

func TestExplore(t *testing.T) {
	if os.Getenv("SE_EXPLORE") == "" {
		return
	}
	ctx := context.Background()
	var c *harness.Cluster
	var err error
	if os.Getenv("SE_EXPLORE") == "attach" {
		c, err = harness.Attach("se-slurmtest", os.Stderr)
	} else {
		c, err = harness.Start(ctx, harness.Options{Name: "se-slurmtest", SlurmConf: testSlurmConf, Log: os.Stderr})
	}
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SE_CAPTURE") != "" {
		script, _ := os.ReadFile("testdata/capture.sh")
		if err := c.WriteFileInHead(ctx, "/tmp/capture.sh", script, 0o755, ""); err != nil {
			t.Fatal(err)
		}
		if out, err := c.Exec(ctx, "/tmp/capture.sh", "/tmp/cap"); err != nil {
			t.Fatal(out, err)
		}
		ls, err := c.Exec(ctx, "ls", "/tmp/cap")
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join("testdata", "scontrol-24.11")
		os.MkdirAll(dir, 0o755)
		for _, f := range strings.Fields(ls) {
			b, err := c.Exec(ctx, "cat", "/tmp/cap/"+f)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, f), []byte(b), 0o644)
		}
	}
	tok, err := c.Token(ctx, "root", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) {
		req, _ := http.NewRequestWithContext(ctx, method, c.RESTURL+path, strings.NewReader(body))
		req.Header.Set("X-SLURM-USER-NAME", "root")
		req.Header.Set("X-SLURM-USER-TOKEN", tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Log(method, path, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s := string(b)
		if len(s) > 3000 {
			s = s[:3000]
		}
		fmt.Printf("=== %s %s %s -> %d\n%s\n", method, path, body, resp.StatusCode, s)
	}
	for _, p := range strings.Split(os.Getenv("SE_PROBE"), ";") {
		f := strings.SplitN(p, " ", 3)
		if len(f) == 2 {
			do(f[0], f[1], "")
		} else if len(f) == 3 {
			do(f[0], f[1], f[2])
		}
	}
	fmt.Println("RESTURL", c.RESTURL, "wrapper", c.ScontrolWrapper())
}
