package slurm

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tokenFile serves a JWT kept in a file and re-reads the file whenever its
// modification time, size or inode changes, so a rotated token is used by
// the next request without a restart. The token never appears in errors or
// logs. Safe for concurrent use.
type tokenFile struct {
	path string

	mu    sync.Mutex
	mod   time.Time
	size  int64
	ino   uint64
	token string
}

func newTokenFile(path string) *tokenFile { return &tokenFile{path: path} }

// Get returns the current token, reading the file again if it changed.
// Blocks for one stat (and one read after a change).
func (t *tokenFile) Get() (string, error) {
	st, err := os.Stat(t.path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && st.ModTime().Equal(t.mod) && st.Size() == t.size && ino == t.ino {
		return t.token, nil
	}
	if st.IsDir() {
		return "", fmt.Errorf("token file %s: is a directory", t.path)
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	// Accept "SLURM_JWT=<token>" as printed by `scontrol token`.
	tok = strings.TrimPrefix(tok, "SLURM_JWT=")
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", t.path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("token file %s: expected one token, found whitespace inside", t.path)
	}
	t.token, t.mod, t.size, t.ino = tok, st.ModTime(), st.Size(), ino
	return tok, nil
}
