package reason

import (
	"strings"
	"testing"
)

// A hint (where the saved log is) survives a message too long for Max.
func TestWithHintKeepsHint(t *testing.T) {
	hint := "log: slurm-elastic logs cloud1"
	for _, msg := range []string{"short", strings.Repeat("é long message ", 40)} {
		r := Format(DeadNode, WithHint(DeadNode, msg, hint))
		if len(r) > Max || !strings.HasSuffix(r, "("+hint+")") || !Has(r, DeadNode) {
			t.Errorf("msg of %d bytes: reason %q (%d bytes), want <= %d bytes ending with the hint", len(msg), r, len(r), Max)
		}
	}
}
