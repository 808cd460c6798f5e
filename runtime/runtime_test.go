package runtime

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestClassOf(t *testing.T) {
	cfg := Errorf(ClassConfig, "image %s not found", "x:1")
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ""},
		{"direct", cfg, ClassConfig},
		{"wrapped", fmt.Errorf("node n1: %w", cfg), ClassConfig},
		{"joined", errors.Join(errors.New("other"), Errorf(ClassCapacity, "full")), ClassCapacity},
		{"unclassified", errors.New("boom"), ClassTransient},
		{"deadline", context.DeadlineExceeded, ClassTransient},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.err); got != tt.want {
			t.Errorf("%s: ClassOf = %q, want %q", tt.name, got, tt.want)
		}
	}
	if cfg.Error() != "image x:1 not found" {
		t.Errorf("message %q carries more than the cause", cfg.Error())
	}
	if r := (Result{Err: cfg}); r.Class() != ClassConfig {
		t.Errorf("Result.Class = %q", r.Class())
	}
}
