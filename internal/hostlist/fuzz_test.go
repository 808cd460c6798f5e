package hostlist

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// fuzzLimit keeps each fuzz execution small; the cap logic is the same for
// any limit.
const fuzzLimit = 4096

func FuzzExpand(f *testing.F) {
	for _, tc := range expandTests {
		if len(tc.expr) < 200 {
			f.Add(tc.expr)
		}
	}
	for _, tc := range errorTests {
		if len(tc.expr) < 200 {
			f.Add(tc.expr)
		}
	}
	f.Add("n[1-40000],n[40001-80000]")
	f.Add("a[0-1]b[0-1]c[0-1]d[0-1]e[0-1]f[0-1]g[0-1]h[0-1]i[0-1]j[0-1]k[0-1]l[0-1]m[0-1]")
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := ExpandLimit(expr, fuzzLimit)
		if err != nil {
			checkErrorInvariants(t, expr, err)
			if names != nil {
				t.Fatalf("names returned with error %v", err)
			}
			if errors.Is(err, ErrTooManyHosts) {
				return
			}
			// A syntax error found under a small cap is the same under the
			// largest cap (parsing stops at the first error either way).
			if _, err2 := Expand(expr); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Expand(%q) = %v, but ExpandLimit(%d): %v", expr, err2, fuzzLimit, err)
			}
			return
		}
		// The cap: at most fuzzLimit names, and exactly len(names) needed.
		if len(names) > fuzzLimit {
			t.Fatalf("%d names, cap %d", len(names), fuzzLimit)
		}
		if len(names) > 1 {
			if _, err := ExpandLimit(expr, len(names)-1); !errors.Is(err, ErrTooManyHosts) {
				t.Fatalf("ExpandLimit(%q, %d) = %v, want ErrTooManyHosts", expr, len(names)-1, err)
			}
		}
		if strings.Trim(expr, " \t") == "" {
			if names != nil {
				t.Fatalf("blank expression gave %q", names)
			}
			return
		}
		if len(names) == 0 {
			t.Fatalf("non-blank expression %q gave no names and no error", expr)
		}
		for _, n := range names {
			if err := ValidName(n); err != nil {
				t.Fatalf("Expand(%q) gave invalid name: %v", expr, err)
			}
		}
		// Compress keeps order and duplicates, so expanding it again gives
		// the same list; a second round trip gives the same string.
		c := Compress(names)
		again, err := ExpandLimit(c, fuzzLimit)
		if err != nil {
			t.Fatalf("Expand(Compress(Expand(%q))) via %q: %v", expr, c, err)
		}
		if !slices.Equal(again, names) {
			t.Fatalf("Expand(Compress(Expand(%q))) via %q = %q, want %q", expr, c, again, names)
		}
		if c2 := Compress(again); c2 != c {
			t.Fatalf("Compress not stable: %q then %q", c, c2)
		}
	})
}

// FuzzCompress feeds Compress arbitrary valid names (split from the input).
func FuzzCompress(f *testing.F) {
	for _, tc := range compressTests {
		if len(tc.names) < 100 {
			f.Add(strings.Join(tc.names, " "))
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		var names []string
		for _, n := range strings.Fields(s) {
			if ValidName(n) == nil {
				names = append(names, n)
			}
		}
		c := Compress(names)
		// The streaming form agrees, also when asked halfway.
		var cw Compressor
		for i, n := range names {
			cw.Add(n)
			if i == len(names)/2 {
				if got, want := cw.String(), Compress(names[:i+1]); got != want {
					t.Fatalf("Compressor after %q = %q, want %q", names[:i+1], got, want)
				}
			}
		}
		if got := cw.String(); got != c {
			t.Fatalf("Compressor(%q) = %q, Compress = %q", names, got, c)
		}
		if len(names) == 0 {
			if c != "" {
				t.Fatalf("Compress(nothing) = %q", c)
			}
			return
		}
		back, err := Expand(c)
		if err != nil {
			t.Fatalf("Expand(Compress(%q)) via %q: %v", names, c, err)
		}
		// Names whose trailing number does not fit in 64 bits stay
		// verbatim; all others come back exactly.
		if !slices.Equal(back, names) {
			t.Fatalf("Expand(Compress(%q)) via %q = %q", names, c, back)
		}
	})
}
