package logging

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenFileWritesJSONWithProgram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "se.log")
	log, c, err := Open(path, "info", "slurm-elastic-resume")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("launched", "node", "cloud1")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 line (debug filtered), got %q", data)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["program"] != "slurm-elastic-resume" || rec["node"] != "cloud1" || rec["msg"] != "launched" {
		t.Fatalf("record %v", rec)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", st.Mode().Perm())
	}
}

func TestParseLevelRejectsUnknown(t *testing.T) {
	if _, err := ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("err = %v", err)
	}
}

func TestJournaldNativeProtocol(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "journal.sock")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	old := journalSocket
	journalSocket = sock
	defer func() { journalSocket = old }()

	log, c, err := Open(Journald, "debug", "slurm-elastic")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log.Warn("node down", "node", "cloud2", "reason", "line1\nline2")
	buf := make([]byte, 4096)
	n, err := srv.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	for _, want := range []string{"MESSAGE=node down\n", "PRIORITY=4\n", "SYSLOG_IDENTIFIER=slurm-elastic\n", "SLURM_ELASTIC_NODE=cloud2\n", "SLURM_ELASTIC_REASON\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("datagram lacks %q:\n%q", want, got)
		}
	}
}
