package pkgtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// manPages: each man page the packages ship and the binary it documents.
var manPages = map[string]string{
	"slurm-elastic.8":          "slurm-elastic",
	"slurm-elastic-health.8":   "slurm-elastic-health",
	"slurm-elastic-hostlist.1": "slurm-elastic-hostlist",
}

// TestManPages renders every page with groff (warnings are errors) and
// checks that it names every command, subcommand and option the binary's
// --help lists, so a new flag cannot ship undocumented.
func TestManPages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built binaries: not run with -short")
	}
	if _, err := exec.LookPath("groff"); err != nil {
		t.Fatalf("the man page test needs groff (Debian package groff-base; make deps): %v", err)
	}
	root, err := filepath.Abs("../..")
	must(t, err)
	binDir := os.Getenv("SE_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join(root, "bin")
	}
	pages, err := filepath.Glob(filepath.Join(root, "packaging/man/*.[0-9]"))
	must(t, err)
	if len(pages) != len(manPages) {
		t.Errorf("packaging/man has %d pages, manPages lists %d: keep them in step", len(pages), len(manPages))
	}
	for page, bin := range manPages {
		t.Run(page, func(t *testing.T) {
			text := renderMan(t, filepath.Join(root, "packaging/man", page))
			exe := filepath.Join(binDir, bin)
			if _, err := os.Stat(exe); err != nil {
				if bin == "slurm-elastic-health" {
					t.Skipf("%s is not built (`make build-health`): %v", bin, err)
				}
				t.Fatalf("%s is not built (`make build`): %v", bin, err)
			}
			for _, item := range cliItems(t, exe, nil) {
				if !containsWord(text, item) {
					t.Errorf("%s does not document %q (from `%s --help`)", page, item, bin)
				}
			}
		})
	}
}

// renderMan renders page as plain text with whitespace collapsed; a groff
// warning fails the test.
func renderMan(t *testing.T, page string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("groff", "-man", "-Tascii", "-ww", "-P-c", "-P-b", "-P-u", "-P-o", page)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("groff %s: %v\n%s", page, err, stderr.String())
	}
	return strings.Join(strings.Fields(stdout.String()), " ")
}

// cliItems walks `exe path... --help` (urfave/cli layout) and returns every
// command path ("conf check") and option ("--once", "-n") it lists, except
// help itself.
func cliItems(t *testing.T, exe string, path []string) []string {
	t.Helper()
	out, err := exec.Command(exe, append(append([]string{}, path...), "--help")...).Output()
	if err != nil {
		t.Fatalf("%s %s --help: %v", exe, strings.Join(path, " "), err)
	}
	var items []string
	section := ""
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, " ") {
			section = strings.TrimSpace(l)
			continue
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch {
		case section == "COMMANDS:":
			name := strings.TrimSuffix(f[0], ",")
			if name == "help" {
				continue
			}
			sub := append(append([]string{}, path...), name)
			items = append(items, strings.Join(sub, " "))
			items = append(items, cliItems(t, exe, sub)...)
		case strings.HasSuffix(section, "OPTIONS:") && strings.HasPrefix(f[0], "-"):
			if flag := strings.TrimSuffix(f[0], ","); flag != "--help" {
				items = append(items, flag)
			}
		}
	}
	return items
}

// containsWord reports whether s has w with no letter, digit or '-' on
// either side.
func containsWord(s, w string) bool {
	return regexp.MustCompile(`(^|[^\w-])` + regexp.QuoteMeta(w) + `($|[^\w-])`).MatchString(s)
}
