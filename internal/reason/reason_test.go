package reason

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestEveryCodeIsRegistered: every Code constant of this package has a
// registry entry, and every code the code base writes into a reason — a
// "(Code:X)" literal anywhere, or reason.X — is registered. No other
// package declares reason codes (a Code* string constant).
func TestEveryCodeIsRegistered(t *testing.T) {
	fset := token.NewFileSet()
	own, err := parser.ParseFile(fset, "reason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{} // identifier -> value
	for _, d := range own.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for i, n := range vs.Names {
				v, _ := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				consts[n.Name] = v
			}
		}
	}
	if len(consts) < 10 {
		t.Fatalf("found only %d Code constants in reason.go", len(consts))
	}
	for n, v := range consts {
		if i, ok := Lookup(Code(v)); !ok || i.Owner == "" || i.Meaning == "" || i.Family == "" {
			t.Errorf("code %s (%q) is not registered with owner, family and meaning", n, v)
		}
	}
	if len(Registered()) != len(consts) {
		t.Errorf("%d registered codes, %d Code constants", len(Registered()), len(consts))
	}

	literal := regexp.MustCompile(`\(Code:([A-Za-z]+)\)`)
	codeConst := regexp.MustCompile(`^Code[A-Z]`)
	seen := 0
	root, _ := filepath.Abs("../..")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "node_modules" || (strings.HasPrefix(n, ".") && p != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BasicLit:
				// Unit tests may write foreign codes on purpose; the e2e
				// tests (tests/) check the real reasons.
				if x.Kind == token.STRING && (!strings.HasSuffix(p, "_test.go") || strings.Contains(p, "/tests/")) {
					for _, m := range literal.FindAllStringSubmatch(x.Value, -1) {
						seen++
						if _, ok := Lookup(Code(m[1])); !ok {
							t.Errorf("%s: reason code %q is not registered", fset.Position(x.Pos()), m[1])
						}
					}
				}
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "reason" && ast.IsExported(x.Sel.Name) {
					if _, isCode := consts[x.Sel.Name]; isCode {
						seen++
					}
				}
			case *ast.ValueSpec:
				if filepath.Base(filepath.Dir(p)) != "reason" {
					for _, id := range x.Names {
						if codeConst.MatchString(id.Name) && len(x.Values) > 0 {
							if _, ok := x.Values[0].(*ast.BasicLit); ok {
								t.Errorf("%s: %s declares a reason code outside internal/reason", fset.Position(id.Pos()), id.Name)
							}
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 20 {
		t.Fatalf("saw only %d reason codes in use: the walk is broken", seen)
	}
}

func TestFormatParse(t *testing.T) {
	long := strings.Repeat("é", 200)
	for _, c := range Registered() {
		r := Format(c.Code, "two\nlines "+long)
		p := Parse(r)
		if len(r) > Max || strings.Contains(r, "\n") || p.Code != c.Code || p.Owner != c.Owner || p.Family != c.Family || !Ours(r) {
			t.Errorf("Format(%s) = %q (%d bytes), parsed %+v", c.Code, r, len(r), p)
		}
	}
	for r, want := range map[string]Owner{
		"":                                      Other,
		"admin: disk swap":                      Other,
		"slurm-elastic: (Code:NoSuch) x":        Other,
		"slurm-elastic: no code":                Other,
		FormatHealth("gpu", "gpu0: Xid 79"):     Health,
		Format(DeadNode, "x"):                   Reconciler,
		Format(Capacity, "node c1: no room"):    Hooks,
		"slurm-elastic: (Code:Config) template": Hooks,
	} {
		if got := Parse(r).Owner; got != want {
			t.Errorf("Parse(%q).Owner = %s, want %s", r, got, want)
		}
	}
	if p := Parse(FormatHealth("gpu", "gpu0: Xid 79")); p.Check != "gpu" || p.Msg != "gpu0: Xid 79" {
		t.Errorf("health reason parsed %+v", p)
	}
	if Retryable(Config) || Retryable(ResumeTimeout) || Retryable(UnknownNode) || !Retryable(Transient) || !Retryable(BreakerOpen) {
		t.Error("retryable codes differ from the hooks' markDown before the registry")
	}
}
