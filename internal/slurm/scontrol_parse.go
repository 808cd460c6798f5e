package slurm

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// freeText lists the keys of `scontrol -o show node` whose values may hold
// spaces, and the keys that may follow each of them. Inside such a value a
// "Word=" token starts a new field only when it is one of these followers,
// so "Reason=disk full: sda=bad" stays whole. Every other key's value ends
// at the next "Word=" token, which keeps unknown keys of newer releases from
// swallowing their neighbours.
var freeText = map[string]map[string]bool{
	// OS=<uname string> is followed by the RealMemory line.
	"OS": {"RealMemory": true},
	// Reason, Comment and Extra close the record (22.05 through 25.x),
	// optionally followed by the cloud instance and reservation lines.
	"Reason":  {"Comment": true, "Extra": true, "InstanceId": true, "InstanceType": true, "ReservationName": true},
	"Comment": {"Reason": true, "Extra": true, "InstanceId": true, "InstanceType": true, "ReservationName": true},
	"Extra":   {"Reason": true, "Comment": true, "InstanceId": true, "InstanceType": true, "ReservationName": true},
}

// reasonStamp is the " [user@time]" Slurm appends to a reason.
var reasonStamp = regexp.MustCompile(`\s*\[[^\[\]\s@]+@[^\[\]]*\]$`)

// notFoundLine is scontrol's answer for a name it does not know.
var notFoundLine = regexp.MustCompile(`^Node (\S+) not found$`)

// field is one Key=Value pair of a show-node record.
type field struct{ key, val string }

// reasonEnd finds the stamp that closes a reason: " [user@time]" followed
// by the end of the record or by a field that may follow a reason.
var reasonEnd = regexp.MustCompile(`( \[[^\[\]\s@]+@[^\[\]]*\])(?: (?:Comment|Extra|InstanceId|InstanceType|ReservationName)=|$)`)

// splitFields splits one `scontrol -o show node` record into its fields.
func splitFields(line string) []field {
	var out []field
	cur := -1 // index in out of the field being read
	valStart := 0
	for i := 0; i < len(line); i++ {
		if i > 0 && line[i-1] != ' ' {
			continue
		}
		key, ok := keyAt(line, i)
		if !ok {
			continue
		}
		if cur >= 0 {
			if follow, isFree := freeText[out[cur].key]; isFree && !follow[key] {
				continue
			}
			out[cur].val = strings.TrimRight(line[valStart:i], " ")
		}
		out = append(out, field{key: key})
		cur = len(out) - 1
		valStart = i + len(key) + 1
		i = valStart - 1
		if key == "Reason" {
			// A stamped reason ends at its stamp, whatever it contains.
			if m := reasonEnd.FindStringSubmatchIndex(line[valStart:]); m != nil {
				out[cur].val = line[valStart : valStart+m[2]]
				cur = -1
				i = valStart + m[3] - 1
			}
		}
	}
	if cur >= 0 {
		out[cur].val = strings.TrimRight(line[valStart:], " \r\n")
	}
	return out
}

// keyAt returns the key of a "Key=" token starting at line[i].
func keyAt(line string, i int) (string, bool) {
	j := i
	for j < len(line) {
		c := line[j]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (j > i && (c >= '0' && c <= '9' || c == '_')) {
			j++
			continue
		}
		break
	}
	if j == i || j >= len(line) || line[j] != '=' {
		return "", false
	}
	return line[i:j], true
}

// nullable maps scontrol's "(null)" and "N/A" placeholders to "".
func nullable(s string) string {
	if s == "(null)" || s == "N/A" {
		return ""
	}
	return s
}

// csv splits a comma-separated list, dropping empty items and placeholders.
func csv(s string) []string {
	s = nullable(s)
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// stateSuffix maps sinfo-style state suffixes to flags, in case a release
// prints them in scontrol's state string.
var stateSuffix = map[byte]string{
	'*': FlagNotResponding, '~': FlagPoweredDown, '#': FlagPoweringUp,
	'%': FlagPoweringDown, '!': FlagPowerDown,
}

// parseState parses "IDLE+CLOUD+POWERED_DOWN" into base state and flags.
func parseState(s string) (string, []string) {
	var words []string
	for _, w := range strings.Split(s, "+") {
		var suffixFlags []string
		for len(w) > 0 {
			f, ok := stateSuffix[w[len(w)-1]]
			if !ok {
				break
			}
			suffixFlags = append(suffixFlags, f)
			w = w[:len(w)-1]
		}
		words = append(words, w)
		words = append(words, suffixFlags...)
	}
	base, flags := splitState(words)
	return base, dedupe(flags)
}

func dedupe(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// parseShowNodeLine parses one record of `scontrol -o show node`.
func parseShowNodeLine(line string) (Node, error) {
	fields := splitFields(line)
	if len(fields) == 0 || fields[0].key != "NodeName" {
		return Node{}, fmt.Errorf("not a node record: %.80q", line)
	}
	var n Node
	var avail, active, legacy []string
	haveAvail := false
	for _, f := range fields {
		switch f.key {
		case "NodeName":
			n.Name = f.val
		case "State":
			n.State, n.Flags = parseState(f.val)
		case "Reason":
			n.Reason = reasonStamp.ReplaceAllString(f.val, "")
		case "NodeAddr":
			n.Addr = nullable(f.val)
		case "NodeHostName":
			n.Hostname = nullable(f.val)
		case "AvailableFeatures":
			avail, haveAvail = csv(f.val), true
		case "ActiveFeatures":
			active = csv(f.val)
		case "Features": // releases before 14.11
			legacy = csv(f.val)
		case "Gres":
			n.Gres = nullable(f.val)
		case "RealMemory":
			v, err := strconv.ParseInt(f.val, 10, 64)
			if err != nil {
				return Node{}, fmt.Errorf("node %s: RealMemory %q: %w", n.Name, f.val, err)
			}
			n.RealMemoryMB = v
		case "CPUTot":
			v, err := strconv.Atoi(f.val)
			if err != nil {
				return Node{}, fmt.Errorf("node %s: CPUTot %q: %w", n.Name, f.val, err)
			}
			n.CPUs = v
		case "Partitions":
			n.Partitions = csv(f.val)
		}
	}
	n.ActiveFeatures = active
	switch {
	case haveAvail:
		n.Features = avail
	case legacy != nil:
		n.Features = legacy
	default:
		n.Features = active
	}
	if n.Name == "" {
		return Node{}, fmt.Errorf("node record without a name: %.80q", line)
	}
	if n.State == "" {
		n.State = StateUnknown
	}
	return n, nil
}

// parseShowNode parses the whole output of `scontrol -o show node [names]`:
// the node records and the names scontrol reported as not found.
func parseShowNode(out string) (nodes []Node, missing []string, err error) {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, " \r")
		switch {
		case line == "" || line == "No nodes in the system":
		case strings.HasPrefix(line, "NodeName="):
			n, err := parseShowNodeLine(line)
			if err != nil {
				return nil, nil, err
			}
			nodes = append(nodes, n)
		default:
			if m := notFoundLine.FindStringSubmatch(line); m != nil {
				missing = append(missing, m[1])
			}
			// Anything else (e.g. a continuation of a multi-line
			// reason) carries nothing we use.
		}
	}
	return nodes, missing, nil
}
