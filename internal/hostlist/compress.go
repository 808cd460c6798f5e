package hostlist

import "strings"

// hostrange is a run of names prefix+N for N in lo..hi printed with zero
// padding to width, or (single) one name without a numeric suffix.
type hostrange struct {
	prefix string
	lo, hi uint64
	width  int
	single bool
}

// Compress returns the hostlist expression `scontrol show hostlist` prints for
// the names joined by commas. Like scontrol it neither sorts nor removes
// duplicates: it joins a name onto the previous range only when the name's
// number follows that range's last one, with the same prefix and a compatible
// zero padding, and it brackets consecutive ranges that share a prefix.
// So n1,n2,n3 gives "n[1-3]", n3,n1,n2 gives "n[3,1-2]", n1,n1 gives "n[1,1]"
// and b,a,b gives "b,a,b". Expand(Compress(names)) returns names again as long
// as no run of consecutive numbers is longer than MaxRange.
//
// Names are taken verbatim, as scontrol takes a name without brackets; empty
// names are skipped, as scontrol skips empty list elements. Names should pass
// ValidName: one containing separators or brackets gives a string that does
// not expand back to it. A numeric suffix that does not fit below 2^64-1 is
// treated as part of the name (scontrol would print a clamped number).
func Compress(names []string) string {
	size := 0
	for _, name := range names {
		size += len(name) + 1
	}
	var c Compressor
	c.out.Grow(size)
	for _, name := range names {
		c.Add(name)
	}
	c.flush()
	return c.out.String()
}

// Compressor computes Compress one name at a time, so a program can compress
// names as it reads them without holding them in a slice. The zero value is
// ready to use; like a strings.Builder it must not be copied after use. Its
// memory is the output plus the last two names.
//
// Slurm first pushes every name onto a list of ranges (hostlist_push_host),
// then prints the list (hostlist_ranged_string). Both look only at
// neighbours, so a Compressor does both in one pass, keeping the last range
// (tail), which the next name may still extend, and the one before it
// (prev), which is final.
type Compressor struct {
	out        strings.Builder
	buf        []byte
	tail, prev hostrange
	have       bool // tail is set
	started    bool // a range has been written to out
	bracket    bool // the group open in out has a '['
}

// Add appends a name, taken verbatim as by Compress; an empty name is skipped.
func (c *Compressor) Add(name string) {
	if name == "" {
		return
	}
	h := parseName(name)
	t := &c.tail
	if c.have && !h.single && !t.single && t.hi+1 == h.lo && t.prefix == h.prefix &&
		widthEquiv(t.lo, &t.width, h.lo, &h.width) {
		t.hi = h.hi // hostlist_push_range extends the last range
		return
	}
	if c.have {
		c.buf = c.write(c.buf[:0], &c.tail, &h)
		c.out.Write(c.buf)
		c.prev = c.tail
	}
	c.tail, c.have = h, true
}

// flush writes the pending tail as the last range.
func (c *Compressor) flush() {
	if c.have {
		c.buf = c.write(c.buf[:0], &c.tail, nil)
		c.out.Write(c.buf)
		c.have = false
	}
}

// String returns the expression for the names added so far. More names may
// be added afterwards.
func (c *Compressor) String() string {
	if !c.have {
		return c.out.String()
	}
	// Print the pending tail as if it were the last range, without
	// changing the state.
	started, bracket := c.started, c.bracket
	c.buf = c.write(c.buf[:0], &c.tail, nil)
	c.started, c.bracket = started, bracket
	return c.out.String() + string(c.buf)
}

// write appends to b the final range h given the one after it (next, nil at
// the end), as Slurm's _get_bracketed_list: consecutive ranges with the same
// prefix share one bracket, which is used if the group has more than one
// host.
func (c *Compressor) write(b []byte, h, next *hostrange) []byte {
	if !c.started || !sameBracket(&c.prev, h) {
		// h starts a group.
		if c.started {
			b = append(b, ',')
		}
		b = append(b, h.prefix...)
		c.bracket = h.hi > h.lo || (next != nil && sameBracket(h, next))
		if c.bracket {
			b = append(b, '[')
		}
	} else {
		b = append(b, ',')
	}
	c.started = true
	if !h.single {
		b = appendPadded(b, h.lo, h.width)
		if h.hi > h.lo {
			b = append(b, '-')
			b = appendPadded(b, h.hi, h.width)
		}
	}
	if c.bracket && (next == nil || !sameBracket(h, next)) {
		b = append(b, ']')
	}
	return b
}

// sameBracket is Slurm's hostrange_within_range.
func sameBracket(a, b *hostrange) bool {
	return !a.single && !b.single && a.prefix == b.prefix
}

// parseName splits a name into prefix and numeric suffix (Slurm's
// hostname_create): the suffix is the trailing run of digits.
func parseName(name string) hostrange {
	i := len(name)
	for i > 0 && isDigit(name[i-1]) {
		i--
	}
	if i == len(name) {
		return hostrange{prefix: name, single: true}
	}
	v, ok, _ := parseNum(name, i, len(name))
	if !ok {
		return hostrange{prefix: name, single: true}
	}
	return hostrange{prefix: name[:i], lo: v, hi: v, width: len(name) - i}
}

// zeroPadded is the number of zeros needed to pad n to width w.
func zeroPadded(n uint64, w int) int {
	if d := digits(n); w > d {
		return w - d
	}
	return 0
}

// widthEquiv is Slurm's _width_equiv: the widths wn (of n) and wm (of m) are
// equivalent if they are equal or if printing both numbers with one of them
// changes neither's padding; it then sets the other width to that one.
func widthEquiv(n uint64, wn *int, m uint64, wm *int) bool {
	if *wn == *wm {
		return true
	}
	npad, nmpad := zeroPadded(n, *wn), zeroPadded(n, *wm)
	mpad, mnpad := zeroPadded(m, *wm), zeroPadded(m, *wn)
	switch {
	case npad != nmpad && mpad != mnpad:
		return false
	case npad != nmpad:
		*wm = *wn
	default:
		*wn = *wm
	}
	return true
}
