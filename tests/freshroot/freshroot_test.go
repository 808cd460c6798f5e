package freshroot

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
	"github.com/slurm-elastic/slurm-elastic/tests/hostdeps"
)

const (
	cacheRoot = "/var/cache/slurm-elastic-test"
	suite     = "bookworm" // Debian 12
	// recipe names how the cached root is made: change it when buildRoot changes.
	recipe = "freshroot-v1: debootstrap --variant=minbase; host apt sources; policy-rc.d; apt-get update; install make"
	// helperEnv makes the test binary the namespace helper (TestMain).
	helperEnv = "SE_FRESHROOT_HELPER"
	// dropEnv overrides the packages dropped for the negative case (space-separated).
	dropEnv = "SE_FRESHROOT_DROP"
	// defaultDrop: what `--no-install-recommends podman` leaves out on Debian 12 (issue 9).
	// Both, since aardvark-dns depends on netavark.
	defaultDrop = "aardvark-dns netavark"
	// srcDir is where the Makefile is copied inside the root.
	srcDir = "/root/slurm-elastic"
)

// debsDir keeps every .deb the roots download (debootstrap's --cache-dir, and the roots'
// /var/cache/apt/archives), so warm runs fetch only apt's indexes.
var debsDir = filepath.Join(cacheRoot, "freshroot-debs")

var chrootEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C", "HOME=/root", "DEBIAN_FRONTEND=noninteractive"}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestMakeDepsInFreshRoot runs `make deps` (with the Makefile, mk/ and the list copied in)
// in a fresh Debian 12 minbase root and checks every tool of tests/hostdeps there. First
// with DEPS_DROP: the check must fail naming exactly the dropped packages' tools; then
// plain: it must install just those and pass.
func TestMakeDepsInFreshRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("debootstraps and installs Debian packages in a chroot: not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the fresh-root test needs root (debootstrap, chroot, mount)")
	}
	if err := hostdeps.Require("/", "debootstrap", "chroot", "tar", "dpkg-deb"); err != nil {
		t.Fatal(err)
	}
	drop := strings.Fields(defaultDrop)
	if v := os.Getenv(dropEnv); v != "" {
		drop = strings.Fields(v)
	}
	slices.Sort(drop)
	var wantMissing []hostdeps.Tool
	for _, tool := range hostdeps.Tools() {
		if slices.Contains(drop, tool.Package) {
			wantMissing = append(wantMissing, tool)
		}
	}
	if len(wantMissing) == 0 {
		t.Fatalf("%s=%q names no package of %s", dropEnv, strings.Join(drop, " "), hostdeps.File)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	logw := t.Output()
	t0 := time.Now()

	// One run at a time: the roots share the .deb cache, and apt locks it.
	lock, err := harness.LockFile(ctx, filepath.Join(cacheRoot, "freshroot.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	waited := time.Since(t0)

	t1 := time.Now()
	tarball, built, err := cachedRoot(ctx, logw)
	if err != nil {
		t.Fatal(err)
	}
	tRoot := time.Since(t1)

	t1 = time.Now()
	root := freshRoot(t, tarball)
	// What `make deps` reads: the Makefile, what it includes, the list.
	mks, _ := filepath.Glob("../../mk/*.mk")
	for _, f := range append([]string{"Makefile", hostdeps.File}, mks...) {
		copyIn(t, root, strings.TrimPrefix(f, "../../"))
	}
	tExtract := time.Since(t1)

	// 1. The list less drop: the tools of the dropped packages are missing, and only they.
	t1 = time.Now()
	dropArg := "DEPS_DROP=" + strings.Join(drop, " ")
	out, err := inRoot(ctx, root, "make", "--no-print-directory", "-C", srcDir, "deps", dropArg)
	if err != nil {
		t.Fatalf("make deps %s in %s: %v\n%s", dropArg, root, err, tail(out, 4000))
	}
	tDrop := time.Since(t1)
	logLines(t, "make deps "+dropArg, out)
	missing := hostdeps.Missing(root)
	if !slices.Equal(missing, wantMissing) {
		t.Fatalf("after make deps %s: missing %v, want exactly %v (the tools of the dropped packages)",
			dropArg, missing, wantMissing)
	}
	checkErr := hostdeps.MissingError(root, missing)
	if checkErr == nil {
		t.Fatal("the tool check passed with packages dropped from the list")
	}
	for _, tool := range wantMissing {
		if !strings.Contains(checkErr.Error(), tool.String()) {
			t.Errorf("the check's error does not name %s: %v", tool, checkErr)
		}
	}
	t.Logf("negative case: with %s the check fails as it must: %v", dropArg, checkErr)

	// 2. The whole list: it installs exactly the dropped packages, then every tool is there.
	t1 = time.Now()
	out, err = inRoot(ctx, root, "make", "--no-print-directory", "-C", srcDir, "deps")
	if err != nil {
		t.Fatalf("make deps in %s: %v\n%s", root, err, tail(out, 4000))
	}
	tDeps := time.Since(t1)
	logLines(t, "make deps", out)
	if want := "deps: installing: " + strings.Join(drop, " ") + "\n"; !strings.Contains(out, want) {
		t.Errorf("make deps after %s: no line %q in its output", dropArg, strings.TrimSpace(want))
	}
	if err := hostdeps.MissingError(root, hostdeps.Missing(root)); err != nil {
		t.Fatalf("`make deps` is not complete: %v", err)
	}

	// 3. Idempotent: nothing left to install.
	out, err = inRoot(ctx, root, "make", "--no-print-directory", "-C", srcDir, "deps")
	if err != nil || !strings.Contains(out, "deps: all ") || strings.Contains(out, "installing") {
		t.Fatalf("second make deps: %v\n%s", err, tail(out, 2000))
	}
	t.Logf("MEASURE freshroot: lock wait %s, cached root %s (built now: %v), extract %s, "+
		"make deps %s %s, make deps %s, total %s", waited.Round(time.Millisecond), tRoot.Round(time.Millisecond),
		built, tExtract.Round(time.Millisecond), dropArg, tDrop.Round(time.Millisecond),
		tDeps.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}

// cachedRoot returns the tarball of a Debian 12 minbase root with the host's apt sources and
// make installed, building it when absent (minutes: debootstrap). The caller holds the lock.
func cachedRoot(ctx context.Context, logw io.Writer) (tarball string, built bool, err error) {
	mirror, err := harness.DebianMirror()
	if err != nil {
		return "", false, err
	}
	sources, err := hostAptSources()
	if err != nil {
		return "", false, err
	}
	arch, err := exec.CommandContext(ctx, "dpkg", "--print-architecture").Output()
	if err != nil {
		return "", false, fmt.Errorf("dpkg --print-architecture: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", recipe, suite, strings.TrimSpace(string(arch)), mirror)
	for _, name := range slices.Sorted(maps.Keys(sources)) {
		fmt.Fprintf(h, "%s\x00%s\x00", name, sources[name])
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	tarball = filepath.Join(cacheRoot, "freshroot-"+suite+"-"+key+".tar")
	if _, err := os.Stat(tarball); err == nil {
		return tarball, false, nil
	}
	if err := buildRoot(ctx, logw, tarball, mirror, sources); err != nil {
		return "", false, err
	}
	// Older recipes' tarballs are of no further use.
	old, _ := filepath.Glob(filepath.Join(cacheRoot, "freshroot-"+suite+"-*.tar"))
	for _, p := range old {
		if p != tarball {
			os.Remove(p)
		}
	}
	return tarball, true, nil
}

func buildRoot(ctx context.Context, logw io.Writer, tarball, mirror string, sources map[string]string) error {
	if err := os.MkdirAll(debsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", debsDir, err)
	}
	work, err := os.MkdirTemp(cacheRoot, "freshroot-build-")
	if err != nil {
		return fmt.Errorf("build the fresh root: %w", err)
	}
	root := filepath.Join(work, "root")
	defer func() {
		if err := removeRoot(work); err != nil {
			fmt.Fprintf(logw, "freshroot: %v\n", err)
		}
	}()
	t0 := time.Now()
	fmt.Fprintf(logw, "freshroot: debootstrap --variant=minbase %s from %s (about a minute when cold)\n", suite, mirror)
	args := []string{"--variant=minbase", "--cache-dir=" + debsDir, suite, root, mirror}
	if out, err := exec.CommandContext(ctx, "debootstrap", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 3000))
	}
	fmt.Fprintf(logw, "freshroot: debootstrap done in %s\n", time.Since(t0).Round(time.Second))
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	// The host's apt sources (the only mirror this machine reaches), as a fresh install has.
	if err := os.Remove(filepath.Join(root, "etc/apt/sources.list")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for name, content := range sources {
		if err := writeFile(filepath.Join(root, name), content, 0o644); err != nil {
			return err
		}
	}
	// No daemon a package ships is started in the chroot (it would outlive the test).
	if err := writeFile(filepath.Join(root, "usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n", 0o755); err != nil {
		return err
	}
	for _, argv := range [][]string{
		{"apt-get", "update", "-qq"},
		{"apt-get", "install", "-y", "-qq", "--no-install-recommends", "make"},
	} {
		if out, err := inRoot(ctx, root, argv...); err != nil {
			return fmt.Errorf("in %s: %s: %w\n%s", root, strings.Join(argv, " "), err, tail(out, 3000))
		}
	}
	tmp := tarball + ".tmp"
	args = []string{"--numeric-owner", "--exclude=./var/cache/apt/archives/*.deb", "-C", root, "-cf", tmp, "."}
	if out, err := exec.CommandContext(ctx, "tar", args...).CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tar %s: %w: %s", strings.Join(args, " "), err, tail(string(out), 2000))
	}
	if err := os.Rename(tmp, tarball); err != nil {
		return err
	}
	fmt.Fprintf(logw, "freshroot: cached %s (built in %s)\n", tarball, time.Since(t0).Round(time.Second))
	return nil
}

// freshRoot extracts tarball into a new directory (mode 0755) that is removed when the
// test ends.
func freshRoot(t *testing.T, tarball string) string {
	t.Helper()
	root, err := os.MkdirTemp("", "se-freshroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeRoot(root); err != nil {
			t.Error(err)
		}
	})
	if err := os.Chmod(root, 0o755); err != nil { // MkdirTemp makes 0700: munge's postinst su fails then
		t.Fatal(err)
	}
	args := []string{"--numeric-owner", "-C", root, "-xpf", tarball}
	if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v: %s", strings.Join(args, " "), err, out)
	}
	// The host's name server, as of now.
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(root, "etc/resolv.conf"), string(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// removeRoot removes dir unless something is still mounted under it in this mount
// namespace (removing it would then reach into what is mounted), and ends the processes
// still running in it (a daemon a package started).
func removeRoot(dir string) error {
	var errs []error
	if pids := processesIn(dir); len(pids) > 0 {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		errs = append(errs, fmt.Errorf("processes still ran in %s (ended): %v", dir, pids))
	}
	if m := mountsUnder(dir); len(m) > 0 {
		return errors.Join(append(errs, fmt.Errorf("not removing %s: still mounted: %v", dir, m))...)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

// processesIn lists the processes whose root directory is dir or under it.
func processesIn(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		r, err := os.Readlink(filepath.Join("/proc", e.Name(), "root"))
		if err == nil && (r == dir || strings.HasPrefix(r, dir+"/")) {
			out = append(out, pid)
		}
	}
	return out
}

// mountsUnder lists the mount points at or under dir in this process's mount namespace.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{"(cannot read /proc/self/mountinfo: " + err.Error() + ")"}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// inRoot runs argv chrooted in root, in a private mount namespace with /proc, /dev and the
// .deb cache mounted (the helper), and returns its combined output. The mounts end with
// the helper, on every path; the whole process group is killed when ctx ends.
func inRoot(ctx context.Context, root string, argv ...string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(debsDir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, self, append([]string{root, debsDir, "--"}, argv...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Unshareflags: syscall.CLONE_NEWNS, // Go also makes / private (MS_REC|MS_PRIVATE) in the child
		Setpgid:      true,
		Pdeathsig:    syscall.SIGKILL,
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if pids := processesIn(root); len(pids) > 0 {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		err = errors.Join(err, fmt.Errorf("%s left processes running in %s (ended): %v", strings.Join(argv, " "), root, pids))
	}
	return out.String(), err
}

// helper is the test binary run by inRoot: ROOT DEBS -- COMMAND...; it mounts what apt needs
// under ROOT in its own mount namespace and runs COMMAND chrooted there.
func helper(args []string) int {
	if len(args) < 4 || args[2] != "--" {
		fmt.Fprintln(os.Stderr, "freshroot helper: usage: ROOT DEBS -- COMMAND...")
		return 2
	}
	root, debs, argv := args[0], args[1], args[3:]
	// Refuse to mount anything in the host's mount namespace.
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err1 != nil || err2 != nil || self == parent {
		fmt.Fprintf(os.Stderr, "freshroot helper: not in a private mount namespace (%s, parent %s, %v, %v)\n", self, parent, err1, err2)
		return 1
	}
	mounts := []struct {
		src, dst, fstype string
		flags            uintptr
	}{
		{"proc", "proc", "proc", syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC},
		{"/dev", "dev", "", syscall.MS_BIND | syscall.MS_REC},
		{debs, "var/cache/apt/archives", "", syscall.MS_BIND},
	}
	var done []string
	defer func() {
		for _, d := range slices.Backward(done) {
			syscall.Unmount(d, syscall.MNT_DETACH)
		}
	}()
	for _, m := range mounts {
		dst := filepath.Join(root, m.dst)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "freshroot helper:", err)
			return 1
		}
		if err := syscall.Mount(m.src, dst, m.fstype, m.flags, ""); err != nil {
			fmt.Fprintf(os.Stderr, "freshroot helper: mount %s on %s: %v\n", m.src, dst, err)
			return 1
		}
		done = append(done, dst)
	}
	cmd := exec.Command("chroot", append([]string{root}, argv...)...)
	cmd.Env = chrootEnv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "freshroot helper: chroot %s %s: %v\n", root, strings.Join(argv, " "), err)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return ee.ExitCode()
		}
		return 1
	}
	return 0
}

// hostAptSources returns what tells this host's apt where its mirror is and how to reach it:
// sources.list, sources.list.d/*, and the apt.conf.d files that set Acquire:: options
// (proxies, validity checks). Keys are paths relative to /.
func hostAptSources() (map[string]string, error) {
	out := map[string]string{}
	add := func(p string) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(p, "/")] = string(b)
		return nil
	}
	if err := add("/etc/apt/sources.list"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		ps, _ := filepath.Glob(pat)
		for _, p := range ps {
			if err := add(p); err != nil {
				return nil, err
			}
		}
	}
	confs, _ := filepath.Glob("/etc/apt/apt.conf.d/*")
	for _, p := range confs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "Acquire::") {
			out[strings.TrimPrefix(p, "/")] = string(b)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no apt sources on this host (/etc/apt/sources.list, /etc/apt/sources.list.d/)")
	}
	return out, nil
}

// copyIn copies the repository file rel (relative to the repository root) to srcDir/rel
// inside root.
func copyIn(t *testing.T, root, rel string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(root, srcDir, rel), string(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(p, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// logLines logs the "deps:" lines of make's output (what it installed).
func logLines(t *testing.T, what, out string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "deps: ") {
			t.Logf("%s: %s", what, l)
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
