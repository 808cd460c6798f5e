// Package statefile writes the files of the state and log directories so
// that they survive a crash (temporary file, fsync, rename, fsync of the
// directory) and stay usable by SlurmUser whoever creates them (a file
// root creates gets the owner of its directory), and moves a corrupt file
// aside for the admin. Standard library only.
package statefile

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// WriteFile replaces dir/name with data durably: a temporary file in dir
// is written, fsynced, given perm and the owner of dir (MatchOwner), then
// renamed over dir/name, and dir is fsynced, so after a crash the file is
// either the old or the new one, never empty or half written. Blocks on
// the disk; idempotent.
func WriteFile(dir, name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr, os.Chmod(f.Name(), perm), MatchOwner(dir, f.Name())); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// SyncDir fsyncs directory dir (making a rename in it durable). Blocks on
// the disk; idempotent.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// MoveAside renames the corrupt file path to path.corrupt-<UTC time>
// (kept for the admin) and returns the new name. Blocks on the disk.
func MoveAside(path string, now time.Time) (string, error) {
	aside := path + ".corrupt-" + now.UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("move corrupt %s aside: %w", path, err)
	}
	_ = SyncDir(filepath.Dir(path))
	return aside, nil
}

// MatchOwner gives path the owner of dir when the process runs as root
// and dir belongs to another user (so a file root creates stays usable by
// SlurmUser). A no-op otherwise. Does not block; idempotent.
func MatchOwner(dir, path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := di.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}

// Create opens path for appending, creating it with perm and, when it is
// new, the owner of its directory (MatchOwner). Does not block beyond the
// disk.
func Create(path string, flag int, perm os.FileMode) (*os.File, error) {
	_, statErr := os.Lstat(path)
	f, err := os.OpenFile(path, flag|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := MatchOwner(filepath.Dir(path), path); err != nil {
			f.Close()
			return nil, fmt.Errorf("chown %s: %w", path, err)
		}
	}
	return f, nil
}

// Touch creates path (perm) when it is missing, giving it the owner of its
// directory (MatchOwner), as a lock file is created before flock opens it.
// A file that exists but cannot be opened for writing gives an error
// naming it, its owner and the fix (Unusable). Blocks on the disk;
// idempotent.
func Touch(path string, perm os.FileMode) error {
	f, err := Create(path, os.O_RDWR, perm)
	if err != nil {
		return Unusable(path, err)
	}
	return f.Close()
}

// Unusable describes why path cannot be used: err, path's owner (uid:gid
// and their names when they resolve) and the fix, a chown to the owner of
// its directory.
func Unusable(path string, err error) error {
	fi, serr := os.Lstat(path)
	if serr != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: %w", path, err)
	}
	fix := "chown SlurmUser: " + path
	if di, derr := os.Stat(filepath.Dir(path)); derr == nil {
		if ds, ok := di.Sys().(*syscall.Stat_t); ok {
			fix = fmt.Sprintf("chown %d:%d %s (the owner of its directory)", ds.Uid, ds.Gid, path)
		}
	}
	return fmt.Errorf("%s (owned by %s): %w; fix: %s", path, ownerName(st.Uid, st.Gid), err, fix)
}

// ownerName is "uid:gid (user:group)", the names where they resolve.
func ownerName(uid, gid uint32) string {
	s := fmt.Sprintf("%d:%d", uid, gid)
	un, gn := "?", "?"
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		un = u.Username
	}
	if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
		gn = g.Name
	}
	if un == "?" && gn == "?" {
		return s
	}
	return s + " (" + un + ":" + gn + ")"
}
