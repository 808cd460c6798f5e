package admincmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
)

// The admin CLI exits with the one table: bad usage 2, a bad config 3.
func TestMainExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(bad, []byte("cluster: t\n"), 0o640); err != nil { // no groups: invalid
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"version", []string{"--version"}, exitcode.OK},
		{"unknown flag", []string{"--bogus", "status"}, exitcode.Usage},
		{"unknown subcommand flag", []string{"conf", "check", "--bogus"}, exitcode.Usage},
		{"unknown hostlist command", []string{"hostlist", "bogus"}, exitcode.Usage},
		{"invalid config", []string{"--config", bad, "conf", "check"}, exitcode.Config},
		{"unreadable config", []string{"--config", filepath.Join(t.TempDir(), "none.yaml"), "conf", "check"}, exitcode.Config},
		{"moved key", []string{"--config", writeMoved(t), "conf", "check"}, exitcode.Config},
	} {
		var out, errb bytes.Buffer
		if got := Main(context.Background(), append([]string{"slurm-elastic"}, c.args...), &out, &errb); got != c.want {
			t.Errorf("%s: exit %d, want %d (stderr %q)", c.name, got, c.want, errb.String())
		}
	}
}

func writeMoved(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("daemon:\n  breaker_threshold: 5\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}
