package resume

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/internal/nodelog"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// A node whose instance exits at once: its log is kept before the
// instance is removed, and the node's DOWN reason says where to read it.
// A node that launched keeps no log.
func TestResumeKeepsLogOfFailedInstance(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	e.rt.SetLog("cloud1", "slurmd: fatal: Unable to determine this slurmd's NodeName\n")
	e.rt.SetExitOnStart("cloud1", true)
	if err := Resume(context.Background(), e.d, []string{"cloud1", "cloud2"}, nil); err == nil {
		t.Fatal("want an error for cloud1")
	}
	files, err := nodelog.Read(e.d.Config.StateDir, "cloud1")
	if err != nil || len(files) != 1 {
		t.Fatalf("saved logs of cloud1: %d, %v", len(files), err)
	}
	for _, want := range []string{"Unable to determine this slurmd's NodeName", "# why:       launch failed: ", "# image:     node:1"} {
		if !bytes.Contains(files[0].Data, []byte(want)) {
			t.Errorf("saved log lacks %q:\n%s", want, files[0].Data)
		}
	}
	sn := e.node(t, "cloud1")
	if sn.State != slurm.StateDown || !strings.HasPrefix(sn.Reason, "slurm-elastic: (Code:Config) ") || !strings.HasSuffix(sn.Reason, "(log: slurm-elastic logs cloud1)") {
		t.Errorf("cloud1: %s %q, want DOWN with the Config reason ending with where the log is", sn.State, sn.Reason)
	}
	if _, err := nodelog.Read(e.d.Config.StateDir, "cloud2"); !errors.Is(err, nodelog.ErrNone) {
		t.Errorf("cloud2 launched fine but a log was kept: %v", err)
	}
	if n := len(e.instances(t)); n != 1 {
		t.Errorf("%d instances, want cloud2's only", n)
	}
}

// Resume-fail keeps the log of the instance it removes and says where.
func TestResumeFailKeepsLog(t *testing.T) {
	e := newEnv(t, runtimefake.Options{})
	ctx := context.Background()
	if err := Resume(ctx, e.d, []string{"cloud1"}, nil); err != nil {
		t.Fatal(err)
	}
	e.rt.SetLog("cloud1", "slurmd: error: Unable to register: Zero Bytes were transmitted or received\n")
	if err := ResumeFail(ctx, e.d, []string{"cloud1", "cloud2"}); err != nil {
		t.Fatal(err)
	}
	files, err := nodelog.Read(e.d.Config.StateDir, "cloud1")
	if err != nil || !bytes.Contains(files[len(files)-1].Data, []byte("Unable to register")) || !bytes.Contains(files[len(files)-1].Data, []byte("ResumeTimeout")) {
		t.Fatalf("saved log of cloud1: %v\n%v", err, files)
	}
	if r := e.node(t, "cloud1").Reason; !strings.Contains(r, "(Code:ResumeTimeout)") || !strings.HasSuffix(r, "(log: slurm-elastic logs cloud1)") {
		t.Errorf("cloud1 reason %q, want ResumeTimeout ending with where the log is", r)
	}
	// cloud2 had no instance: no log, no hint.
	if r := e.node(t, "cloud2").Reason; strings.Contains(r, "slurm-elastic logs") {
		t.Errorf("cloud2 reason %q names a log that does not exist", r)
	}
	if n := len(e.instances(t)); n != 0 {
		t.Fatalf("%d instances left", n)
	}
}
