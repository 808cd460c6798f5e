package nodelock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// Node locks are per node: a node another process holds is reported busy
// once the wait is over, while the other nodes are taken; duplicates are
// locked once and a name that cannot be a file is refused.
func TestNodes(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	other, missed, err := Nodes(ctx, dir, []string{"b"})
	if err != nil || len(missed) > 0 {
		t.Fatal(err, missed)
	}
	done, cancel := context.WithCancel(ctx)
	cancel() // no waiting: the free locks are still taken
	h, missed, err := Nodes(done, dir, []string{"c", "b", "a", "a", "../x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Nodes(); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("held %v, want [a c]", got)
	}
	if !errors.Is(missed["b"], ErrBusy) || missed["../x"] == nil || len(missed) != 2 {
		t.Errorf("missed %v, want b busy and ../x refused", missed)
	}
	other.Release()
	h.Release()
	h, missed, err = Nodes(ctx, dir, []string{"b", "a"})
	if err != nil || len(missed) > 0 || len(h.Nodes()) != 2 {
		t.Fatalf("after release: %v %v %v", h.Nodes(), missed, err)
	}
	h.Release()
	h.Release() // idempotent
}

// The state lock waits while ctx allows, then names its file.
func TestStateBusy(t *testing.T) {
	dir := t.TempDir()
	release, err := State(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := State(done, dir); err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the context's error naming %s", err, StateFile)
	}
}

// Created by root in a state dir SlurmUser owns, the lock directory and
// the lock files belong to SlurmUser, so the hooks Slurm runs can use them.
func TestLockFilesOwnedAsTheStateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const uid, gid = 65534, 65534
	dir := t.TempDir()
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	h, _, err := Nodes(context.Background(), dir, []string{"cloud1"})
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	release, err := State(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	release()
	for _, p := range []string{filepath.Join(dir, Dir), Path(dir, "cloud1"), filepath.Join(dir, StateFile)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}
}

// The placement lock is one lock, apart from the state lock: a second
// taker waits for it while ctx allows, a state-lock taker does not.
func TestPlaceLockApartFromState(t *testing.T) {
	dir := t.TempDir()
	release, err := Place(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := State(context.Background(), dir)
	if err != nil {
		t.Fatalf("state lock behind the placement lock: %v", err)
	}
	st()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Place(ctx, dir); err == nil {
		t.Fatal("placement lock taken twice")
	}
	release()
	again, err := Place(context.Background(), dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}
