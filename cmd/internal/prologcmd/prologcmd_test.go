package prologcmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The prolog's own part never fails a job: a bad config, a bad node list,
// nodes of no group all return 0 at once and say why in the log.
func TestMainNeverFailsTheJob(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "se.log")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("cluster: \"Bad Name!\"\nlog: {file: "+logf+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rc := Main(context.Background(), []string{Program}, env(map[string]string{"SLURM_ELASTIC_CONFIG": bad, "SLURM_JOB_ID": "5", "SLURM_JOB_NODELIST": "c1"})); rc != 0 {
		t.Fatalf("bad config: exit %d, want 0", rc)
	}
	b, _ := os.ReadFile(logf)
	if !strings.Contains(string(b), "configuration is invalid: the job is not waited for") || !strings.Contains(string(b), `"job":"5"`) {
		t.Fatalf("log:\n%s", b)
	}
	if rc := Main(context.Background(), []string{Program, "--bogus"}, env(nil)); rc != 2 {
		t.Fatalf("unexpected argument: exit %d, want 2", rc)
	}
}
