// Package pkgtest tests the RPM and deb packages built by packaging/build-pkg.sh
// (make rpm / make deb): contents, modes, owners, config flags, dependencies,
// rpmlint, reproducibility, and install / upgrade / erase in scratch roots.
//
// The tests build their own packages (versions 1.0.0, 1.0.1 and 1.0.2) from a
// snapshot of the binaries of `make build` ($SE_BIN_DIR, else bin/), so they
// never depend on what is in dist/. They need rpm, rpmlint, dpkg, git,
// systemd-analyze and systemd-tmpfiles, fail naming the Debian package when
// one is missing, and are skipped with -short.
package pkgtest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/tests/hostdeps"
)

// Binaries of the head-node package and where they are installed.
var binaries = map[string]string{
	"slurm-elastic":             "/usr/bin/slurm-elastic",
	"slurm-elastic-hostlist":    "/usr/bin/slurm-elastic-hostlist",
	"slurm-elastic-resume":      "/usr/libexec/slurm-elastic/slurm-elastic-resume",
	"slurm-elastic-suspend":     "/usr/libexec/slurm-elastic/slurm-elastic-suspend",
	"slurm-elastic-resume-fail": "/usr/libexec/slurm-elastic/slurm-elastic-resume-fail",
	"slurm-elastic-prolog":      "/usr/libexec/slurm-elastic/slurm-elastic-prolog",
}

// tools the tests run; each is in the one list of host tools
// (tests/hostdeps/debian12.txt), which names its Debian package.
var tools = []string{"rpm", "rpmlint", "cpio", "dpkg", "dpkg-deb", "git", "groff", "gpg", "gpgconf",
	"bash", "systemd-analyze", "systemd-tmpfiles"}

const (
	slurmUID = 990 // the Slurm user in the scratch roots' /etc/passwd
	sdeEpoch = "1700000000"
)

type fixture struct {
	root   string // repository root
	bins   string // snapshot of the binaries
	dir    string // packages
	config string // a copy of packaging/config.yaml, taken when the packages were built
	// rpm[v] and deb[v] for v in 1.0.0 (shipped config), 1.0.1 (same config),
	// 1.0.2 (a changed default config).
	rpm, deb map[string]string
	err      error
}

var (
	fxOnce sync.Once
	fx     fixture
	tmpAll string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpAll != "" {
		os.RemoveAll(tmpAll)
	}
	os.Exit(code)
}

func requireTools(t *testing.T) {
	t.Helper()
	if err := hostdeps.Require("/", tools...); err != nil {
		t.Fatalf("package tests: %v", err)
	}
}

// get builds the packages once for all tests.
func get(t *testing.T) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("package tests build RPM and deb packages: not run with -short")
	}
	requireTools(t)
	fxOnce.Do(func() { fx.err = fx.build() })
	if fx.err != nil {
		t.Fatal(fx.err)
	}
	return &fx
}

func (f *fixture) build() error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	f.root = filepath.Clean(filepath.Join(wd, "..", ".."))
	f.config = filepath.Join(f.root, "packaging", "config.yaml")
	if tmpAll, err = os.MkdirTemp("", "pkgtest-"); err != nil {
		return err
	}
	binDir := os.Getenv("SE_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join(f.root, "bin")
	}
	// A private copy: another build may rewrite bin/ while the tests run.
	f.bins = filepath.Join(tmpAll, "bin")
	if err := os.MkdirAll(f.bins, 0o755); err != nil {
		return err
	}
	for name := range binaries {
		b, err := os.ReadFile(filepath.Join(binDir, name))
		if err != nil {
			return fmt.Errorf("binary %s: %w (build the binaries with `make build`; SE_BIN_DIR names the directory)", name, err)
		}
		if err := os.WriteFile(filepath.Join(f.bins, name), b, 0o755); err != nil {
			return err
		}
	}
	// Snapshot of the default config: the packages are compared with it.
	orig, err := os.ReadFile(f.config)
	if err != nil {
		return err
	}
	f.config = filepath.Join(tmpAll, "config.yaml")
	if err := os.WriteFile(f.config, orig, 0o644); err != nil {
		return err
	}
	changed := filepath.Join(tmpAll, "config-changed.yaml")
	if err := os.WriteFile(changed, append(orig, "\n# A comment added by a newer release.\n"...), 0o644); err != nil {
		return err
	}
	f.dir = filepath.Join(tmpAll, "pkgs")
	f.rpm, f.deb = map[string]string{}, map[string]string{}
	for _, v := range []struct{ version, config string }{
		{"1.0.0", f.config}, {"1.0.1", f.config}, {"1.0.2", changed},
	} {
		for _, format := range []string{"rpm", "deb"} {
			p, err := f.buildPkg(format, f.dir, v.version, v.config)
			if err != nil {
				return err
			}
			if format == "rpm" {
				f.rpm[v.version] = p
			} else {
				f.deb[v.version] = p
			}
		}
	}
	return nil
}

func (f *fixture) buildPkg(format, out, version, config string) (string, error) {
	cmd := exec.Command(filepath.Join(f.root, "packaging", "build-pkg.sh"), format, out)
	cmd.Dir = f.root
	cmd.Env = append(os.Environ(),
		"PKG_VERSION="+version, "SE_BIN_DIR="+f.bins, "PKG_CONFIG="+config, "SOURCE_DATE_EPOCH="+sdeEpoch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	o, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build-pkg.sh %s %s: %w\n%s", format, version, err, stderr.String())
	}
	return strings.TrimSpace(string(o)), nil
}

// run runs a command and returns its stdout; it fails the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// wantFiles: path -> "perms owner group" for every entry of the head-node
// package; rpm adds the file flags in rpmFlags.
var wantFiles = map[string]string{
	"/etc/logrotate.d/slurm-elastic":                       "-rw-r--r-- root root",
	"/etc/slurm-elastic":                                   "drwxr-x--- root slurm",
	"/etc/slurm-elastic/config.yaml":                       "-rw-r----- root slurm",
	"/usr/bin/slurm-elastic":                               "-rwxr-xr-x root root",
	"/usr/bin/slurm-elastic-hostlist":                      "-rwxr-xr-x root root",
	"/usr/lib/systemd/system/slurm-elastic.service":        "-rw-r--r-- root root",
	"/usr/lib/tmpfiles.d/slurm-elastic.conf":               "-rw-r--r-- root root",
	"/usr/libexec/slurm-elastic":                           "drwxr-xr-x root root",
	"/usr/libexec/slurm-elastic/slurm-elastic-prolog":      "-rwxr-xr-x root root",
	"/usr/libexec/slurm-elastic/slurm-elastic-resume":      "-rwxr-xr-x root root",
	"/usr/libexec/slurm-elastic/slurm-elastic-resume-fail": "-rwxr-xr-x root root",
	"/usr/libexec/slurm-elastic/slurm-elastic-suspend":     "-rwxr-xr-x root root",
	"/usr/share/bash-completion/completions/slurm-elastic": "-rw-r--r-- root root",
	"/usr/share/doc/slurm-elastic":                         "drwxr-xr-x root root",
	"/usr/share/doc/slurm-elastic/README.md":               "-rw-r--r-- root root",
	"/usr/share/doc/slurm-elastic/kubernetes-rbac.yaml":    "-rw-r--r-- root root",
	"/usr/share/doc/slurm-elastic/operations.md":           "-rw-r--r-- root root",
	"/usr/share/doc/slurm-elastic/slurm.conf.example":      "-rw-r--r-- root root",
	"/usr/share/man/man1/slurm-elastic-hostlist.1.gz":      "-rw-r--r-- root root",
	"/usr/share/man/man8/slurm-elastic.8.gz":               "-rw-r--r-- root root",
	"/var/lib/slurm-elastic":                               "drwxr-x--- slurm slurm",
	"/var/log/slurm-elastic":                               "drwxr-x--- slurm slurm",
}

var rpmOnly = map[string]string{
	"/usr/share/licenses/slurm-elastic":         "drwxr-xr-x root root",
	"/usr/share/licenses/slurm-elastic/LICENSE": "-rw-r--r-- root root",
}

var debOnly = map[string]string{
	"/usr/share/doc/slurm-elastic/copyright":           "-rw-r--r-- root root",
	"/usr/share/doc/slurm-elastic/changelog.Debian.gz": "-rw-r--r-- root root",
}

// rpm file flags: c config, n noreplace, d doc, l license.
var rpmFlags = map[string]string{
	"/etc/slurm-elastic/config.yaml":                    "cn",
	"/etc/logrotate.d/slurm-elastic":                    "cn",
	"/usr/share/doc/slurm-elastic/README.md":            "d",
	"/usr/share/doc/slurm-elastic/kubernetes-rbac.yaml": "d",
	"/usr/share/doc/slurm-elastic/operations.md":        "d",
	"/usr/share/doc/slurm-elastic/slurm.conf.example":   "d",
	"/usr/share/man/man1/slurm-elastic-hostlist.1.gz":   "d",
	"/usr/share/man/man8/slurm-elastic.8.gz":            "d",
	"/usr/share/licenses/slurm-elastic/LICENSE":         "l",
}

func TestRPMContents(t *testing.T) {
	f := get(t)
	pkg := f.rpm["1.0.0"]

	out := run(t, "rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags}|%{FILENAMES}\n]", pkg)
	got := map[string]string{}
	for _, l := range lines(out) {
		meta, path, _ := strings.Cut(l, "|")
		got[path] = strings.TrimSpace(meta)
	}
	want := map[string]string{}
	for p, m := range wantFiles {
		want[p] = strings.TrimSpace(m + " " + rpmFlags[p])
	}
	for p, m := range rpmOnly {
		want[p] = strings.TrimSpace(m + " " + rpmFlags[p])
	}
	compareMaps(t, "rpm -qpl", got, want)

	info := run(t, "rpm", "-qpi", pkg)
	for _, w := range []string{
		"Name        : slurm-elastic", "Version     : 1.0.0", "Release     : 1", "Architecture: x86_64",
		"License     : Apache-2.0", "Build Host  : slurm-elastic-build",
	} {
		if !strings.Contains(info, w) {
			t.Errorf("rpm -qpi: no %q in\n%s", w, info)
		}
	}
	if got := lines(run(t, "rpm", "-qpR", pkg)); !slices.Equal(got, []string{"slurm"}) {
		t.Errorf("rpm -qpR = %q, want [slurm] (the package creates no user; Slurm's packages do)", got)
	}
	if got := lines(run(t, "rpm", "-qp", "--recommends", pkg)); !slices.Equal(got, []string{"logrotate"}) {
		t.Errorf("rpm -qp --recommends = %q, want [logrotate]", got)
	}
	if got := run(t, "rpm", "-qp", "--qf", "%{BUILDTIME}", pkg); got != sdeEpoch {
		t.Errorf("build time %s, want SOURCE_DATE_EPOCH %s", got, sdeEpoch)
	}
	if got := lines(run(t, "rpm", "-qp", "--qf", "[%{FILEMTIMES}\n]", pkg)); slices.ContainsFunc(got, func(s string) bool { return s != sdeEpoch }) {
		t.Errorf("file mtimes %q, want all %s", got, sdeEpoch)
	}
	checkScripts(t, run(t, "rpm", "-qp", "--scripts", pkg), []string{"postinstall scriptlet", "postuninstall scriptlet"})
}

// checkScripts: only the wanted scriptlets, each only a guarded daemon-reload.
func checkScripts(t *testing.T, scripts string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(scripts, w) {
			t.Errorf("no %s in\n%s", w, scripts)
		}
	}
	for _, bad := range []string{"preinstall", "preuninstall", "useradd", "groupadd", "adduser", "systemctl enable", "systemctl start", "curl", "wget"} {
		if strings.Contains(scripts, bad) {
			t.Errorf("scriptlets contain %q:\n%s", bad, scripts)
		}
	}
	if n := strings.Count(scripts, "systemctl daemon-reload"); n != len(want) {
		t.Errorf("%d daemon-reloads in scriptlets, want %d:\n%s", n, len(want), scripts)
	}
}

func compareMaps(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: missing %s", what, p)
		case g != w:
			t.Errorf("%s: %s is %q, want %q", what, p, g, w)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %s (%s)", what, p, g)
		}
	}
}

// TestRPMLint fails on any rpmlint finding not explained in packaging/README.md.
func TestRPMLint(t *testing.T) {
	f := get(t)
	// rpmlint unpacks with `rpm2cpio | cpio -id`, and nfpm's payload holds
	// absolute paths: without --no-absolute-filenames it would write over /.
	wrap := t.TempDir()
	marker := filepath.Join(wrap, "used")
	script := fmt.Sprintf("#!/bin/sh\necho >>%s\nexec %s --no-absolute-filenames \"$@\"\n", marker, mustLook(t, "cpio"))
	if err := os.WriteFile(filepath.Join(wrap, "cpio"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// Fedora's and RHEL's rpmlint configs expect gzip man pages (what
	// brp-compress makes); Debian's rpmlint defaults to bz2.
	cfg := filepath.Join(wrap, "rpmlint.toml")
	must(t, os.WriteFile(cfg, []byte("CompressExtension = \"gz\"\n"), 0o644))
	cmd := exec.Command("rpmlint", "-c", cfg, f.rpm["1.0.0"])
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PATH="+wrap+":"+os.Getenv("PATH"))
	out, _ := cmd.CombinedOutput() // exits non-zero on any error-level finding
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("rpmlint did not unpack through the safe cpio wrapper (%v); output:\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("1 packages and 0 specfiles checked")) {
		t.Fatalf("rpmlint did not check the package:\n%s", out)
	}
	explained := readmeChecks(t, filepath.Join(f.root, "packaging", "README.md"))
	finding := regexp.MustCompile(`^slurm-elastic\.x86_64: [EW]: (\S+)`)
	seen := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		m := finding.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		seen[m[1]] = true
		if !explained[m[1]] {
			t.Errorf("rpmlint finding not explained in packaging/README.md: %s", l)
		}
	}
	if len(seen) == 0 {
		t.Errorf("rpmlint reported nothing at all; expected at least the explained findings:\n%s", out)
	}
	t.Logf("rpmlint findings: %s", strings.Join(slices.Sorted(maps.Keys(seen)), " "))
}

// readmeChecks: the check names in the rpmlint table of packaging/README.md.
func readmeChecks(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, sect, ok := strings.Cut(string(b), "\n## rpmlint\n")
	if !ok {
		t.Fatalf("%s: no ## rpmlint section", path)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\| (.+) \\|$")
	out := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(sect, -1) {
		if strings.TrimSpace(m[2]) != "" {
			out[m[1]] = true
		}
	}
	return out
}

func mustLook(t *testing.T, tool string) string {
	t.Helper()
	if err := hostdeps.Require("/", tool); err != nil {
		t.Fatal(err)
	}
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// scratchRoot has an /etc/passwd and /etc/group with root and slurm (id sid).
func scratchRoot(t *testing.T, sid int) string {
	t.Helper()
	r := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(r, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(r, "etc", "passwd"), fmt.Appendf(nil,
		"root:x:0:0:root:/root:/bin/sh\nslurm:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", sid, sid), 0o644))
	must(t, os.WriteFile(filepath.Join(r, "etc", "group"), fmt.Appendf(nil, "root:x:0:\nslurm:x:%d:\n", sid), 0o644))
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkInstalled runs every binary's --version and --help from root r, checks
// owners and modes of the config and directories (uid/gid of slurm: sid), the
// bash completion, the tmpfiles entry and the systemd unit.
func checkInstalled(t *testing.T, r string, sid int) {
	t.Helper()
	for name, path := range binaries {
		bin := filepath.Join(r, path)
		out := run(t, bin, "--version")
		if !strings.HasPrefix(out, name+" version ") {
			t.Errorf("%s --version = %q", path, out)
		}
		out = run(t, bin, "--help")
		if !strings.Contains(out, "USAGE:") || !strings.Contains(out, name) {
			t.Errorf("%s --help = %q", path, out)
		}
	}
	for _, c := range []struct {
		path     string
		mode     fs.FileMode
		uid, gid int
	}{
		{"/etc/slurm-elastic", fs.ModeDir | 0o750, 0, sid},
		{"/etc/slurm-elastic/config.yaml", 0o640, 0, sid},
		{"/var/lib/slurm-elastic", fs.ModeDir | 0o750, sid, sid},
		{"/var/log/slurm-elastic", fs.ModeDir | 0o750, sid, sid},
		{"/usr/bin/slurm-elastic", 0o755, 0, 0},
	} {
		fi, err := os.Stat(filepath.Join(r, c.path))
		if err != nil {
			t.Error(err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != c.mode || int(st.Uid) != c.uid || int(st.Gid) != c.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", c.path, fi.Mode(), st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
	}

	// Bash completion, from the installed binary's --help.
	comp := filepath.Join(r, "/usr/share/bash-completion/completions/slurm-elastic")
	script := fmt.Sprintf(`source %q; PATH=%q:$PATH
COMP_WORDS=(slurm-elastic co); COMP_CWORD=1; _slurm_elastic; echo "${COMPREPLY[*]}"
COMP_WORDS=(slurm-elastic conf ""); COMP_CWORD=2; _slurm_elastic; echo "${COMPREPLY[*]}"
complete -p slurm-elastic`, comp, filepath.Join(r, "usr/bin"))
	got := lines(run(t, "bash", "--norc", "-c", script))
	if len(got) != 3 || got[0] != "conf" || !strings.Contains(" "+got[1]+" ", " check ") || !strings.Contains(" "+got[1]+" ", " slurm ") ||
		!strings.Contains(got[2], "-F _slurm_elastic slurm-elastic") {
		t.Errorf("bash completion: got %q", got)
	}

	// tmpfiles.d recreates the state and log directories with their owners.
	must(t, os.RemoveAll(filepath.Join(r, "var/lib/slurm-elastic")))
	run(t, "systemd-tmpfiles", "--root="+r, "--create")
	if fi, err := os.Stat(filepath.Join(r, "var/lib/slurm-elastic")); err != nil {
		t.Errorf("systemd-tmpfiles --create: %v", err)
	} else if st := fi.Sys().(*syscall.Stat_t); fi.Mode() != fs.ModeDir|0o750 || int(st.Uid) != sid {
		t.Errorf("tmpfiles: /var/lib/slurm-elastic %v uid %d", fi.Mode(), st.Uid)
	}
}

// checkUnit verifies the reconciler unit with systemd-analyze (ExecStart
// pointed into root r) and the hardening the package promises.
func checkUnit(t *testing.T, r string) {
	t.Helper()
	unit, err := os.ReadFile(filepath.Join(r, "usr/lib/systemd/system/slurm-elastic.service"))
	must(t, err)
	for _, w := range []string{
		"User=slurm", "ExecStart=/usr/bin/slurm-elastic --config /etc/slurm-elastic/config.yaml daemon", "ExecReload=/bin/kill -HUP $MAINPID",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/slurm-elastic /var/log/slurm-elastic",
		"PrivateTmp=yes", "ProtectHome=yes", "CapabilityBoundingSet=\n",
	} {
		if !bytes.Contains(unit, []byte(w)) {
			t.Errorf("slurm-elastic.service: no %q", w)
		}
	}
	dir := t.TempDir()
	u := filepath.Join(dir, "slurm-elastic.service")
	must(t, os.WriteFile(u, bytes.ReplaceAll(unit, []byte("ExecStart=/usr/bin/"), []byte("ExecStart="+r+"/usr/bin/")), 0o644))
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", u).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify slurm-elastic.service: %v\n%s", err, out)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

const edit = "\n# edited by the site\n"

// TestRPMInstallUpgradeErase installs into a scratch root, upgrades twice
// (same default config, then a changed one) with an edited config, and erases.
func TestRPMInstallUpgradeErase(t *testing.T) {
	f := get(t)
	r := scratchRoot(t, slurmUID)
	rpm := func(args ...string) string { return run(t, "rpm", append([]string{"--root", r}, args...)...) }
	rpm("--initdb")
	// --nodeps: the scratch root has no Slurm; --noscripts: no /bin/sh in it.
	rpm("-i", "--nodeps", "--noscripts", f.rpm["1.0.0"])
	if got := strings.TrimSpace(rpm("-q", "slurm-elastic")); got != "slurm-elastic-1.0.0-1.x86_64" {
		t.Fatalf("rpm -q = %q", got)
	}
	rpm("-V", "--nodeps", "slurm-elastic")
	checkInstalled(t, r, slurmUID)
	checkUnit(t, r)
	cfg := filepath.Join(r, "etc/slurm-elastic/config.yaml")
	if got := readFile(t, cfg); got != readFile(t, f.config) {
		t.Fatal("installed config.yaml differs from packaging/config.yaml")
	}

	// The site edits the config.
	must(t, os.WriteFile(cfg, []byte(readFile(t, cfg)+edit), 0o640))

	// Upgrade, default config unchanged: the edit stays, nothing new beside it.
	rpm("-U", "--nodeps", "--noscripts", f.rpm["1.0.1"])
	if got := strings.TrimSpace(rpm("-q", "slurm-elastic")); got != "slurm-elastic-1.0.1-1.x86_64" {
		t.Fatalf("after upgrade rpm -q = %q", got)
	}
	if !strings.HasSuffix(readFile(t, cfg), edit) {
		t.Error("upgrade to 1.0.1 lost the edited config")
	}
	if exists(cfg + ".rpmnew") {
		t.Error("upgrade with an unchanged default config left config.yaml.rpmnew")
	}
	// Upgrade, default config changed: the edit stays, the new default is .rpmnew.
	rpm("-U", "--nodeps", "--noscripts", f.rpm["1.0.2"])
	if !strings.HasSuffix(readFile(t, cfg), edit) {
		t.Error("upgrade to 1.0.2 lost the edited config")
	}
	if got := readFile(t, cfg+".rpmnew"); !strings.Contains(got, "A comment added by a newer release") {
		t.Errorf("config.yaml.rpmnew is not 1.0.2's default config")
	}
	for name, path := range binaries {
		if out := run(t, filepath.Join(r, path), "--version"); !strings.HasPrefix(out, name) {
			t.Errorf("%s after upgrade: %q", path, out)
		}
	}

	// Erase: binaries go, the edited config stays as .rpmsave.
	rpm("-e", "--nodeps", "--noscripts", "slurm-elastic")
	if _, err := runErr("rpm", "--root", r, "-q", "slurm-elastic"); err == nil {
		t.Error("slurm-elastic still installed after rpm -e")
	}
	for _, path := range binaries {
		if exists(filepath.Join(r, path)) {
			t.Errorf("%s still there after rpm -e", path)
		}
	}
	for _, p := range []string{"usr/libexec/slurm-elastic", "usr/lib/systemd/system/slurm-elastic.service", "etc/slurm-elastic/config.yaml"} {
		if exists(filepath.Join(r, p)) {
			t.Errorf("%s still there after rpm -e", p)
		}
	}
	if !strings.HasSuffix(readFile(t, cfg+".rpmsave"), edit) {
		t.Error("rpm -e did not keep the edited config as config.yaml.rpmsave")
	}
}

func TestDebContents(t *testing.T) {
	f := get(t)
	pkg := f.deb["1.0.0"]
	fields := map[string]string{
		"Package": "slurm-elastic", "Version": "1.0.0-1", "Architecture": "amd64",
		"Depends": "slurm-client | slurm-smd-client", "Recommends": "logrotate", "Section": "admin",
	}
	for k, want := range fields {
		if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", pkg, k)); got != want {
			t.Errorf("dpkg-deb -f %s = %q, want %q", k, got, want)
		}
	}
	// dpkg-deb -c: "perms owner/group size date time ./path"
	got := map[string]string{}
	for _, l := range lines(run(t, "dpkg-deb", "-c", pkg)) {
		fl := strings.Fields(l)
		if len(fl) < 6 {
			t.Fatalf("dpkg-deb -c line %q", l)
		}
		path := strings.TrimSuffix(strings.TrimPrefix(fl[5], "."), "/")
		owner, group, _ := strings.Cut(fl[1], "/")
		if owner == "0" {
			owner = "root" // nfpm writes the changelog with numeric ids
		}
		if group == "0" {
			group = "root"
		}
		got[path] = fl[0] + " " + owner + " " + group
	}
	want := map[string]string{}
	for p, m := range wantFiles {
		want[p] = m
	}
	for p, m := range debOnly {
		want[p] = m
	}
	// Parent directories are in the tar too: root-owned 0755.
	for p := range got {
		if _, ok := want[p]; !ok && strings.HasPrefix(got[p], "d") && isParent(p, want) {
			want[p] = "drwxr-xr-x root root"
		}
	}
	compareMaps(t, "dpkg-deb -c", got, want)

	conffiles := lines(run(t, "sh", "-c", "dpkg-deb --ctrl-tarfile \"$1\" | tar -xOf - ./conffiles", "sh", pkg))
	if !slices.Equal(conffiles, []string{"/etc/logrotate.d/slurm-elastic", "/etc/slurm-elastic/config.yaml"}) {
		t.Errorf("conffiles = %q", conffiles)
	}
	ctrl := run(t, "sh", "-c", "dpkg-deb --ctrl-tarfile \"$1\" | tar -tf -", "sh", pkg)
	var scripts strings.Builder
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if strings.Contains(ctrl, "./"+s+"\n") {
			fmt.Fprintf(&scripts, "%s scriptlet\n%s", s,
				run(t, "sh", "-c", "dpkg-deb --ctrl-tarfile \"$1\" | tar -xOf - ./"+s, "sh", pkg))
		}
	}
	checkScripts(t, scripts.String(), []string{"postinst scriptlet", "postrm scriptlet"})
}

func isParent(p string, files map[string]string) bool {
	for f := range files {
		if strings.HasPrefix(f, p+"/") {
			return true
		}
	}
	return false
}

// TestDebInstallUpgradeRemove: dpkg -x, then dpkg --root install, upgrades
// with an edited conffile, and remove (conffiles stay until purge).
func TestDebInstallUpgradeRemove(t *testing.T) {
	f := get(t)

	x := t.TempDir()
	run(t, "dpkg-deb", "-x", f.deb["1.0.0"], x)
	for name, path := range binaries {
		if out := run(t, filepath.Join(x, path), "--version"); !strings.HasPrefix(out, name+" version ") {
			t.Errorf("dpkg -x: %s --version = %q", path, out)
		}
		if out := run(t, filepath.Join(x, path), "--help"); !strings.Contains(out, "USAGE:") {
			t.Errorf("dpkg -x: %s --help = %q", path, out)
		}
	}

	// dpkg names owners from the host's user database (not the root's), so
	// the scratch root gets the host's slurm ids.
	out, err := runErr("getent", "passwd", "slurm")
	if err != nil {
		t.Fatal("the host has no user slurm: dpkg cannot give the package's files their owner (install slurm-client: make deps)")
	}
	var sid int
	if _, err := fmt.Sscanf(strings.Split(out, ":")[2], "%d", &sid); err != nil {
		t.Fatalf("getent passwd slurm: %q", out)
	}
	if out, err := runErr("getent", "group", "slurm"); err != nil || strings.Split(out, ":")[2] != fmt.Sprint(sid) {
		t.Fatalf("the host's group slurm (%q) does not have the user's id %d", out, sid)
	}
	r := scratchRoot(t, sid)
	for _, d := range []string{"info", "updates", "triggers"} {
		must(t, os.MkdirAll(filepath.Join(r, "var/lib/dpkg", d), 0o755))
	}
	for _, f := range []string{"status", "available"} {
		must(t, os.WriteFile(filepath.Join(r, "var/lib/dpkg", f), nil, 0o644))
	}
	// --force-script-chrootless: the root has no /bin/sh (our scripts skip
	// daemon-reload when DPKG_ROOT is set); --force-depends: no Slurm in it.
	dpkg := func(args ...string) string {
		return run(t, "dpkg", append([]string{"--root=" + r, "--force-script-chrootless", "--force-depends",
			"--force-confdef", "--force-confold"}, args...)...)
	}
	dpkg("-i", f.deb["1.0.0"])
	status := func() string {
		return strings.TrimSpace(run(t, "dpkg-query", "--admindir="+filepath.Join(r, "var/lib/dpkg"), "-W", "-f", "${Status} ${Version}", "slurm-elastic"))
	}
	if got := status(); got != "install ok installed 1.0.0-1" {
		t.Fatalf("dpkg-query: %q", got)
	}
	checkInstalled(t, r, sid)

	cfg := filepath.Join(r, "etc/slurm-elastic/config.yaml")
	must(t, os.WriteFile(cfg, []byte(readFile(t, cfg)+edit), 0o640))
	dpkg("-i", f.deb["1.0.1"])
	if got := status(); got != "install ok installed 1.0.1-1" {
		t.Fatalf("after upgrade dpkg-query: %q", got)
	}
	if !strings.HasSuffix(readFile(t, cfg), edit) || exists(cfg+".dpkg-dist") {
		t.Error("upgrade to 1.0.1 (same default config) did not keep the edited config untouched")
	}
	dpkg("-i", f.deb["1.0.2"])
	if !strings.HasSuffix(readFile(t, cfg), edit) {
		t.Error("upgrade to 1.0.2 lost the edited config")
	}
	if !strings.Contains(readFile(t, cfg+".dpkg-dist"), "A comment added by a newer release") {
		t.Error("upgrade to 1.0.2 did not put the new default config in config.yaml.dpkg-dist")
	}

	dpkg("-r", "slurm-elastic")
	for _, path := range binaries {
		if exists(filepath.Join(r, path)) {
			t.Errorf("%s still there after dpkg -r", path)
		}
	}
	if !strings.HasSuffix(readFile(t, cfg), edit) {
		t.Error("dpkg -r did not keep the edited config (conffiles stay until purge)")
	}
}

// TestReproducible: the same binaries, version and commit time give
// byte-identical packages.
func TestReproducible(t *testing.T) {
	f := get(t)
	out := t.TempDir()
	for format, first := range map[string]string{"rpm": f.rpm["1.0.0"], "deb": f.deb["1.0.0"]} {
		again, err := f.buildPkg(format, out, "1.0.0", f.config)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mustRead(t, first), mustRead(t, again)) {
			t.Errorf("%s: two builds of the same input differ", format)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return b
}

// TestVersion: packaging/version.sh on scratch git repositories, and the
// order rpm and dpkg give its versions.
func TestVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("not run with -short")
	}
	requireTools(t)
	wd, err := os.Getwd()
	must(t, err)
	script := mustRead(t, filepath.Join(wd, "..", "version.sh"))

	repo := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(repo, "packaging"), 0o755))
	must(t, os.WriteFile(filepath.Join(repo, "packaging", "version.sh"), script, 0o755))
	git := func(args ...string) string {
		return strings.TrimSpace(run(t, "git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@localhost",
			"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...))
	}
	version := func() string { return strings.TrimSpace(run(t, filepath.Join(repo, "packaging", "version.sh"))) }
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "one")
	git("commit", "-q", "--allow-empty", "-m", "two")
	sha := git("rev-parse", "--short", "HEAD")
	check := func(want string) {
		t.Helper()
		if got := version(); got != want {
			t.Errorf("version.sh = %q, want %q", got, want)
		}
	}
	check("0.0.0+git2." + sha)
	git("tag", "v1.2.3")
	check("1.2.3")
	git("commit", "-q", "--allow-empty", "-m", "three")
	sha = git("rev-parse", "--short", "HEAD")
	check("1.2.3+git1." + sha)
	must(t, os.WriteFile(filepath.Join(repo, "packaging", "version.sh"), append(script, '\n'), 0o755))
	check("1.2.3+git1." + sha + ".dirty")
	git("checkout", "-q", "--", ".")
	git("tag", "v1.3.0-rc1")
	check("1.3.0~rc1")

	// Ascending in both rpm and dpkg order.
	order := []string{"0.0.0", "0.0.0+git4.abc1234", "0.0.0+git12.0abc123", "0.0.0+git12.0abc123.dirty",
		"1.2.3~rc1", "1.2.3", "1.2.3+git1.fff0000", "1.2.3+git10.0000000", "1.10.0"}
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		if _, err := runErr("dpkg", "--compare-versions", a, "lt", b); err != nil {
			t.Errorf("dpkg: %s is not older than %s", a, b)
		}
		got := strings.TrimSpace(run(t, "rpm", "--eval", fmt.Sprintf("%%{lua: print(rpm.vercmp(%q, %q))}", a, b)))
		if got != "-1" {
			t.Errorf("rpm: vercmp(%s, %s) = %s, want -1", a, b, got)
		}
	}
}

// TestHealthPackage: the compute-node package slurm-elastic-health, built from
// bin/slurm-elastic-health (make build-health, cgo).
func TestHealthPackage(t *testing.T) {
	f := get(t)
	binDir := os.Getenv("SE_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join(f.root, "bin")
	}
	b, err := os.ReadFile(filepath.Join(binDir, "slurm-elastic-health"))
	if err != nil {
		t.Skipf("slurm-elastic-health is not built (%v): `make build-health` builds it (cgo), `make rpm` does both", err)
	}
	bins := t.TempDir()
	must(t, os.WriteFile(filepath.Join(bins, "slurm-elastic-health"), b, 0o755))
	out := t.TempDir()
	build := func(format string) string {
		cmd := exec.Command(filepath.Join(f.root, "packaging", "build-pkg.sh"), format, out, "slurm-elastic-health")
		cmd.Dir = f.root
		cmd.Env = append(os.Environ(), "PKG_VERSION=1.0.0", "SE_BIN_DIR="+bins, "SOURCE_DATE_EPOCH="+sdeEpoch)
		o, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("build-pkg.sh %s slurm-elastic-health: %v\n%s", format, err, o)
		}
		l := lines(string(o))
		return l[len(l)-1]
	}
	rpmPkg, debPkg := build("rpm"), build("deb")

	got := map[string]string{}
	for _, l := range lines(run(t, "rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME}|%{FILENAMES}\n]", rpmPkg)) {
		meta, path, _ := strings.Cut(l, "|")
		got[path] = meta
	}
	compareMaps(t, "rpm -qpl slurm-elastic-health", got, map[string]string{
		"/usr/sbin/slurm-elastic-health": "-rwxr-xr-x root root",
		// nfpm writes RPM symlinks without permission bits; Linux ignores them.
		"/usr/sbin/slurm-elastic-health-check":                 "l--------- root root",
		"/usr/lib/systemd/system/slurm-elastic-health.service": "-rw-r--r-- root root",
		// The node-side config and the directories the unit needs, with the
		// same owner and mode as in slurm-elastic (a host may have both).
		"/etc/slurm-elastic":                                "drwxr-x--- root slurm",
		"/etc/slurm-elastic/health.yaml":                    "-rw-r--r-- root root",
		"/var/log/slurm-elastic":                            "drwxr-x--- slurm slurm",
		"/usr/share/doc/slurm-elastic-health":               "drwxr-xr-x root root",
		"/usr/share/doc/slurm-elastic-health/operations.md": "-rw-r--r-- root root",
		"/usr/share/licenses/slurm-elastic-health":          "drwxr-xr-x root root",
		"/usr/share/licenses/slurm-elastic-health/LICENSE":  "-rw-r--r-- root root",
		"/usr/share/man/man8/slurm-elastic-health.8.gz":     "-rw-r--r-- root root",
	})
	if got := strings.TrimSpace(run(t, "rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", rpmPkg)); !strings.Contains(got, "cn /etc/slurm-elastic/health.yaml") {
		t.Errorf("rpm: health.yaml is not %%config(noreplace):\n%s", got)
	}
	x0 := t.TempDir()
	run(t, "dpkg-deb", "-e", debPkg, x0)
	if got := readFile(t, filepath.Join(x0, "conffiles")); !slices.Contains(lines(got), "/etc/slurm-elastic/health.yaml") {
		t.Errorf("deb conffiles = %q, want /etc/slurm-elastic/health.yaml", got)
	}
	if got := lines(run(t, "rpm", "-qpR", rpmPkg)); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"glibc", "slurm"}) {
		t.Errorf("rpm -qpR slurm-elastic-health = %q", got)
	}
	if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", debPkg, "Depends")); got != "slurm-client | slurm-smd-client, libc6" {
		t.Errorf("deb Depends = %q", got)
	}

	r := scratchRoot(t, slurmUID)
	run(t, "rpm", "--root", r, "--initdb")
	run(t, "rpm", "--root", r, "-i", "--nodeps", "--noscripts", rpmPkg)
	bin := filepath.Join(r, "usr/sbin/slurm-elastic-health")
	if out := run(t, bin, "--version"); !strings.HasPrefix(out, "slurm-elastic-health version ") {
		t.Errorf("--version = %q", out)
	}
	if out := run(t, bin, "--help"); !strings.Contains(out, "USAGE:") {
		t.Errorf("--help = %q", out)
	}
	if l, err := os.Readlink(filepath.Join(r, "usr/sbin/slurm-elastic-health-check")); err != nil || l != "/usr/sbin/slurm-elastic-health" {
		t.Errorf("slurm-elastic-health-check -> %q (%v), want the HealthCheckProgram link to /usr/sbin/slurm-elastic-health", l, err)
	}
	x := t.TempDir()
	run(t, "dpkg-deb", "-x", debPkg, x)
	if out := run(t, filepath.Join(x, "usr/sbin/slurm-elastic-health"), "--version"); !strings.HasPrefix(out, "slurm-elastic-health version ") {
		t.Errorf("deb: --version = %q", out)
	}
	for _, d := range []string{"etc/slurm-elastic", "var/log/slurm-elastic"} {
		if fi, err := os.Stat(filepath.Join(x, d)); err != nil || !fi.IsDir() {
			t.Errorf("deb: /%s is not shipped: %v", d, err)
		}
	}
	// The installed node-side config is packaging/health.yaml, and the
	// daemon accepts it as installed: no head secrets, nothing else needed
	// (--no-slurm: no Slurm here).
	hy := filepath.Join(r, "etc/slurm-elastic/health.yaml")
	if readFile(t, hy) != readFile(t, filepath.Join(f.root, "packaging/health.yaml")) {
		t.Error("installed health.yaml differs from packaging/health.yaml")
	}
	chk := exec.Command(bin, "--config", hy, "--once", "--no-slurm", "--node", "n1")
	chk.Env = append(os.Environ(), "SLURM_ELASTIC_LOG_FILE=stderr")
	if o, err := chk.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		// 1 or 2: checks ran and found this build host wanting (no slurmd); 3: the config was refused.
		if !errors.As(err, &ee) || ee.ExitCode() == 3 {
			t.Errorf("slurm-elastic-health --config %s --once --no-slurm: %v\n%s", hy, err, o)
		}
	}
	unit := readFile(t, filepath.Join(r, "usr/lib/systemd/system/slurm-elastic-health.service"))
	if !strings.Contains(unit, "--config /etc/slurm-elastic/health.yaml") {
		t.Error("the health unit does not run with the node-side config /etc/slurm-elastic/health.yaml")
	}
	u := filepath.Join(t.TempDir(), "slurm-elastic-health.service")
	must(t, os.WriteFile(u, []byte(strings.ReplaceAll(unit, "ExecStart=/usr/sbin/", "ExecStart="+r+"/usr/sbin/")), 0o644))
	if o, err := exec.Command("systemd-analyze", "verify", "--man=no", u).CombinedOutput(); err != nil || len(bytes.TrimSpace(o)) > 0 {
		t.Errorf("systemd-analyze verify slurm-elastic-health.service: %v\n%s", err, o)
	}
}
