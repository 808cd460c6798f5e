package admincmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
)

// A corrupt breaker.json must not make `breaker reset` (the admin's way
// out) fail: it is moved aside and rebuilt.
func TestBreakerResetOnCorruptFile(t *testing.T) {
	cfgPath, stateDir := stateDirWithRound(t)
	for _, bad := range []string{"", "{\"groups\":", `{"groups":{"cloud":null}}`} {
		p := filepath.Join(stateDir, breaker.File)
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if out := runApp(t, "--config", cfgPath, "breaker"); !strings.Contains(out, "cloud  closed") {
			t.Fatalf("%q: breaker list:\n%s", bad, out)
		}
		if out := runApp(t, "--config", cfgPath, "breaker", "reset", "--all"); !strings.Contains(out, "cloud: failure count cleared") {
			t.Fatalf("%q: reset --all:\n%s", bad, out)
		}
		if st, err := breaker.Load(stateDir); err != nil || st.Get("cloud").RearmedBy != "command" {
			t.Fatalf("%q: after reset: %+v %v", bad, st, err)
		}
	}
	if aside, _ := filepath.Glob(filepath.Join(stateDir, breaker.File+".corrupt-*")); len(aside) != 2 {
		t.Fatalf("want the 2 corrupt files kept aside, got %v", aside)
	}
}
