package hostlist

// Differential tests against the real Slurm: `scontrol show hostnames EXPR`
// for Expand and `scontrol show hostlist NAMES` for Compress, on the unit
// test tables and a few hundred inputs from a seeded generator (a third of
// them with -short). They fail, naming the package slurm-client, when there
// is no scontrol.
//
// scontrol comes from $HOSTLIST_SCONTROL, else PATH, else /usr/bin/scontrol
// (Debian package slurm-client, Slurm 22.05). It runs with
// SLURM_CONF=testdata/slurm.conf, the least configuration it starts with
// offline, and no other SLURM_* variables.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type scontrol struct {
	path string
	env  []string
}

func findScontrol(t *testing.T) *scontrol {
	t.Helper()
	path := os.Getenv("HOSTLIST_SCONTROL")
	if path == "" {
		path = "/usr/bin/scontrol"
		if p, err := exec.LookPath("scontrol"); err == nil {
			path = p
		}
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("scontrol not found (%v): the oracle tests compare Expand and Compress with "+
			"Slurm 22.05's scontrol; install the package slurm-client (apt-get install slurm-client) "+
			"or set HOSTLIST_SCONTROL to an scontrol binary", err)
	}
	conf, err := filepath.Abs(filepath.Join("testdata", "slurm.conf"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"SLURM_CONF=" + conf}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLURM_") {
			env = append(env, kv)
		}
	}
	s := &scontrol{path: path, env: env}
	out, _, err := s.run("--version")
	if err != nil {
		t.Fatalf("%s --version: %v", path, err)
	}
	t.Logf("oracle: %s (%s)", path, strings.TrimSpace(out))
	if !strings.Contains(out, "22.05") {
		t.Logf("note: expected Slurm 22.05; other versions may differ in details")
	}
	// The configuration must be usable, or every case would "fail" alike.
	if out, errOut, err := s.run("show", "hostnames", "a[1-2]"); err != nil || out != "a1\na2\n" {
		t.Fatalf("scontrol with SLURM_CONF=%s does not work: %v\nstdout: %s\nstderr: %s", conf, err, out, errOut)
	}
	return s
}

func (s *scontrol) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.path, args...)
	cmd.Env = s.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// hostnames runs `scontrol show hostnames expr`; ok is false when scontrol
// rejects the expression (it prints "Invalid hostlist" to stderr and still
// exits 0).
func (s *scontrol) hostnames(expr string) (names []string, ok bool, diag string) {
	out, errOut, err := s.run("--", "show", "hostnames", expr) // "--": expr may start with '-'

	if err != nil || strings.Contains(errOut, "Invalid hostlist") {
		return nil, false, strings.TrimSpace(errOut + " " + fmt.Sprint(err))
	}
	if out == "" {
		return nil, true, errOut
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n"), true, errOut
}

func (s *scontrol) hostlist(expr string) (string, bool, string) {
	out, errOut, err := s.run("--", "show", "hostlist", expr)
	if err != nil || strings.Contains(errOut, "Invalid hostlist") {
		return "", false, strings.TrimSpace(errOut + " " + fmt.Sprint(err))
	}
	return strings.TrimSuffix(out, "\n"), true, errOut
}

// parallel runs f(i) for i in [0, n) on all CPUs.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// gen produces hostlist expressions and name lists from a seeded PRNG.
type gen struct{ r *rand.Rand }

func (g gen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

// lit is literal name text, possibly empty, possibly ending in digits.
func (g gen) lit(min int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	const all = letters + letters + "0123456789.-_"
	n := min + g.r.IntN(5)
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i == 0 {
			b.WriteByte(letters[g.r.IntN(len(letters))])
		} else {
			b.WriteByte(all[g.r.IntN(len(all))])
		}
	}
	if g.r.IntN(4) == 0 {
		b.WriteString(g.pick("0", "00", "1", "01", "000"))
	}
	return b.String()
}

func (g gen) num() uint64 {
	switch g.r.IntN(10) {
	case 0:
		return uint64(g.r.IntN(3)) + g.pick64(9, 99, 999, 9999, 99999)
	case 1:
		return uint64(65530 + g.r.IntN(10))
	case 2:
		return uint64(g.r.IntN(1 << 20))
	case 3:
		return 18446744073709551600 + uint64(g.r.IntN(10))
	default:
		return uint64(g.r.IntN(130))
	}
}

func (g gen) pick64(v ...uint64) uint64 { return v[g.r.IntN(len(v))] }

// group is a valid bracket group with about maxCount values at most.
func (g gen) group(maxCount int) string {
	n := 1 + g.r.IntN(4)
	parts := make([]string, n)
	for i := range parts {
		lo := g.num()
		pad := 0
		if g.r.IntN(3) == 0 {
			pad = 1 + g.r.IntN(4)
		}
		los := fmt.Sprintf("%0*d", pad+len(strconv.FormatUint(lo, 10)), lo)
		if g.r.IntN(3) == 0 {
			parts[i] = los
			continue
		}
		span := uint64(g.r.IntN(1 + maxCount/n))
		hi := lo + span
		if hi < lo || hi == 1<<64-1 {
			hi = lo
		}
		his := strconv.FormatUint(hi, 10)
		if g.r.IntN(6) == 0 {
			his = "0" + his // a padded upper bound: its width is ignored
		}
		parts[i] = los + "-" + his
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func (g gen) elem() string {
	switch g.r.IntN(6) {
	case 0:
		return g.lit(1) // a plain name
	case 1, 2, 3:
		return g.lit(0) + g.group(300)
	case 4:
		return g.lit(0) + g.group(8) + g.lit(0) + g.group(20)
	default:
		return g.lit(1) + g.group(3) + g.lit(0) + g.group(3) + g.lit(1) + g.group(4)
	}
}

func (g gen) expr() string {
	n := 1 + g.r.IntN(5)
	var b strings.Builder
	if g.r.IntN(8) == 0 {
		b.WriteString(g.pick(" ", "\t", "  "))
	}
	var prev []string
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(g.pick(",", ",", ",", " ", "\t", ", ", " ,", " , ", "\t,\t"))
		}
		e := g.elem()
		if len(prev) > 0 && g.r.IntN(5) == 0 {
			e = prev[g.r.IntN(len(prev))] // a duplicate element
		}
		prev = append(prev, e)
		b.WriteString(e)
	}
	if g.r.IntN(8) == 0 {
		b.WriteString(g.pick(" ", "\t"))
	}
	return b.String()
}

// invalid turns a valid expression into one both Slurm and Expand reject.
func (g gen) invalid() string {
	e := g.lit(1)
	switch g.r.IntN(9) {
	case 0:
		lo := 1 + g.r.IntN(1000)
		return e + fmt.Sprintf("[%d-%d]", lo, lo-1-g.r.IntN(lo))
	case 1:
		return e + g.group(10) + g.lit(1)
	case 2:
		return e + "[" + g.pick("1a", "a", "0x1", "1-b", "x", "1-2-3", "--1", "-1") + "]"
	case 3:
		return e + g.pick("[]", "[1,,2]", "[,1]", "[1,]")
	case 4:
		lo := g.r.IntN(1000)
		return e + fmt.Sprintf("[%d-%d]", lo, lo+65536+g.r.IntN(100000))
	case 5:
		return e + "[[1-2]]"
	case 6:
		return e + "[0-65535," + strconv.Itoa(g.r.IntN(9)) + "]" + g.lit(0) + "[1-2]"
	case 7:
		return e + "[1-2]]"
	default:
		return g.lit(0) + "[3-1]" + g.lit(0) + "[1-2]"
	}
}

// names is a list of valid names exercising Compress: runs, shuffles,
// duplicates, mixed padding, names without or with only digits.
func (g gen) names() []string {
	var out []string
	prefixes := []string{g.lit(1), g.lit(1), g.lit(0), "n", "nid00"}
	n := 1 + g.r.IntN(60)
	for len(out) < n {
		p := prefixes[g.r.IntN(len(prefixes))]
		switch g.r.IntN(8) {
		case 0:
			out = append(out, g.lit(1)+g.pick("", "x", ".a", "-b")) // may lack digits
		case 1:
			if len(out) > 0 {
				out = append(out, out[g.r.IntN(len(out))]) // duplicate
				continue
			}
			fallthrough
		case 2, 3, 4: // a run
			lo := g.num()
			w := len(strconv.FormatUint(lo, 10)) + g.r.IntN(3)
			for k := 0; k < 1+g.r.IntN(12) && lo+uint64(k) < 1<<64-1; k++ {
				out = append(out, fmt.Sprintf("%s%0*d", p, w, lo+uint64(k)))
			}
		case 5: // widths that may or may not combine
			v := uint64(g.pick64(8, 9, 10, 99, 100, 998, 999, 1000))
			for k := 0; k < 3; k++ {
				out = append(out, fmt.Sprintf("%s%0*d", p, 1+g.r.IntN(5), v+uint64(k)))
			}
		default:
			out = append(out, fmt.Sprintf("%s%d", p, g.num()))
		}
	}
	// A trailing number of 2^64-1 or more is where Compress deliberately
	// differs (scontrol clamps it, merging different names); see
	// compressTests.
	out = slices.DeleteFunc(out, func(name string) bool {
		i := len(name)
		for i > 0 && isDigit(name[i-1]) {
			i--
		}
		v, err := strconv.ParseUint(name[i:], 10, 64)
		return i < len(name) && (err != nil || v == 1<<64-1)
	})
	if len(out) == 0 {
		out = append(out, "n1")
	}
	if g.r.IntN(3) == 0 {
		g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return out
}

const (
	oracleSeed        = 22_05_08
	oracleValid       = 300 // generated valid expressions (a third with -short)
	oracleInvalid     = 60  // generated invalid ones
	oracleCompress    = 200 // generated name lists
	maxReportedErrors = 20
)

// oracleCount scales the generated cases down with -short; the seed stays
// the same, so -short runs a prefix of the full set.
func oracleCount(n int) int {
	if testing.Short() {
		return n / 3
	}
	return n
}

func TestOracleExpand(t *testing.T) {
	sc := findScontrol(t)
	g := gen{rand.New(rand.NewPCG(oracleSeed, 1))}

	type tcase struct {
		expr  string
		valid bool // Expand must accept it
	}
	var cases []tcase
	for _, tc := range expandTests {
		if len(tc.want) <= 70000 { // skip only the 1M-name case
			cases = append(cases, tcase{tc.expr, true})
		}
	}
	for _, tc := range errorTests {
		if !tc.slurmAccepts && !strings.Contains(tc.expr, "\x00") { // NUL cannot be passed
			cases = append(cases, tcase{tc.expr, false})
		}
	}
	for i := 0; i < oracleCount(oracleValid); i++ {
		cases = append(cases, tcase{g.expr(), true})
	}
	for i := 0; i < oracleCount(oracleInvalid); i++ {
		cases = append(cases, tcase{g.invalid(), false})
	}

	type result struct {
		names []string
		ok    bool
		diag  string
	}
	results := make([]result, len(cases))
	parallel(len(cases), func(i int) {
		n, ok, d := sc.hostnames(cases[i].expr)
		results[i] = result{n, ok, d}
	})

	failures := 0
	fail := func(format string, args ...any) {
		failures++
		if failures <= maxReportedErrors {
			t.Errorf(format, args...)
		}
	}
	var total int
	for i, tc := range cases {
		want := results[i]
		got, err := Expand(tc.expr)
		switch {
		case tc.valid && err != nil:
			fail("Expand(%q): %v (generated as valid)", tc.expr, err)
		case !tc.valid && err == nil:
			fail("Expand(%q) accepted an invalid expression: %s", tc.expr, abbrev(got))
		case err == nil && !want.ok:
			fail("Expand(%q) = %s but scontrol rejects it: %s", tc.expr, abbrev(got), want.diag)
		case err != nil && want.ok:
			fail("Expand(%q): %v but scontrol accepts it: %s", tc.expr, err, abbrev(want.names))
		case err == nil && !slices.Equal(got, want.names):
			fail("Expand(%q) = %s\nscontrol show hostnames = %s", tc.expr, abbrev(got), abbrev(want.names))
		}
		total += len(got)
	}
	if failures > 0 {
		t.Errorf("%d of %d expressions differ from scontrol", failures, len(cases))
	}
	t.Logf("%d expressions (%d names) agree with scontrol show hostnames", len(cases)-failures, total)
}

func TestOracleCompress(t *testing.T) {
	sc := findScontrol(t)
	g := gen{rand.New(rand.NewPCG(oracleSeed, 2))}

	var cases [][]string
	for _, tc := range compressTests {
		if len(tc.names) > 0 && !slices.ContainsFunc(tc.names, func(n string) bool {
			return strings.HasSuffix(n, "18446744073709551615") || strings.HasSuffix(n, "99999999999999999999999")
		}) {
			cases = append(cases, tc.names)
		}
	}
	for _, tc := range expandTests {
		if len(tc.want) > 0 && len(tc.want) <= 20 {
			cases = append(cases, tc.want)
		}
	}
	for i := 0; i < oracleCount(oracleCompress); i++ {
		cases = append(cases, g.names())
	}
	// A large input still within the 128 KiB limit of one argument.
	big := seq("n", 1, 15000, 5)
	g.r.Shuffle(len(big)/3, func(i, j int) { big[i], big[j] = big[j], big[i] })
	cases = append(cases, big)

	results := make([]string, len(cases))
	oks := make([]bool, len(cases))
	parallel(len(cases), func(i int) {
		results[i], oks[i], _ = sc.hostlist(strings.Join(cases[i], ","))
	})
	failures := 0
	for i, names := range cases {
		got := Compress(names)
		if !oks[i] || got != results[i] {
			failures++
			if failures <= maxReportedErrors {
				t.Errorf("Compress(%s) = %q\nscontrol show hostlist = %q (ok=%v)", abbrev(names), got, results[i], oks[i])
			}
		}
		// And the result expands back to the names.
		nonEmpty := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "" })
		if back, err := Expand(got); err != nil || !slices.Equal(back, nonEmpty) {
			t.Errorf("Expand(Compress(%s)) = %s, %v", abbrev(names), abbrev(back), err)
		}
	}
	if failures > 0 {
		t.Errorf("%d of %d name lists differ from scontrol", failures, len(cases))
	}
	t.Logf("%d name lists agree with scontrol show hostlist", len(cases)-failures)
}

// TestOracleLarge compares the benchmark input in full.
func TestOracleLarge(t *testing.T) {
	sc := findScontrol(t)
	const expr = "n[00001-50000],m[00001-50000]"
	want, ok, diag := sc.hostnames(expr)
	if !ok {
		t.Fatalf("scontrol rejects %q: %s", expr, diag)
	}
	got, err := Expand(expr)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Expand(%q) = %s, %v; scontrol %s", expr, abbrev(got), err, abbrev(want))
	}
}

// TestOracleStricter documents the inputs scontrol accepts and Expand rejects:
// it checks that scontrol still accepts each of them (usually with a result
// nobody means) and logs what scontrol makes of it.
func TestOracleStricter(t *testing.T) {
	sc := findScontrol(t)
	var cases []string
	for _, tc := range errorTests {
		// scontrol would print billions of names for the cap cases.
		if tc.slurmAccepts && tc.kind != ErrTooManyHosts {
			cases = append(cases, tc.expr)
		}
	}
	type result struct {
		names []string
		ok    bool
		diag  string
	}
	results := make([]result, len(cases))
	parallel(len(cases), func(i int) {
		n, ok, d := sc.hostnames(cases[i])
		results[i] = result{n, ok, d}
	})
	for i, expr := range cases {
		if _, err := Expand(expr); err == nil {
			t.Errorf("Expand(%q) accepted it", expr)
		}
		if !results[i].ok {
			t.Errorf("scontrol rejects %q (%s): mark it slurmAccepts=false", expr, results[i].diag)
			continue
		}
		t.Logf("scontrol accepts %.60q -> %.80q", expr, abbrev(results[i].names))
	}
}
