package reconcile

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// A corrupt events.json or reconcile-state.json (a crash before the data
// reached the disk) is logged, kept aside for the admin and the daemon
// starts afresh; the files written next are whole.
func TestCorruptStateFilesAreMovedAside(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	dir := w.cfg.StateDir
	for name, bad := range map[string]string{EventsFile: "", StateFile: `{"powering_up_since":`} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(bad), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	r, err := New(Deps{Config: w.cfg, Runtimes: map[string]runtime.Runtime{"fake": w.rt}, Slurm: w.sc, Now: w.clock.Now, Log: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadState(dir); err != nil {
		t.Fatalf("LoadState on corrupt files: %v", err)
	}
	for _, name := range []string{EventsFile, StateFile} {
		p := filepath.Join(dir, name)
		if aside, _ := filepath.Glob(p + ".corrupt-*"); len(aside) != 1 {
			t.Errorf("%s not kept aside: %v", name, aside)
		}
		if !strings.Contains(buf.String(), p) {
			t.Errorf("log does not name %s:\n%s", p, buf.String())
		}
	}
	if !strings.Contains(buf.String(), `"level":"ERROR"`) {
		t.Errorf("not logged as an ERROR:\n%s", buf.String())
	}
	if err := r.SaveState(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEvents(dir); err != nil {
		t.Fatal(err)
	}
}
