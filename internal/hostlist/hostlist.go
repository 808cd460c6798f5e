// Package hostlist expands and compresses Slurm hostlist expressions such as
// "n[001-004,7],gpu[1-2]x[1-3]" the way Slurm 22.05 does
// (`scontrol show hostnames` / `scontrol show hostlist`).
//
// # Syntax accepted by Expand
//
// An expression is a list of elements separated by commas, spaces or tabs
// (Slurm's separators). Runs of spaces and tabs, with at most one comma among
// them, separate two elements; leading and trailing spaces/tabs are ignored.
//
// An element is a host name made of name characters (ASCII letters, digits,
// '.', '-' and '_') and bracket groups. A bracket group holds a comma
// separated list of numbers and ranges, "[1-4,7]". The width of a range's
// lower bound sets the zero padding of every number in the range, so
// "[001-010]" gives 001..010 and "[8-10]" gives 8, 9, 10. If an element has
// bracket groups, the last one must end the element (Slurm rejects
// "n[1-2]x"). Several groups form a cartesian product in Slurm's order: the
// last group varies fastest, then the first, second, ... up to the
// next-to-last group, which varies slowest. For two groups this is the
// natural order: "r[1-2]n[1-3]" gives r1n1 r1n2 r1n3 r2n1 r2n2 r2n3; for
// three it is not: "a[1-2]b[3-4]c[5-6]" gives a1b3c5 a1b3c6 a2b3c5 a2b3c6
// a1b4c5 a1b4c6 a2b4c5 a2b4c6. Numbers go up to 2^64-2.
//
// Order and duplicates are kept exactly as written; nothing is sorted.
//
// # Differences from scontrol
//
// For every expression Expand accepts, the result equals what
// `scontrol show hostnames` prints. Expand is stricter where Slurm silently
// produces odd names or guesses: unbalanced brackets ("n[1-2" gives "n]" in
// Slurm), empty elements (",,", a leading or trailing comma), characters
// outside the name set (including '\n', which Slurm keeps inside a name),
// spaces or signs inside brackets ("n[1, 2]" gives n1 n02 in Slurm), "[1-]",
// numbers of 2^64-1 and above (Slurm clamps them), names longer than
// MaxNameLen, and expansions above the host and byte caps (MaxHosts,
// MaxBytes). Like Slurm it rejects nested brackets, descending ranges, ranges
// of more than 65536 hosts, a bracket group other than the last that expands
// to more than 65536 values, and text after the last bracket group.
//
// Each error is an *Error that names the expression, the byte offset and the
// offending part, and wraps one of the Err* sentinels (use errors.Is).
package hostlist

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

const (
	// MaxHosts is the most host names Expand returns. ExpandLimit can lower
	// it, not raise it. The check runs before anything is allocated.
	MaxHosts = 1 << 20

	// MaxBytes caps the total length of the names one expansion produces
	// (not counting the slice headers). It is checked before allocating.
	MaxBytes = 64 << 20

	// MaxNameLen is the longest host name accepted, in bytes.
	MaxNameLen = 255

	// MaxRange is the most hosts one range may cover ("n[0-65535]" is the
	// largest), as Slurm's MAX_RANGE. Slurm applies the same limit to the
	// total of a bracket group that is not the last one of its element.
	MaxRange = 64 * 1024
)

// Sentinel errors; every error returned by this package wraps one of them.
var (
	ErrUnbalanced    = errors.New("unbalanced bracket")
	ErrInvalidChar   = errors.New("invalid character")
	ErrEmpty         = errors.New("empty element")
	ErrBadRange      = errors.New("bad range")
	ErrDescending    = errors.New("descending range")
	ErrRangeTooLarge = errors.New("range too large")
	ErrTrailingText  = errors.New("text after the last bracket group")
	ErrNameTooLong   = errors.New("host name too long")
	ErrTooManyHosts  = errors.New("expansion too large")
)

// Error describes a malformed hostlist expression or host name.
type Error struct {
	Expr string // the whole expression (or the name, for ValidName)
	Pos  int    // byte offset in Expr where Part starts
	Part string // the offending part of Expr
	Err  error  // the kind of problem: one of the Err* sentinels
	Msg  string // optional detail
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("hostlist ")
	b.WriteString(quoteShort(e.Expr, e.Pos))
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Part != "" {
		b.WriteByte(' ')
		b.WriteString(quoteShort(e.Part, 0))
	}
	fmt.Fprintf(&b, " at offset %d", e.Pos)
	if e.Msg != "" {
		b.WriteString(" (")
		b.WriteString(e.Msg)
		b.WriteByte(')')
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// quoteShort quotes s, cutting it to a window around pos when it is long.
func quoteShort(s string, pos int) string {
	const max = 96
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	lo := pos - max/2
	if lo < 0 {
		lo = 0
	}
	hi := lo + max
	if hi > len(s) {
		hi = len(s)
		lo = hi - max
	}
	pre, post := "", ""
	if lo > 0 {
		pre = "..."
	}
	if hi < len(s) {
		post = "..."
	}
	return fmt.Sprintf("%s%q%s", pre, s[lo:hi], post)
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '-' || c == '_'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// ValidName reports whether name is a single host name Expand could produce:
// 1 to MaxNameLen bytes of ASCII letters, digits, '.', '-' and '_'.
func ValidName(name string) error {
	if name == "" {
		return &Error{Expr: name, Err: ErrEmpty, Msg: "host name is empty"}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isNameChar(c) {
			continue
		}
		e := &Error{Expr: name, Pos: i, Part: name[i : i+1], Err: ErrInvalidChar}
		switch {
		case c == '[' || c == ']':
			e.Msg = "a host name cannot contain brackets; use Expand for expressions"
		case c == ',' || isSpace(c):
			e.Msg = "a host name cannot contain separators; use Expand for lists"
		default:
			e.Msg = "allowed are ASCII letters, digits, '.', '-' and '_'"
		}
		return e
	}
	if len(name) > MaxNameLen {
		return &Error{Expr: name, Pos: 0, Part: name, Err: ErrNameTooLong,
			Msg: fmt.Sprintf("%d bytes, limit %d", len(name), MaxNameLen)}
	}
	return nil
}

// Expand returns the host names of a hostlist expression, in the order and
// with the duplicates `scontrol show hostnames` prints. An expression without
// hosts ("" or only spaces) gives a nil slice and no error. More than MaxHosts
// names is an error, reported before anything is allocated.
func Expand(expr string) ([]string, error) {
	return ExpandLimit(expr, MaxHosts)
}

// ExpandLimit is Expand with a lower cap on the number of names: more than
// maxHosts names is an ErrTooManyHosts error, reported before anything is
// allocated. A maxHosts <= 0 or above MaxHosts means MaxHosts.
func ExpandLimit(expr string, maxHosts int) ([]string, error) {
	if maxHosts <= 0 || maxHosts > MaxHosts {
		maxHosts = MaxHosts
	}
	p := parser{expr: expr, limit: uint64(maxHosts)}
	if err := p.parse(); err != nil {
		return nil, err
	}
	if p.hosts == 0 {
		return nil, nil
	}
	return p.generate(), nil
}

// ExpandFunc calls fn with each host name of expr, in Expand's order, without
// building the list: a program that only prints the names touches a few
// kilobytes instead of Expand's ~22 bytes per name. The whole expression is
// checked first (syntax and the maxHosts cap, as in ExpandLimit), so fn is
// not called at all for an invalid expression. fn must neither modify nor
// keep the slice it gets: it is reused for the next name. If fn returns an
// error, ExpandFunc stops and returns that error unchanged.
func ExpandFunc(expr string, maxHosts int, fn func(name []byte) error) error {
	if maxHosts <= 0 || maxHosts > MaxHosts {
		maxHosts = MaxHosts
	}
	p := parser{expr: expr, limit: uint64(maxHosts)}
	if err := p.parse(); err != nil {
		return err
	}
	g := generator{p: p, fn: fn}
	return g.run()
}

// rng is one number or range inside brackets.
type rng struct {
	lo, hi uint64
	width  int // digits of the lower bound as written: the zero padding
}

// group is one bracket group.
type group struct {
	open, close int    // offsets of '[' and ']' in expr
	r0, r1      int    // its ranges are p.ranges[r0:r1]
	count       uint64 // number of values
	lenSum      uint64 // total formatted length of all values
	maxLen      int    // longest formatted value
}

// elem is one element of the top-level list.
type elem struct {
	start, end int // expr[start:end]
	g0, g1     int // its groups are p.groups[g0:g1]
}

type parser struct {
	expr   string
	limit  uint64
	ranges []rng
	groups []group
	elems  []elem
	hosts  uint64 // running total of names
	bytes  uint64 // running total of name bytes
	gen    uint64 // bytes of the names built from bracket groups
}

func (p *parser) err(kind error, pos, end int, msg string) *Error {
	if end > len(p.expr) {
		end = len(p.expr)
	}
	if pos > end {
		pos = end
	}
	return &Error{Expr: p.expr, Pos: pos, Part: p.expr[pos:end], Err: kind, Msg: msg}
}

func (p *parser) parse() error {
	s := p.expr
	i := 0
	first := true
	comma := -1 // offset of a comma not yet followed by an element
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			if comma >= 0 {
				return p.err(ErrEmpty, comma, comma+1, "trailing comma")
			}
			return nil
		}
		if s[i] == ',' {
			if first {
				return p.err(ErrEmpty, i, i+1, "leading comma")
			}
			if comma >= 0 {
				return p.err(ErrEmpty, i, i+1, "two commas with nothing between them")
			}
			comma = i
			i++
			continue
		}
		end, err := p.parseElem(i)
		if err != nil {
			return err
		}
		first = false
		comma = -1
		i = end
	}
}

// parseElem parses the element starting at s[start] (not a separator) and
// returns the offset just past it.
func (p *parser) parseElem(start int) (int, error) {
	s := p.expr
	e := elem{start: start, g0: len(p.groups)}
	litLen := 0   // bytes of literal text
	lastLit := -1 // start of literal text after the last group, -1 if none
	i := start
loop:
	for i < len(s) {
		c := s[i]
		switch {
		case isNameChar(c):
			if lastLit < 0 {
				lastLit = i
			}
			litLen++
			i++
		case c == '[':
			end, err := p.parseGroup(i)
			if err != nil {
				return 0, err
			}
			lastLit = -1
			i = end
		case c == ']':
			return 0, p.err(ErrUnbalanced, i, i+1, "']' without '['")
		case c == ',' || isSpace(c):
			break loop
		default:
			return 0, p.err(ErrInvalidChar, i, i+1, charMsg(c))
		}
	}
	e.end = i
	e.g1 = len(p.groups)
	groups := p.groups[e.g0:e.g1]

	if len(groups) > 0 && lastLit >= 0 {
		return 0, p.err(ErrTrailingText, lastLit, e.end,
			"Slurm only accepts a bracket group at the end of a name, e.g. \"n[1-2]x\" is rejected")
	}
	nameLen := litLen
	for _, g := range groups {
		nameLen += g.maxLen
	}
	if nameLen > MaxNameLen {
		return 0, p.err(ErrNameTooLong, start, e.end,
			fmt.Sprintf("names up to %d bytes, limit %d", nameLen, MaxNameLen))
	}

	// Slurm refuses a bracket group other than the last whose values add up
	// to more than 64K (MAX_PREFIX_CNT).
	for k := 0; k+1 < len(groups); k++ {
		if groups[k].count > MaxRange {
			g := groups[k]
			return 0, p.err(ErrRangeTooLarge, g.open, g.close+1,
				fmt.Sprintf("a bracket group that is not the last may expand to at most %d values, this one has %d", MaxRange, g.count))
		}
	}

	// Count names and bytes without overflowing, stopping at the cap.
	remaining := p.limit - p.hosts
	count := uint64(1)
	for _, g := range groups {
		if g.count > remaining/count {
			return 0, p.tooMany(start, e.end)
		}
		count *= g.count
	}
	if count > remaining {
		return 0, p.tooMany(start, e.end)
	}
	// Every name has all literal text; group k's values each appear
	// count/groups[k].count times.
	bytes := count * uint64(litLen)
	for _, g := range groups {
		bytes += g.lenSum * (count / g.count)
	}
	if bytes > MaxBytes-p.bytes {
		return 0, p.err(ErrTooManyHosts, start, e.end,
			fmt.Sprintf("the names would take more than %d bytes", MaxBytes))
	}
	p.hosts += count
	p.bytes += bytes
	if len(groups) > 0 {
		p.gen += bytes
	}
	p.elems = append(p.elems, e)
	return i, nil
}

func (p *parser) tooMany(start, end int) *Error {
	return p.err(ErrTooManyHosts, start, end, fmt.Sprintf("more than %d host names", p.limit))
}

func charMsg(c byte) string {
	switch {
	case c == '\n' || c == '\r':
		return "line breaks are not separators; separate with commas, spaces or tabs"
	case c < 0x20 || c >= 0x7f:
		return fmt.Sprintf("byte 0x%02x; allowed are ASCII letters, digits, '.', '-' and '_'", c)
	default:
		return "allowed are ASCII letters, digits, '.', '-' and '_'"
	}
}

// parseGroup parses the bracket group opening at s[open] and returns the
// offset just past its ']'.
func (p *parser) parseGroup(open int) (int, error) {
	s := p.expr
	closing := -1
	for j := open + 1; j < len(s); j++ {
		if s[j] == ']' {
			closing = j
			break
		}
		if s[j] == '[' {
			return 0, p.err(ErrUnbalanced, j, j+1, "'[' inside brackets; is a ']' missing?")
		}
	}
	if closing < 0 {
		end := open + 1
		for end < len(s) && s[end] != ',' && !isSpace(s[end]) {
			end++
		}
		return 0, p.err(ErrUnbalanced, open, end, "'[' without ']'")
	}
	g := group{open: open, close: closing, r0: len(p.ranges)}
	i := open + 1
	for {
		r, end, err := p.parseRange(open, i, closing)
		if err != nil {
			return 0, err
		}
		n := r.hi - r.lo + 1
		g.count += n
		g.lenSum += fmtLenSum(r.lo, r.hi, r.width)
		if l := fmtLen(r.hi, r.width); l > g.maxLen {
			g.maxLen = l
		}
		p.ranges = append(p.ranges, r)
		if end == closing {
			break
		}
		i = end + 1 // past the comma
	}
	g.r1 = len(p.ranges)
	p.groups = append(p.groups, g)
	return closing + 1, nil
}

// parseRange parses "N" or "N-M" starting at s[i] inside the group
// s[open:closing+1], up to a comma or the closing bracket; it returns the
// offset of that comma or bracket.
func (p *parser) parseRange(open, i, closing int) (rng, int, error) {
	s := p.expr
	end := i
	for end < closing && s[end] != ',' {
		end++
	}
	if end == i {
		return rng{}, 0, p.err(ErrEmpty, open, closing+1,
			fmt.Sprintf("empty number or range in brackets at offset %d", i))
	}
	lo, ok, j := parseNum(s, i, end)
	if !ok || j == i {
		return rng{}, 0, p.badRange(i, end, j)
	}
	// The width of the lower bound as written is the zero padding of the
	// whole range; the upper bound's is ignored, as in Slurm.
	r := rng{lo: lo, hi: lo, width: j - i}
	if j < end {
		if s[j] != '-' {
			return rng{}, 0, p.badRange(i, end, j)
		}
		hi, ok, k := parseNum(s, j+1, end)
		if !ok || k == j+1 || k != end {
			return rng{}, 0, p.badRange(i, end, k)
		}
		r.hi = hi
	}
	if r.lo > r.hi {
		return rng{}, 0, p.err(ErrDescending, i, end, "Slurm rejects ranges whose start is above their end")
	}
	if r.hi-r.lo >= MaxRange {
		return rng{}, 0, p.err(ErrRangeTooLarge, i, end,
			fmt.Sprintf("%d hosts; Slurm accepts at most %d in one range", r.hi-r.lo+1, MaxRange))
	}
	return r, end, nil
}

func (p *parser) badRange(i, end, at int) *Error {
	s := p.expr
	msg := "expected a number or two numbers joined by '-'"
	if at < end {
		c := s[at]
		switch {
		case isSpace(c):
			msg = "spaces are not allowed inside brackets"
		case isDigit(c):
			msg = "number does not fit in 64 bits"
		case c == '-' && at == i:
			msg = "missing start of range (negative numbers are not allowed)"
		case c == '-':
			msg = "too many '-'"
		}
	} else if end > i && s[end-1] == '-' {
		msg = "missing end of range"
	}
	return p.err(ErrBadRange, i, end, msg)
}

// parseNum parses decimal digits s[i:end] up to the first non-digit. ok is
// false if the value does not fit below math.MaxUint64 (the returned offset
// is then that of the first digit that overflowed).
func parseNum(s string, i, end int) (v uint64, ok bool, next int) {
	for i < end && isDigit(s[i]) {
		d := uint64(s[i] - '0')
		if v > (math.MaxUint64-1-d)/10 {
			return 0, false, i
		}
		v = v*10 + d
		i++
	}
	return v, true, i
}

func digits(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// fmtLen is the length of v printed with zero padding to width w.
func fmtLen(v uint64, w int) int {
	if d := digits(v); d > w {
		return d
	}
	return w
}

// pow10[d] is 10^d.
var pow10 = func() (t [20]uint64) {
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return
}()

// fmtLenSum is the total length of lo..hi printed with zero padding to w.
func fmtLenSum(lo, hi uint64, w int) uint64 {
	var sum uint64
	start := lo
	for d := digits(lo); ; d++ {
		top := uint64(math.MaxUint64) // largest number with d digits
		if d < len(pow10) {
			top = pow10[d] - 1
		}
		end := min(hi, top)
		sum += (end - start + 1) * uint64(max(d, w))
		if end == hi {
			return sum
		}
		start = end + 1
	}
}

// appendPadded appends v in decimal, zero padded to width w.
func appendPadded(b []byte, v uint64, w int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v >= 10 {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	i--
	tmp[i] = byte('0' + v)
	for pad := w - (len(tmp) - i); pad > 0; pad-- {
		b = append(b, '0')
	}
	return append(b, tmp[i:]...)
}

// generate returns the names of all parsed elements. All names with bracket
// groups share one buffer of the exact size computed while parsing.
func (p *parser) generate() []string {
	g := generator{p: *p, names: make([]string, p.hosts)}
	g.buf.Grow(int(p.gen))
	g.run()
	return g.names
}

// generator produces the names of a parsed expression, either into names
// (Expand) or through fn (ExpandFunc).
type generator struct {
	p       parser
	fn      func([]byte) error
	err     error // from fn: stop
	names   []string
	n       int // names written
	buf     strings.Builder
	e       *elem
	groups  []group
	vals    []uint64 // current value of each group but the last
	widths  []int    // and the width it is printed with
	scratch []byte
}

func (g *generator) run() error {
	p := &g.p
	for i := range p.elems {
		e := &p.elems[i]
		if e.g0 == e.g1 {
			if g.fn != nil {
				g.scratch = append(g.scratch[:0], p.expr[e.start:e.end]...)
				g.err = g.fn(g.scratch)
			} else {
				g.names[g.n] = p.expr[e.start:e.end]
				g.n++
			}
		} else {
			g.elem(e)
		}
		if g.err != nil {
			return g.err
		}
	}
	return nil
}

func (g *generator) elem(e *elem) {
	g.e = e
	g.groups = g.p.groups[e.g0:e.g1]
	k := len(g.groups)
	if cap(g.vals) < k {
		g.vals = make([]uint64, k)
		g.widths = make([]int, k)
	}
	g.vals, g.widths = g.vals[:k], g.widths[:k]
	// Slurm's order, outermost loop first: groups k-2, k-3, ..., 0; the
	// last group (k-1) is the innermost.
	g.outer(k - 2)
}

// outer iterates group j's values, then recurses to group j-1; below group 0
// it emits the names for every value of the last group.
func (g *generator) outer(j int) {
	if j < 0 {
		g.leaf()
		return
	}
	gr := g.groups[j]
	for _, r := range g.p.ranges[gr.r0:gr.r1] {
		g.widths[j] = r.width
		for v := r.lo; ; v++ {
			g.vals[j] = v
			g.outer(j - 1)
			if v == r.hi || g.err != nil {
				break
			}
		}
		if g.err != nil {
			return
		}
	}
}

func (g *generator) leaf() {
	s := g.p.expr
	k := len(g.groups)
	// The prefix: literal text and values of all groups but the last.
	pre := g.scratch[:0]
	at := g.e.start
	for j := 0; j < k-1; j++ {
		pre = append(pre, s[at:g.groups[j].open]...)
		pre = appendPadded(pre, g.vals[j], g.widths[j])
		at = g.groups[j].close + 1
	}
	last := g.groups[k-1]
	pre = append(pre, s[at:last.open]...)
	plen := len(pre)
	for _, r := range g.p.ranges[last.r0:last.r1] {
		name := appendPadded(pre[:plen], r.lo, r.width)
		for v := r.lo; ; v++ {
			g.emit(name)
			if v == r.hi || g.err != nil {
				break
			}
			name = increment(name, plen, v+1, r.width)
		}
		pre = name[:plen]
		if g.err != nil {
			break
		}
	}
	g.scratch = pre[:0]
}

// increment turns the decimal number in name[plen:] into its successor next,
// in place when the number of digits does not change.
func increment(name []byte, plen int, next uint64, w int) []byte {
	for i := len(name) - 1; i >= plen; i-- {
		if name[i] != '9' {
			name[i]++
			return name
		}
		name[i] = '0'
	}
	// Every digit was 9: the number grew a digit.
	return appendPadded(name[:plen], next, w)
}

func (g *generator) emit(name []byte) {
	if g.fn != nil {
		g.err = g.fn(name)
		return
	}
	g.buf.Write(name)
	all := g.buf.String()
	g.names[g.n] = all[len(all)-len(name):]
	g.n++
}
