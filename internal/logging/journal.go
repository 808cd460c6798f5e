package logging

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
)

// journalSocket is systemd-journald's native protocol socket.
var journalSocket = "/run/systemd/journal/socket"

// journal turns each JSON log line into one journald entry: MESSAGE is the
// msg field, PRIORITY follows level, every other attribute becomes an upper
// case field (SLURM_ELASTIC_<KEY>) so `journalctl -o json` keeps the
// structure.
type journal struct{ conn *net.UnixConn }

func dialJournal() (*journal, error) {
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: journalSocket, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &journal{conn: conn}, nil
}

func (j *journal) Close() error { return j.conn.Close() }

// Write sends one slog JSON line as one datagram. It never blocks for long:
// journald's socket is a datagram socket.
func (j *journal) Write(p []byte) (int, error) {
	var rec map[string]any
	if err := json.Unmarshal(p, &rec); err != nil {
		return 0, fmt.Errorf("journald: not a JSON log line: %w", err)
	}
	var b bytes.Buffer
	field(&b, "MESSAGE", fmt.Sprint(rec["msg"]))
	field(&b, "PRIORITY", priority(fmt.Sprint(rec["level"])))
	field(&b, "SYSLOG_IDENTIFIER", fmt.Sprint(rec["program"]))
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "msg", "level", "time":
			continue
		}
		v, ok := rec[k].(string)
		if !ok {
			raw, _ := json.Marshal(rec[k])
			v = string(raw)
		}
		field(&b, "SLURM_ELASTIC_"+fieldName(k), v)
	}
	if _, err := j.conn.Write(b.Bytes()); err != nil {
		return 0, fmt.Errorf("journald: %w", err)
	}
	return len(p), nil
}

// field appends one entry in the native protocol; values with a newline
// use the length-prefixed binary form.
func field(b *bytes.Buffer, k, v string) {
	if !strings.Contains(v, "\n") {
		fmt.Fprintf(b, "%s=%s\n", k, v)
		return
	}
	b.WriteString(k)
	b.WriteByte('\n')
	_ = binary.Write(b, binary.LittleEndian, uint64(len(v)))
	b.WriteString(v)
	b.WriteByte('\n')
}

func fieldName(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, k)
}

func priority(level string) string {
	switch level {
	case "DEBUG":
		return "7"
	case "WARN":
		return "4"
	case "ERROR":
		return "3"
	}
	return "6"
}
