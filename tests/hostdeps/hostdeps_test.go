package hostdeps

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParseEmbedded(t *testing.T) {
	if parseErr != nil {
		t.Fatal(parseErr)
	}
	// The tools the harness's containers.conf and image build rely on are listed.
	for _, name := range []string{"podman", "runc", "/usr/lib/podman/netavark", "/usr/lib/podman/aardvark-dns",
		"/usr/libexec/podman/catatonit", "debootstrap", "chroot", "tar", "ip", "iptables", "gcc", "make"} {
		if _, ok := Lookup(name); !ok {
			t.Errorf("%s is not listed in %s", name, File)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"podman\n":                       `:1: want "TOOL PACKAGE", got "podman"`,
		"# c\n\nrunc runc extra\n":       `:3: want "TOOL PACKAGE"`,
		"usr/bin/x x\n":                  `:1: tool "usr/bin/x": a path must be absolute`,
		"a pa\nb pb # ok\na pc\n":        `:3: tool "a" is already listed on line 1`,
		"# only comments\n\n   # more\n": `no tools listed`,
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", in, err, want)
		}
	}
	got, err := Parse("a pa # why\n  /x/y   py\n")
	if err != nil || !slices.Equal(got, []Tool{{"a", "pa", 1}, {"/x/y", "py", 2}}) {
		t.Fatalf("Parse = %v, %v", got, err)
	}
}

// TestMakefileReadsTheSameList: `make deps` installs exactly the packages Packages returns,
// and DEPS_DROP drops one.
func TestMakefileReadsTheSameList(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make not found: %v", err)
	}
	list := func(args ...string) []string {
		cmd := exec.Command("make", append([]string{"-s", "--no-print-directory", "-C", "../..", "deps-list"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("make deps-list %v: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	if got, want := list(), Packages(); !slices.Equal(got, want) {
		t.Fatalf("make deps-list = %v\nPackages()    = %v", got, want)
	}
	got := list("DEPS_DROP=netavark")
	if slices.Contains(got, "netavark") || len(got) != len(Packages())-1 {
		t.Fatalf("make deps-list DEPS_DROP=netavark = %v", got)
	}
	if want := Packages("netavark"); !slices.Equal(got, want) {
		t.Fatalf("make deps-list DEPS_DROP=netavark = %v, Packages(netavark) = %v", got, want)
	}
}

// TestPresentUnderRoot resolves links as a chroot would: merged /usr, absolute links
// (taken inside root), relative links, and links that point nowhere.
func TestPresentUnderRoot(t *testing.T) {
	root := t.TempDir()
	mk := func(p string, mode os.FileMode) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(target, p string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	mk("usr/bin/tar", 0o755)
	mk("usr/bin/notexec", 0o644)
	mk("usr/sbin/iptables-legacy", 0o755)
	mk("usr/include/stdio.h", 0o644)
	mk("usr/bin/catatonit", 0o755)
	ln("usr/bin", "bin")                                  // merged /usr
	ln("/etc/alternatives/iptables", "usr/sbin/iptables") // absolute: inside root
	ln("/usr/sbin/iptables-legacy", "etc/alternatives/iptables")
	ln("../../bin/catatonit", "usr/libexec/podman/catatonit") // relative, through the /bin link
	ln("/nonexistent", "usr/bin/dangling")
	ln("../../../../../../usr/bin/tar", "usr/bin/up") // ".." stops at root
	ln("loop", "usr/bin/loop")

	for name, want := range map[string]bool{
		"tar": true, "iptables": true, "up": true,
		"notexec": false, "dangling": false, "loop": false, "absent": false,
		"/bin/tar": true, "/usr/include/stdio.h": true, "/usr/libexec/podman/catatonit": true,
		"/usr/include/absent.h": false, "/usr/bin": false, // a directory is not a tool
	} {
		if got := (Tool{Name: name, Package: "p"}).Present(root); got != want {
			t.Errorf("Present(%s) under %s = %v, want %v", name, root, got, want)
		}
	}
	// Nothing outside root counts: the host has /usr/bin/env, root does not.
	if (Tool{Name: "env", Package: "coreutils"}).Present(root) {
		t.Error("env found under a root that lacks it")
	}
}

func TestRequireNamesToolAndPackage(t *testing.T) {
	root := t.TempDir()
	err := Require(root, "/usr/lib/podman/netavark", "podman")
	if err == nil {
		t.Fatal("Require on an empty root: nil error")
	}
	for _, want := range []string{"missing on " + root, "/usr/lib/podman/netavark (Debian package netavark)",
		"podman (Debian package podman)", "make deps", "apt-get install netavark podman"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := Require(root, "no-such-tool"); err == nil || !strings.Contains(err.Error(), "not listed in "+File) {
		t.Errorf("Require(no-such-tool) = %v", err)
	}
	if got := len(Missing(root)); got != len(Tools()) {
		t.Errorf("Missing(empty root) = %d tools, want all %d", got, len(Tools()))
	}
}

// TestDocsPointHere: the READMEs name the list instead of repeating it, and README.md states
// go.mod's Go version.
func TestDocsPointHere(t *testing.T) {
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("../..", p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, doc := range []string{"README.md", "tests/harness/README.md"} {
		if !strings.Contains(read(doc), File) {
			t.Errorf("%s does not point to %s", doc, File)
		}
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(read("go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	if readme := read("README.md"); !strings.Contains(readme, "Go "+m[1]+" or newer") {
		t.Errorf("README.md does not say \"Go %s or newer\" (go.mod's go line)", m[1])
	}
}
