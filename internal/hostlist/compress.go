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
	if size == 0 {
		return ""
	}
	// Slurm first pushes every name onto a list of ranges
	// (hostlist_push_host), then prints the list (hostlist_ranged_string).
	// Both look only at neighbours, so this does both in one pass keeping
	// two ranges: the last one (tail), which the next name may still
	// extend, and the one before it (prev), which is final.
	w := compressWriter{}
	w.b.Grow(size)
	var tail, prev hostrange
	have := false
	for _, name := range names {
		if name == "" {
			continue
		}
		h := parseName(name)
		if have && !h.single && !tail.single && tail.hi+1 == h.lo && tail.prefix == h.prefix &&
			widthEquiv(tail.lo, &tail.width, h.lo, &h.width) {
			tail.hi = h.hi // hostlist_push_range extends the last range
			continue
		}
		if have {
			w.write(&prev, &tail, &h)
			prev = tail
		}
		tail, have = h, true
	}
	if have {
		w.write(&prev, &tail, nil)
	}
	return w.b.String()
}

type compressWriter struct {
	b       strings.Builder
	started bool // a range has been written
	bracket bool // the open group has a '['
	num     [48]byte
}

// write prints the final range h given the range before it (prev, if any
// range has been written) and the one after it (next, nil at the end), as
// Slurm's _get_bracketed_list: consecutive ranges with the same prefix share
// one bracket, which is used if the group has more than one host.
func (w *compressWriter) write(prev, h, next *hostrange) {
	if !w.started || !sameBracket(prev, h) {
		// h starts a group.
		if w.started {
			w.b.WriteByte(',')
		}
		w.b.WriteString(h.prefix)
		w.bracket = h.hi > h.lo || (next != nil && sameBracket(h, next))
		if w.bracket {
			w.b.WriteByte('[')
		}
	} else {
		w.b.WriteByte(',')
	}
	w.started = true
	if !h.single {
		s := appendPadded(w.num[:0], h.lo, h.width)
		if h.hi > h.lo {
			s = append(s, '-')
			s = appendPadded(s, h.hi, h.width)
		}
		w.b.Write(s)
	}
	if w.bracket && (next == nil || !sameBracket(h, next)) {
		w.b.WriteByte(']')
	}
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
