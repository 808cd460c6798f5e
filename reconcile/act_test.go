package reconcile

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
)

// TestEveryKindHasAnActuator: every Kind constant is in Kinds and has an
// actuator, so a new kind cannot be logged "reconciled" and do nothing.
func TestEveryKindHasAnActuator(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "decide.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []Kind
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Kind" {
				for _, v := range vs.Values {
					declared = append(declared, Kind(strings.Trim(v.(*ast.BasicLit).Value, `"`)))
				}
			}
		}
	}
	if len(declared) < 10 {
		t.Fatalf("found only %d Kind constants in decide.go", len(declared))
	}
	for _, k := range declared {
		if !slices.Contains(Kinds, k) {
			t.Errorf("kind %s is not in Kinds (the order actions are taken)", k)
		}
		if a, ok := actuators[k]; !ok || a.run == nil || a.did == "" {
			t.Errorf("kind %s has no actuator", k)
		}
	}
	if len(actuators) != len(declared) {
		t.Errorf("%d actuators for %d kinds", len(actuators), len(declared))
	}
}

// An action of a kind without an actuator fails, logged and kept as a
// failed event; it never passes as reconciled.
func TestUnknownKindIsAnError(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	errs := w.r.act(context.Background(), &view{}, []Action{{Kind: "bogus", Node: "c1", Group: "g", Saw: "test"}})
	if len(errs) != 1 || !errors.Is(errs[0], errNoActuator) {
		t.Fatalf("errors %v, want one wrapping errNoActuator", errs)
	}
	ev := w.r.Events.Events()
	if len(ev) != 1 || !strings.HasPrefix(ev[0].Did, "failed: ") || ev[0].Error == "" {
		t.Fatalf("events %+v", ev)
	}
}
