// Package fileperm is the one check of who may change a file that
// slurm-elastic trusts: its owner and whether others may write (or, for a
// secret, read) it. conf checks the secret files with it (token, SSH
// identity) and the health daemon its check programs before running them.
// Standard library only; it only stats files.
package fileperm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Rule is what a trusted file must be.
type Rule struct {
	// EUID is the user of the process that reads or runs the file: the
	// file must belong to it or to root.
	EUID int
	// AnyOwnerIfRoot: a process running as root accepts any owner (a
	// secret the service user owns, read by an admin command as root).
	AnyOwnerIfRoot bool
	// Private: other users must not read it either (a secret).
	Private bool
	// What names the file in messages ("the secret", "the check program").
	What string
	// ModeFix and OwnerFix are the fixes named with a mode or an owner
	// problem; "" = "chmod go-w PATH" and "chown root PATH".
	ModeFix, OwnerFix string
}

// Problems returns what is wrong with path, whose Stat is fi, under r: one
// message per problem, each naming path, what is wrong and the fix; nil
// when nothing is. Pure (fi is given).
func Problems(path string, fi fs.FileInfo, r Rule) []string {
	modeFix, ownerFix := r.ModeFix, r.OwnerFix
	if modeFix == "" {
		modeFix = "chmod go-w " + path
	}
	if ownerFix == "" {
		ownerFix = "chown root " + path
	}
	what := r.What
	if what == "" {
		what = "it"
	}
	var out []string
	perm := fi.Mode().Perm()
	switch {
	case perm&0o022 != 0:
		out = append(out, fmt.Sprintf("%s: mode %04o is group- or world-writable, so another user could replace %s: %s", path, perm, what, modeFix))
	case r.Private && perm&0o007 != 0:
		out = append(out, fmt.Sprintf("%s: mode %04o lets other users read it: %s", path, perm, modeFix))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		anyOwner := r.AnyOwnerIfRoot && r.EUID == 0
		if !anyOwner && st.Uid != 0 && int(st.Uid) != r.EUID {
			out = append(out, fmt.Sprintf("%s: owned by uid %d, but this process runs as uid %d and trusts only its own files or root's: %s", path, st.Uid, r.EUID, ownerFix))
		}
	}
	return out
}

// Program checks an executable before it is run by a process of user
// euid: the file (symbolic links resolved) and the directory holding it
// (and the link's own directory) must belong to root or euid and be
// neither group- nor world-writable, so no other user can change what
// runs. The error names each file, what is wrong and the fix. Blocks for
// a few stats; idempotent.
func Program(path string, euid int) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("check program %s: %w", path, err)
	}
	check := []string{real, filepath.Dir(real)}
	if d := filepath.Dir(filepath.Clean(path)); d != filepath.Dir(real) {
		check = append(check, d)
	}
	var errs []error
	for _, p := range check {
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("check program: %w", err))
			continue
		}
		if p == real && !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("%s: not a regular file", p))
			continue
		}
		what := "the check program"
		if fi.IsDir() {
			what = "the programs in it"
		}
		for _, m := range Problems(p, fi, Rule{EUID: euid, What: what}) {
			errs = append(errs, errors.New(m))
		}
	}
	return errors.Join(errs...)
}
