package packaged

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestDocsTokenSteps keeps the token steps the packaged test runs in the docs that tell
// admins to run them.
func TestDocsTokenSteps(t *testing.T) {
	docs, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{docsTokenNew, docsTokenSet} {
		if !strings.Contains(string(docs), "\n"+step+"\n") {
			t.Errorf("docs/operations.md lacks the line %q", step)
		}
	}
}

func TestParseShippedUnit(t *testing.T) {
	b, err := os.ReadFile("../../packaging/systemd/slurm-elastic.service")
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.ExecStart, []string{"/usr/bin/slurm-elastic", "--config", "/etc/slurm-elastic/config.yaml", "daemon"}) ||
		u.User != "slurm" || u.Group != "slurm" || u.UMask != "0027" {
		t.Fatalf("parsed %+v", u)
	}
	want := []string{"runuser", "-u", "slurm", "-g", "slurm", "--", "/bin/sh", "-c", `umask "$1" && shift && exec "$@"`, "sh", "0027",
		"/usr/bin/slurm-elastic", "--config", "/etc/slurm-elastic/config.yaml", "daemon"}
	if got := u.command(); !slices.Equal(got, want) {
		t.Fatalf("command %q, want %q", got, want)
	}
}

func TestParseUnitErrors(t *testing.T) {
	for name, text := range map[string]string{
		"no ExecStart":  "[Service]\nUser=slurm\n",
		"no User":       "[Service]\nExecStart=/usr/bin/x daemon\n",
		"quoted":        "[Service]\nUser=slurm\nExecStart=/usr/bin/x \"a b\"\n",
		"variable":      "[Service]\nUser=slurm\nExecStart=/usr/bin/x $OPTS\n",
		"two ExecStart": "[Service]\nUser=slurm\nExecStart=/usr/bin/x\nExecStart=/usr/bin/y\n",
		"other section": "[Unit]\nExecStart=/usr/bin/x\n[Service]\nUser=slurm\n",
	} {
		if u, err := parseUnit(text); err == nil {
			t.Errorf("%s: parsed %+v, want an error", name, u)
		}
	}
	u, err := parseUnit("[Service]\nUser=slurm\nExecStart=-/usr/bin/x  a\tb\n")
	if err != nil || !slices.Equal(u.ExecStart, []string{"/usr/bin/x", "a", "b"}) {
		t.Errorf("prefixed ExecStart: %+v %v", u, err)
	}
}

func TestRetag(t *testing.T) {
	for in, want := range map[string]string{
		"localhost/slurm-elastic-node:24.11": "localhost/slurm-elastic-node:t",
		"localhost/slurm-elastic-node":       "localhost/slurm-elastic-node:t",
		"registry:5000/site/node":            "registry:5000/site/node:t",
		"registry:5000/site/node:24.11-cuda": "registry:5000/site/node:t",
	} {
		if got := retag(in, "t"); got != want {
			t.Errorf("retag(%q) = %q, want %q", in, got, want)
		}
	}
}
