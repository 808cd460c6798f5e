package hostlist

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func seq(prefix string, lo, hi, width int) []string {
	var out []string
	for i := lo; i <= hi; i++ {
		out = append(out, fmt.Sprintf("%s%0*d", prefix, width, i))
	}
	return out
}

func cat(parts ...[]string) []string { return slices.Concat(parts...) }

func strs(s ...string) []string { return s }

// Expected values below were checked against `scontrol show hostnames` of
// Slurm 22.05; the oracle test rechecks the whole table.
var expandTests = []struct {
	expr string
	want []string
}{
	// Empty input.
	{"", nil},
	{"   ", nil},
	{"\t \t", nil},

	// Plain names, separators and whitespace: comma, space and tab all
	// separate; runs of blanks with at most one comma count as one.
	{"n1", strs("n1")},
	{"a,b", strs("a", "b")},
	{"a b\tc", strs("a", "b", "c")},
	{" n1 , n2 ", strs("n1", "n2")},
	{"a ,b, c \t,\t d", strs("a", "b", "c", "d")},
	{"a,b a", strs("a", "b", "a")}, // duplicates kept
	{"b,a,b", strs("b", "a", "b")}, // no sorting
	{"a.b-c_d", strs("a.b-c_d")},
	{"node-1.cluster_x", strs("node-1.cluster_x")},
	{"123", strs("123")},
	{"-a", strs("-a")},
	{"A1,z9", strs("A1", "z9")},

	// Ranges.
	{"n[1-4,7]", strs("n1", "n2", "n3", "n4", "n7")},
	{"n[7,1-2,1]", strs("n7", "n1", "n2", "n1")},
	{"n[5]", strs("n5")},
	{"n[5-5]", strs("n5")},
	{"n[0]", strs("n0")},
	{"[1-3]", strs("1", "2", "3")},
	{"n[8-10]", strs("n8", "n9", "n10")},
	{"n[98-101]", strs("n98", "n99", "n100", "n101")},

	// Zero padding comes from the width of the range's start.
	{"n[001-010]", seq("n", 1, 10, 3)},
	{"n[01-2]", strs("n01", "n02")},
	{"n[1-02]", strs("n1", "n2")},
	{"n[098-101]", strs("n098", "n099", "n100", "n101")},
	{"n[00-01,5,007]", strs("n00", "n01", "n5", "n007")},
	{"nid0000[2-4]", strs("nid00002", "nid00003", "nid00004")},
	{"n[0000000000000000000000001-2]", strs("n0000000000000000000000001", "n0000000000000000000000002")},
	{"n[18446744073709551613-18446744073709551614]", strs("n18446744073709551613", "n18446744073709551614")},

	// Several groups: the last varies fastest, then the first, second, ...
	{"r[1-2]n[1-3]", strs("r1n1", "r1n2", "r1n3", "r2n1", "r2n2", "r2n3")},
	{"a[1-2][3-4]", strs("a13", "a14", "a23", "a24")},
	{"[1-2]x[3-4]", strs("1x3", "1x4", "2x3", "2x4")},
	{"n[1-2]-x[5-6]", strs("n1-x5", "n1-x6", "n2-x5", "n2-x6")},
	{"r[01-02]n[9-10]", strs("r01n9", "r01n10", "r02n9", "r02n10")},
	{"a[1-2]b[3-4]c[5-6]", strs(
		"a1b3c5", "a1b3c6", "a2b3c5", "a2b3c6", "a1b4c5", "a1b4c6", "a2b4c5", "a2b4c6")},
	{"a[1-2]b[3-4]c[5-6]d[7-8]", strs(
		"a1b3c5d7", "a1b3c5d8", "a2b3c5d7", "a2b3c5d8", "a1b4c5d7", "a1b4c5d8", "a2b4c5d7", "a2b4c5d8",
		"a1b3c6d7", "a1b3c6d8", "a2b3c6d7", "a2b3c6d8", "a1b4c6d7", "a1b4c6d8", "a2b4c6d7", "a2b4c6d8")},
	{"a[1,3]b[7]c[1-2]", strs("a1b7c1", "a1b7c2", "a3b7c1", "a3b7c2")},

	// Mixed lists.
	{"n[1-2],m3 x[01-02]\tn1", strs("n1", "n2", "m3", "x01", "x02", "n1")},
	{"gpu[1-2],gpu[2-3]", strs("gpu1", "gpu2", "gpu2", "gpu3")},

	// Largest single range.
	{"n[0-65535]", seq("n", 0, 65535, 0)},
	{"n[00001-50000],m[00001-50000]", cat(seq("n", 1, 50000, 5), seq("m", 1, 50000, 5))},
	// A group before the last may have up to 65536 values.
	{"a[0-65535]b[1]", func() []string {
		var out []string
		for i := 0; i <= 65535; i++ {
			out = append(out, fmt.Sprintf("a%db1", i))
		}
		return out
	}()},
}

func TestExpand(t *testing.T) {
	for _, tc := range expandTests {
		got, err := Expand(tc.expr)
		if err != nil {
			t.Errorf("Expand(%q): unexpected error %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Expand(%q) = %s, want %s", tc.expr, abbrev(got), abbrev(tc.want))
		}
		for _, name := range got {
			if err := ValidName(name); err != nil {
				t.Errorf("Expand(%q) produced invalid name: %v", tc.expr, err)
				break
			}
		}
	}
}

func abbrev(s []string) string {
	if len(s) > 12 {
		return fmt.Sprintf("%q...(%d names)...%q", s[:6], len(s), s[len(s)-3:])
	}
	return fmt.Sprintf("%q", s)
}

var errorTests = []struct {
	expr         string
	kind         error
	pos          int
	part         string
	slurmAccepts bool // scontrol 22.05 accepts it (we are stricter)
}{
	// Top-level empty elements.
	{",", ErrEmpty, 0, ",", true},
	{",a", ErrEmpty, 0, ",", true},
	{"a,", ErrEmpty, 1, ",", true},
	{"a, ", ErrEmpty, 1, ",", true},
	{"a,,b", ErrEmpty, 2, ",", true},
	{"a , , b", ErrEmpty, 4, ",", true},

	// Brackets.
	{"n[1-2", ErrUnbalanced, 1, "[1-2", true},
	{"n[1-2,m3", ErrUnbalanced, 1, "[1-2", true},
	{"n[1-2 m3", ErrUnbalanced, 1, "[1-2", true},
	{"n1]", ErrUnbalanced, 2, "]", true},
	{"]", ErrUnbalanced, 0, "]", true},
	{"[", ErrUnbalanced, 0, "[", true},
	{"n[[1-2]]", ErrUnbalanced, 2, "[", false},
	{"n[1-2]]", ErrUnbalanced, 6, "]", false},
	{"a[1-2b[3]", ErrUnbalanced, 6, "[", true},
	{"n[1-2]x", ErrTrailingText, 6, "x", false},
	{"r[1-2]n3", ErrTrailingText, 6, "n3", false},
	{"a[1]b[2]c", ErrTrailingText, 8, "c", false},

	// Empty ranges.
	{"n[]", ErrEmpty, 1, "[]", false},
	{"n[1,,2]", ErrEmpty, 1, "[1,,2]", false},
	{"n[,1]", ErrEmpty, 1, "[,1]", false},
	{"n[1,]", ErrEmpty, 1, "[1,]", false},

	// Bad ranges.
	{"n[a-b]", ErrBadRange, 2, "a-b", false},
	{"n[1a]", ErrBadRange, 2, "1a", false},
	{"n[0x1]", ErrBadRange, 2, "0x1", false},
	{"n[-1]", ErrBadRange, 2, "-1", false},
	{"n[1-]", ErrBadRange, 2, "1-", true},
	{"n[1--2]", ErrBadRange, 2, "1--2", false},
	{"n[1-2-3]", ErrBadRange, 2, "1-2-3", false},
	{"n[+1]", ErrBadRange, 2, "+1", true},
	{"n[1-+3]", ErrBadRange, 2, "1-+3", true},
	{"n[1, 2]", ErrBadRange, 4, " 2", true},
	{"n[ 1]", ErrBadRange, 2, " 1", true},
	{"n[1 - 2]", ErrBadRange, 2, "1 - 2", true},
	{"n[1,2x]", ErrBadRange, 4, "2x", false},
	{"n[18446744073709551615]", ErrBadRange, 2, "18446744073709551615", true},
	{"n[99999999999999999999]", ErrBadRange, 2, "99999999999999999999", true},
	{"n[1-99999999999999999999]", ErrBadRange, 2, "1-99999999999999999999", false},

	// Descending.
	{"n[3-1]", ErrDescending, 2, "3-1", false},
	{"n[1,10-09]", ErrDescending, 4, "10-09", false},
	{"a[2-1]b[1]", ErrDescending, 2, "2-1", false},

	// Sizes.
	{"n[0-65536]", ErrRangeTooLarge, 2, "0-65536", false},
	{"n[1-4294967296]", ErrRangeTooLarge, 2, "1-4294967296", false},
	{"a[0-65535,0]b[1]", ErrRangeTooLarge, 1, "[0-65535,0]", false},
	{"a[1-2]b[1-40000,1-40000]c[1]", ErrRangeTooLarge, 7, "[1-40000,1-40000]", false},

	// Characters Slurm would take into a name but no host name has.
	{"a\nb", ErrInvalidChar, 1, "\n", true},
	{"n1\n", ErrInvalidChar, 2, "\n", true},
	{"a/b", ErrInvalidChar, 1, "/", true},
	{"a:b", ErrInvalidChar, 1, ":", true},
	{"node@1", ErrInvalidChar, 4, "@", true},
	{"n\u00e9", ErrInvalidChar, 1, "\xc3", true},
	{"x[1]y\x00", ErrInvalidChar, 5, "\x00", false},
	{"a;b", ErrInvalidChar, 1, ";", true},

	// Name length.
	{strings.Repeat("a", MaxNameLen+1), ErrNameTooLong, 0, strings.Repeat("a", MaxNameLen+1), true},
	{strings.Repeat("a", MaxNameLen-1) + "[1-10]", ErrNameTooLong, 0, strings.Repeat("a", MaxNameLen-1) + "[1-10]", true},
	{"n[" + strings.Repeat("0", MaxNameLen) + "1]", ErrNameTooLong, 0, "n[" + strings.Repeat("0", MaxNameLen) + "1]", true},

	// Host cap.
	{"a[0-65535]b[0-65535]", ErrTooManyHosts, 0, "a[0-65535]b[0-65535]", true},
	{"a[0-1023]b[0-1024]", ErrTooManyHosts, 0, "a[0-1023]b[0-1024]", true},
	{"x,a[0-1023]b[0-1023]", ErrTooManyHosts, 2, "a[0-1023]b[0-1023]", true},
	{"a[0-65535]b[0-65535]c[0-65535]d[0-65535]e[0-65535]", ErrTooManyHosts, 0, "a[0-65535]b[0-65535]c[0-65535]d[0-65535]e[0-65535]", true},
}

func TestExpandErrors(t *testing.T) {
	for _, tc := range errorTests {
		got, err := Expand(tc.expr)
		if err == nil {
			t.Errorf("Expand(%q) = %s, want error %v", tc.expr, abbrev(got), tc.kind)
			continue
		}
		if got != nil {
			t.Errorf("Expand(%q) returned names with an error", tc.expr)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Expand(%q): error %T is not *Error", tc.expr, err)
			continue
		}
		if !errors.Is(err, tc.kind) {
			t.Errorf("Expand(%q): error %v, want kind %v", tc.expr, err, tc.kind)
		}
		if e.Expr != tc.expr || e.Pos != tc.pos || e.Part != tc.part {
			t.Errorf("Expand(%q): error at %d %q, want at %d %q (%v)", tc.expr, e.Pos, e.Part, tc.pos, tc.part, err)
		}
		checkErrorInvariants(t, tc.expr, err)
	}
}

// checkErrorInvariants checks what every error must satisfy.
func checkErrorInvariants(t testing.TB, expr string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not *Error", err, err)
	}
	known := false
	for _, k := range []error{ErrUnbalanced, ErrInvalidChar, ErrEmpty, ErrBadRange, ErrDescending,
		ErrRangeTooLarge, ErrTrailingText, ErrNameTooLong, ErrTooManyHosts} {
		if errors.Is(err, k) {
			known = true
		}
	}
	if !known {
		t.Fatalf("error %v wraps no sentinel", err)
	}
	if e.Expr != expr {
		t.Fatalf("error names expression %q, want %q", e.Expr, expr)
	}
	if e.Pos < 0 || e.Pos+len(e.Part) > len(expr) || expr[e.Pos:e.Pos+len(e.Part)] != e.Part {
		t.Fatalf("error part %q at %d is not in %q", e.Part, e.Pos, expr)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "hostlist ") || !strings.Contains(msg, fmt.Sprintf("offset %d", e.Pos)) {
		t.Fatalf("message %q lacks the expression or offset", msg)
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Expand("n[1-4],m[9-3]")
	want := `hostlist "n[1-4],m[9-3]": descending range "9-3" at offset 9 (Slurm rejects ranges whose start is above their end)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// A long expression is cut to a window around the offending part.
	long := strings.Repeat("node1,", 1000) + "bad]" + strings.Repeat(",node2", 1000)
	_, err = Expand(long)
	if err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), "bad]") ||
		!strings.Contains(err.Error(), "offset 6003") {
		t.Errorf("long expression error: %v", err)
	}
}

func TestExpandLimit(t *testing.T) {
	for _, tc := range []struct {
		expr  string
		limit int
		n     int // want this many names, or -1 for ErrTooManyHosts
	}{
		{"n[1-10]", 10, 10},
		{"n[1-10]", 9, -1},
		{"n[1-5],m[1-5]", 10, 10},
		{"n[1-5],m[1-6]", 10, -1},
		{"a,b,c", 2, -1},
		{"a,b", 2, 2},
		{"r[1-4]n[1-4]", 16, 16},
		{"r[1-4]n[1-4]", 15, -1},
		{"n[1-10]", 0, 10},                  // <= 0 means MaxHosts
		{"n[1-10]", -1, 10},                 // <= 0 means MaxHosts
		{"a[0-1023]b[0-1024]", 1 << 30, -1}, // clamped to MaxHosts
		{"a[0-1023]b[0-1023]", 1 << 30, 1 << 20},
		{"", 1, 0},
	} {
		got, err := ExpandLimit(tc.expr, tc.limit)
		if tc.n < 0 {
			if !errors.Is(err, ErrTooManyHosts) {
				t.Errorf("ExpandLimit(%q, %d) = %d names, %v; want ErrTooManyHosts", tc.expr, tc.limit, len(got), err)
			}
			continue
		}
		if err != nil || len(got) != tc.n {
			t.Errorf("ExpandLimit(%q, %d) = %d names, %v; want %d", tc.expr, tc.limit, len(got), err, tc.n)
		}
	}
}

// The caps must be enforced before the names are allocated: a huge
// expression costs no more memory than a small one.
func TestCapsCheckedBeforeAllocating(t *testing.T) {
	for _, expr := range []string{
		"a[0-65535]b[0-65535]c[0-65535]d[0-65535]e[0-65535]f[0-65535]",
		"n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535],n[0-65535]",
		strings.Repeat("a", 250) + "[00000-65535]" + "[0-65535]",
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Expand(expr)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("Expand(%.40q...) succeeded", expr)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
			t.Errorf("Expand(%.40q...) allocated %d bytes before failing: %v", expr, d, err)
		}
	}
	// The byte cap: 1M names of 200 bytes would be 200 MB.
	long := strings.Repeat("x", 190) + "[0-1023]y[0-1023]"
	if _, err := Expand(long); !errors.Is(err, ErrTooManyHosts) || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("byte cap: %v", err)
	}
	// ...while the same count of short names is fine.
	if got, err := Expand("x[0-1023]y[0-1023]"); err != nil || len(got) != 1<<20 {
		t.Errorf("1M short names: %d, %v", len(got), err)
	}
}

// Expected values checked against `scontrol show hostlist` (Slurm 22.05).
var compressTests = []struct {
	names []string
	want  string
}{
	{nil, ""},
	{strs(), ""},
	{strs("n1"), "n1"},
	{strs("x"), "x"},
	{strs("n1", "n2", "n3"), "n[1-3]"},
	{strs("n3", "n1", "n2"), "n[3,1-2]"},
	{strs("n1", "n1", "n2"), "n[1,1-2]"},
	{strs("n1", "n1"), "n[1,1]"},
	{strs("b", "a", "b"), "b,a,b"},
	{strs("n1", "m1", "n2"), "n1,m1,n2"},
	{strs("n01", "n1", "n2"), "n[01,1-2]"},
	{strs("n9", "n10", "n09"), "n[9-10,09]"},
	{strs("n8", "n9", "n10", "n011"), "n[8-10,011]"},
	{strs("n99", "n100"), "n[99-100]"},
	{strs("n099", "n100"), "n[099-100]"},
	{strs("n0", "n00", "n000"), "n[0,00,000]"},
	{strs("n1", "n001"), "n[1,001]"},
	{strs("n001", "n002", "n3"), "n[001-002,3]"},
	{strs("a1b", "a2b"), "a1b,a2b"},
	{strs("a", "a1", "a2"), "a,a[1-2]"},
	{strs("1", "2", "3", "a", "a1", "b1", "b2", "00", "01"), "[1-3],a,a1,b[1-2],[00-01]"},
	{strs("abc.def1", "abc.def2"), "abc.def[1-2]"},
	{strs("x-1", "x-2", "x_3"), "x-[1-2],x_3"},
	{strs("nid00002", "nid00003"), "nid[00002-00003]"},
	{strs("r1n1", "r1n2", "r2n1", "r2n2"), "r1n[1-2],r2n[1-2]"},
	{strs("a", "", "b"), "a,b"},
	{strs("n18446744073709551613", "n18446744073709551614"), "n[18446744073709551613-18446744073709551614]"},
	// Not below 2^64-1: kept as a plain name (scontrol would clamp it).
	{strs("n18446744073709551615", "n99999999999999999999999"), "n18446744073709551615,n99999999999999999999999"},
	{seq("n", 1, 15000, 5), "n[00001-15000]"},
}

func TestCompress(t *testing.T) {
	for _, tc := range compressTests {
		if got := Compress(tc.names); got != tc.want {
			t.Errorf("Compress(%s) = %q, want %q", abbrev(tc.names), got, tc.want)
		}
	}
}

// Expand(Compress(names)) gives names back, in order, with duplicates.
func TestRoundTrip(t *testing.T) {
	for _, tc := range compressTests {
		var want []string
		for _, n := range tc.names {
			if n != "" && ValidName(n) == nil {
				want = append(want, n)
			}
		}
		if len(want) != len(tc.names) {
			continue
		}
		got, err := Expand(Compress(tc.names))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Expand(Compress(%s)) = %s, %v", abbrev(tc.names), abbrev(got), err)
		}
	}
	for _, tc := range expandTests {
		c := Compress(tc.want)
		got, err := Expand(c)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Expand(Compress(Expand(%q))) via %q = %s, %v", tc.expr, c, abbrev(got), err)
		}
	}
}

// Compress reproduces scontrol even where the result does not expand again:
// a run longer than 65536 is printed as one range, which Slurm refuses.
func TestCompressLongRun(t *testing.T) {
	names, err := Expand("n[1-40000],n[40001-80000]")
	if err != nil {
		t.Fatal(err)
	}
	c := Compress(names)
	if c != "n[1-80000]" {
		t.Fatalf("Compress = %q", c)
	}
	if _, err := Expand(c); !errors.Is(err, ErrRangeTooLarge) {
		t.Errorf("Expand(%q): %v", c, err)
	}
}

func TestValidName(t *testing.T) {
	for _, name := range []string{"n1", "a", "A-b_c.d", "123", "node-001.cluster", "-", strings.Repeat("x", MaxNameLen)} {
		if err := ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
	for _, tc := range []struct {
		name string
		kind error
		pos  int
	}{
		{"", ErrEmpty, 0},
		{"n[1-2]", ErrInvalidChar, 1},
		{"n1]", ErrInvalidChar, 2},
		{"a,b", ErrInvalidChar, 1},
		{"a b", ErrInvalidChar, 1},
		{"a\tb", ErrInvalidChar, 1},
		{"a\n", ErrInvalidChar, 1},
		{"a/b", ErrInvalidChar, 1},
		{"h\u00e9", ErrInvalidChar, 1},
		{strings.Repeat("x", MaxNameLen+1), ErrNameTooLong, 0},
	} {
		err := ValidName(tc.name)
		var e *Error
		if !errors.Is(err, tc.kind) || !errors.As(err, &e) || e.Pos != tc.pos || e.Expr != tc.name {
			t.Errorf("ValidName(%q) = %v, want %v at %d", tc.name, err, tc.kind, tc.pos)
		}
	}
}

func TestFmtLenSum(t *testing.T) {
	for _, tc := range []struct {
		lo, hi uint64
		w      int
	}{
		{0, 0, 0}, {0, 9, 1}, {0, 10, 1}, {8, 101, 2}, {5, 12345, 3}, {0, 1000, 7},
		{18446744073709551600, 18446744073709551614, 1}, {9999999999999999990, 10000000000000000010, 3},
	} {
		var want uint64
		for v := tc.lo; ; v++ {
			want += uint64(fmtLen(v, tc.w))
			if v == tc.hi {
				break
			}
		}
		if got := fmtLenSum(tc.lo, tc.hi, tc.w); got != want {
			t.Errorf("fmtLenSum(%d, %d, %d) = %d, want %d", tc.lo, tc.hi, tc.w, got, want)
		}
	}
}

func TestExpandFunc(t *testing.T) {
	collect := func(expr string, max int) ([]string, error) {
		var got []string
		err := ExpandFunc(expr, max, func(b []byte) error {
			got = append(got, string(b))
			return nil
		})
		return got, err
	}
	for _, tc := range expandTests {
		got, err := collect(tc.expr, 0)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ExpandFunc(%q) = %s, %v; want %s", tc.expr, abbrev(got), err, abbrev(tc.want))
		}
	}
	// Invalid expressions and the cap fail before fn is called.
	for _, tc := range errorTests {
		got, err := collect(tc.expr, 0)
		if !errors.Is(err, tc.kind) || len(got) != 0 {
			t.Errorf("ExpandFunc(%q) = %d names, %v; want %v", tc.expr, len(got), err, tc.kind)
		}
	}
	if got, err := collect("a,n[1-5]", 5); !errors.Is(err, ErrTooManyHosts) || len(got) != 0 {
		t.Errorf("cap: %d names, %v", len(got), err)
	}
	// fn's error stops the walk, from any depth, and comes back unchanged.
	stop := errors.New("stop")
	for _, expr := range []string{"a,b,c,d", "n[1-10]", "r[1-3]x[1-3]y[1-3]", "n[1-2,5-9]"} {
		for k := 1; k <= 3; k++ {
			calls := 0
			err := ExpandFunc(expr, 0, func([]byte) error {
				calls++
				if calls == k {
					return stop
				}
				return nil
			})
			if err != stop || calls != k {
				t.Errorf("ExpandFunc(%q) stopping at %d: %d calls, %v", expr, k, calls, err)
			}
		}
	}
}

// ExpandFunc touches no memory per name: the point of it.
func TestExpandFuncAllocs(t *testing.T) {
	n := 0
	allocs := testing.AllocsPerRun(5, func() {
		n = 0
		if err := ExpandFunc(benchExpr, 0, func([]byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	})
	if n != 100000 || allocs > 20 {
		t.Errorf("%d names, %v allocs per run", n, allocs)
	}
}

// A Compressor gives Compress's result for every prefix of the input, and
// String does not disturb later Adds.
func TestCompressor(t *testing.T) {
	for _, tc := range compressTests {
		if len(tc.names) > 100 {
			continue
		}
		var c Compressor
		if got := c.String(); got != "" {
			t.Errorf("zero Compressor = %q", got)
		}
		for i, name := range tc.names {
			c.Add(name)
			if got, want := c.String(), Compress(tc.names[:i+1]); got != want {
				t.Errorf("Compressor after %q = %q, want %q", tc.names[:i+1], got, want)
			}
		}
	}
}
