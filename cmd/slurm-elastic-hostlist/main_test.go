package main

// Whole-process tests: slurm-elastic-hostlist and `slurm-elastic hostlist`
// give the same stdout, the same error message (after the program name) and
// the same exit code for the same arguments and stdin.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	// Not used directly: it makes `go test`'s cache key cover the code of
	// `slurm-elastic hostlist`, which the test builds and runs as a process.
	_ "github.com/slurm-elastic/slurm-elastic/cmd/internal/admincmd"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds both commands once into a temporary directory, with the
// Makefile's tags, and returns the directory.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "se-hostlist-test-")
		if buildErr != nil {
			return
		}
		tags := os.Getenv("SE_GO_TAGS")
		if tags == "" {
			tags = "remote containers_image_openpgp"
		}
		cmd := exec.Command("go", "build", "-tags", tags, "-o", binDir+"/",
			"github.com/slurm-elastic/slurm-elastic/cmd/slurm-elastic",
			"github.com/slurm-elastic/slurm-elastic/cmd/slurm-elastic-hostlist")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(err.Error() + ": " + string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

type result struct {
	stdout, msg string
	code        int
}

func run(t *testing.T, argv []string, stdin string) result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), msg: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%q: %v", argv, err)
	}
	// The messages differ only in the program's name.
	r.msg = strings.ReplaceAll(r.msg, filepath.Base(argv[0])+": ", "PROG: ")
	return r
}

func TestSameAsSlurmElasticHostlist(t *testing.T) {
	dir := binaries(t)
	big := strings.Repeat("cpu1 cpu3,cpu2\tgpu07\n", 2000) + "x[1]\n"
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
	}{
		{"expand", []string{"expand", "n[00001-00012],m[7-9,11],a[1-2]b[3-4]"}, "", 0},
		{"expand large", []string{"expand", "n[00001-50000],m[00001-50000]"}, "", 0},
		{"expand single", []string{"expand", "cloud1"}, "", 0},
		{"expand after --", []string{"expand", "--", "x[1-3]"}, "", 0},
		{"expand help=false", []string{"expand", "-h=false", "n[1-2]"}, "", 0},
		{"expand unbalanced", []string{"expand", "n[1-"}, "", 2},
		{"expand too many", []string{"expand", "n[1-100000000]"}, "", 2},
		{"expand reversed", []string{"expand", "n[5-1]"}, "", 2},
		{"expand no arg", []string{"expand"}, "", 2},
		{"expand two args", []string{"expand", "a", "b"}, "", 2},
		{"expand flag after arg", []string{"expand", "n1", "--help"}, "", 2},
		{"compress args", []string{"compress", "cloud3,cloud1", "cloud2 gpu01", "gpu02"}, "", 0},
		{"compress stdin", []string{"compress"}, "n3\nn1,n2\n\nm01 m02\n", 0},
		{"compress stdin empty", []string{"compress"}, "", 0},
		{"compress stdin invalid", []string{"compress"}, big, 2},
		{"compress stdin many", []string{"compress"}, strings.Repeat("cpu1 cpu3,cpu2\tgpu07\n", 2000), 0},
		{"compress invalid arg", []string{"compress", "a,b[1]"}, "", 2},
		{"compress bad char", []string{"compress", "a;b"}, "", 2},
		{"unknown flag", []string{"expand", "-x"}, "", 2},
		{"unknown command", []string{"bogus"}, "", 2},
		{"help unknown", []string{"help", "bogus"}, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lean := run(t, append([]string{filepath.Join(dir, "slurm-elastic-hostlist")}, tt.args...), tt.stdin)
			full := run(t, append([]string{filepath.Join(dir, "slurm-elastic"), "hostlist"}, tt.args...), tt.stdin)
			if lean.code != tt.code || full.code != tt.code {
				t.Errorf("exit codes: slurm-elastic-hostlist %d, slurm-elastic hostlist %d; want %d (stderr %q, %q)", lean.code, full.code, tt.code, lean.msg, full.msg)
			}
			if lean.msg != full.msg {
				t.Errorf("messages differ:\nslurm-elastic-hostlist: %q\nslurm-elastic hostlist: %q", lean.msg, full.msg)
			}
			if tt.code != 0 && lean.msg == "" {
				t.Error("failure without a message")
			}
			if tt.code == 0 && lean.stdout == "" {
				t.Error("no output")
			}
			// Usage errors print the command's help, which names the program.
			if !strings.HasPrefix(lean.stdout, "Incorrect Usage") && lean.stdout != full.stdout {
				t.Errorf("stdout differs:\nslurm-elastic-hostlist: %.300q\nslurm-elastic hostlist: %.300q", lean.stdout, full.stdout)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	exe := filepath.Join(binaries(t), "slurm-elastic-hostlist")
	for _, args := range [][]string{nil, {"--help"}, {"-h"}, {"help"}} {
		r := run(t, append([]string{exe}, args...), "")
		if r.code != 0 || !strings.Contains(r.stdout, "expand") || !strings.Contains(r.stdout, "compress") || !strings.Contains(r.stdout, "--version") {
			t.Errorf("%q: code %d, stdout %q", args, r.code, r.stdout)
		}
	}
	for _, args := range [][]string{{"expand", "--help"}, {"help", "expand"}, {"expand", "-h"}} {
		r := run(t, append([]string{exe}, args...), "")
		if r.code != 0 || !strings.Contains(r.stdout, "slurm-elastic-hostlist expand [command options] EXPR") {
			t.Errorf("%q: code %d, stdout %q", args, r.code, r.stdout)
		}
	}
	for _, args := range [][]string{{"--version"}, {"-v"}} {
		r := run(t, append([]string{exe}, args...), "")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "slurm-elastic-hostlist version ") {
			t.Errorf("%q: code %d, stdout %q", args, r.code, r.stdout)
		}
	}
	r := run(t, []string{exe, "--bogus"}, "")
	if r.code != 2 || !strings.Contains(r.msg, "flag provided but not defined: -bogus") || !strings.HasPrefix(r.stdout, "Incorrect Usage") {
		t.Errorf("--bogus: %+v", r)
	}
}
