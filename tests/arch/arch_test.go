// Package arch checks the rules of docs/architecture.md against the code:
// the import rule, the package map, and the house conventions a compiler
// does not check.
package arch

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/slurm-elastic/slurm-elastic"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
	CgoFiles   []string
}

// packages lists every package of the module with its non-test imports.
func packages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", os.Getenv("SE_GO_TAGS"), "-json", module+"/...")
	if os.Getenv("SE_GO_TAGS") == "" {
		cmd = exec.Command("go", "list", "-tags", "remote containers_image_openpgp", "-json", module+"/...")
	}
	cmd.Dir = root(t)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var ps []pkg
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if len(ps) < 20 {
		t.Fatalf("go list found only %d packages", len(ps))
	}
	return ps
}

func root(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// TestImportRule: command wiring (cmd/internal/...) is imported only by
// commands; no product package imports a command or a test package; the
// domain packages import no fake.
func TestImportRule(t *testing.T) {
	fakes := []string{"runtime/runtimefake", "internal/slurm/slurmfake", "nodehealth/gpu/gpufake"}
	for _, p := range packages(t) {
		from := rel(p.ImportPath)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := rel(imp)
			switch {
			case under(to, "cmd") && !under(from, "cmd"):
				t.Errorf("%s imports %s: only commands (cmd/...) may import command wiring", from, to)
			case under(to, "tests") && !under(from, "tests"):
				t.Errorf("%s imports %s: product code never imports tests/...", from, to)
			case under(to, "packaging") && !under(from, "tests") && !under(from, "packaging"):
				t.Errorf("%s imports %s", from, to)
			}
			for _, f := range fakes {
				if to == f && !under(from, "tests") {
					t.Errorf("%s imports the fake %s outside its tests", from, to)
				}
			}
		}
	}
}

// TestMapListsEveryPackage: docs/architecture.md's map names every package
// directory (by its last path element under its parent's entry, or whole).
func TestMapListsEveryPackage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "docs/architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "```\n")
	end := strings.Index(doc[start+4:], "```")
	if start < 0 || end < 0 {
		t.Fatal("docs/architecture.md: no package map (a ``` block)")
	}
	m := doc[start+4 : start+4+end]
	// Rebuild full paths from the indented tree: an entry "name/" at
	// indent i is a child of the last entry with a smaller indent.
	listed := map[string]bool{}
	type level struct {
		indent int
		path   string
	}
	var stack []level
	entry := regexp.MustCompile(`^( *)([A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*)/(?:\s|$)`)
	for _, line := range strings.Split(m, "\n") {
		g := entry.FindStringSubmatch(line)
		if g == nil {
			continue
		}
		indent, name := len(g[1]), g[2]
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		path := name
		if len(stack) > 0 {
			path = stack[len(stack)-1].path + "/" + name
		}
		listed[path] = true
		stack = append(stack, level{indent, path})
	}
	for _, p := range packages(t) {
		if r := rel(p.ImportPath); !listed[r] {
			t.Errorf("docs/architecture.md: the package map does not list %s/", r)
		}
	}
}

// TestOneErrorLogKey: errors are logged under "error", never "err".
func TestOneErrorLogKey(t *testing.T) {
	bad := regexp.MustCompile(`"err",\s`)
	for _, p := range packages(t) {
		for _, f := range append(p.GoFiles, p.CgoFiles...) {
			b, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if loc := bad.FindIndex(b); loc != nil {
				t.Errorf("%s/%s:%d: log key \"err\": write \"error\"", rel(p.ImportPath), f, bytes.Count(b[:loc[0]], []byte("\n"))+1)
			}
		}
	}
}
