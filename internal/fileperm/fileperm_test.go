package fileperm

import (
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"
)

type info struct {
	mode fs.FileMode
	uid  uint32
}

func (i info) Name() string       { return "f" }
func (i info) Size() int64        { return 0 }
func (i info) Mode() fs.FileMode  { return i.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.mode.IsDir() }
func (i info) Sys() any           { return &syscall.Stat_t{Uid: i.uid} }

func TestProblems(t *testing.T) {
	secret := Rule{EUID: 0, AnyOwnerIfRoot: true, Private: true, ModeFix: "chmod 0600"}
	program := Rule{EUID: 0}
	tests := []struct {
		name string
		fi   info
		r    Rule
		n    int      // problems
		want []string // in their messages
	}{
		{"root program 0755", info{0o755, 0}, program, 0, nil},
		{"own program as user", info{0o700, 1000}, Rule{EUID: 1000}, 0, nil},
		{"program of another user, run by root", info{0o755, 1000}, program, 1, []string{"owned by uid 1000, but this process runs as uid 0", "chown root /p"}},
		{"group-writable program", info{0o775, 0}, program, 1, []string{"mode 0775 is group- or world-writable", "chmod go-w /p"}},
		{"world-writable dir of another user", info{fs.ModeDir | 0o777, 1000}, program, 2, []string{"mode 0777", "owned by uid 1000"}},
		{"secret of the service user, read by root", info{0o600, 1000}, secret, 0, nil},
		{"secret of another user, read by a user", info{0o600, 1001}, Rule{EUID: 1000, AnyOwnerIfRoot: true, Private: true}, 1, []string{"owned by uid 1001"}},
		{"world-readable secret", info{0o604, 0}, secret, 1, []string{"lets other users read it: chmod 0600"}},
		{"world-readable program", info{0o755, 0}, program, 0, nil},
	}
	for _, tc := range tests {
		got := Problems("/p", tc.fi, tc.r)
		all := strings.Join(got, "\n")
		if len(got) != tc.n {
			t.Errorf("%s: %q, want %d problems", tc.name, got, tc.n)
		}
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: %q lacks %q", tc.name, got, w)
			}
		}
		for _, m := range got {
			if !strings.HasPrefix(m, "/p: ") {
				t.Errorf("%s: %q does not name the file first", tc.name, m)
			}
		}
	}
}
