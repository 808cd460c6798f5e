package admincmd

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/internal/nodelog"
)

// `slurm-elastic logs NODE` prints the node's saved logs, the older first;
// none saved is exit 1 with a message saying where it looked; a bad name
// is a usage error.
func TestLogsCommand(t *testing.T) {
	cfgPath, stateDir := stateDirWithRound(t)
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"slurm-elastic", "--config", cfgPath, "logs", "cloud1"}, &out, &errb); code != exitcode.Failed ||
		!strings.Contains(errb.String(), "node cloud1: no saved log in "+stateDir+"/nodelogs") {
		t.Fatalf("logs with none saved: exit %d, stderr %q", code, errb.String())
	}
	for _, tail := range []string{"boot one\n", "boot two\n"} {
		if _, err := nodelog.Save(stateDir, nodelog.Entry{Node: "cloud1", Why: "launch failed", ID: "c0ffee", Tail: []byte(tail)}); err != nil {
			t.Fatal(err)
		}
	}
	got := runApp(t, "--config", cfgPath, "logs", "cloud1")
	one, two := strings.Index(got, "boot one"), strings.Index(got, "boot two")
	if one < 0 || two < one || !strings.Contains(got, "==> "+stateDir+"/nodelogs/cloud1.log <==") || !strings.Contains(got, "# instance:  c0ffee") {
		t.Errorf("logs output:\n%s", got)
	}
	errb.Reset()
	if code := Main(context.Background(), []string{"slurm-elastic", "--config", cfgPath, "logs", "../etc"}, &out, &errb); code != exitcode.Usage {
		t.Errorf("logs ../etc: exit %d (%s), want %d", code, errb.String(), exitcode.Usage)
	}
	if code := Main(context.Background(), []string{"slurm-elastic", "--config", cfgPath, "logs"}, &out, &errb); code != exitcode.Usage {
		t.Errorf("logs without NODE: exit %d, want %d", code, exitcode.Usage)
	}
}
