package exec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/nodehealth"
)

// A check program another user could change is never run (it would run
// as root): the check is Unknown with a message naming the file and the
// fix. Fixed, it runs.
func TestScriptPermissions(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir, prog string)
		want  []string
	}{
		{"group-writable program", func(t *testing.T, _, prog string) { chmod(t, prog, 0o775) }, []string{"check.sh: mode 0775 is group- or world-writable", "chmod go-w "}},
		{"world-writable directory", func(t *testing.T, dir, _ string) { chmod(t, dir, 0o777) }, []string{": mode 0777 is group- or world-writable", "chmod go-w " + ""}},
		{"program of another user", func(t *testing.T, _, prog string) {
			if os.Geteuid() == 0 {
				chown(t, prog, 65534)
				return
			}
			setEUID(t, os.Geteuid()+1) // the file is then someone else's
		}, []string{"check.sh: owned by uid ", "chown root "}},
		{"link to a program in a writable directory", func(t *testing.T, dir, prog string) {
			other := filepath.Join(t.TempDir(), "real")
			chmod(t, filepath.Dir(other), 0o777)
			if err := os.Rename(prog, other); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, prog); err != nil {
				t.Fatal(err)
			}
		}, []string{"mode 0777 is group- or world-writable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker := filepath.Join(t.TempDir(), "ran")
			prog := filepath.Join(dir, "check.sh")
			if err := os.WriteFile(prog, []byte("#!"+sh(t)+"\ntouch "+marker+"\necho ok\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir, prog)
			fs := (&Script{CheckName: "custom", Argv: []string{prog}}).Run(context.Background())
			if len(fs) != 1 || fs[0].Status != nodehealth.Unknown || !strings.Contains(fs[0].Message, "not run") {
				t.Fatalf("got %+v, want Unknown: not run", fs)
			}
			for _, w := range tc.want {
				if !strings.Contains(fs[0].Message, w) {
					t.Errorf("message %q lacks %q", fs[0].Message, w)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the untrusted program was run")
			}
		})
	}
	// Owned by root (or this user), 0755 in a 0755 directory: it runs.
	dir := t.TempDir()
	chmod(t, dir, 0o755)
	prog := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(prog, []byte("#!"+sh(t)+"\necho fine\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if fs := (&Script{CheckName: "custom", Argv: []string{prog}}).Run(context.Background()); len(fs) != 1 || fs[0].Status != nodehealth.OK {
		t.Fatalf("trusted program: %+v", fs)
	}
}

func chmod(t *testing.T, p string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, p string, uid int) {
	t.Helper()
	if err := os.Chown(p, uid, -1); err != nil {
		t.Fatal(err)
	}
}

func setEUID(t *testing.T, uid int) {
	old := geteuid
	geteuid = func() int { return uid }
	t.Cleanup(func() { geteuid = old })
}
