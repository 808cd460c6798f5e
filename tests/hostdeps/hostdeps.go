// Package hostdeps is the one list of host tools slurm-elastic needs on Debian 12, and the
// check that they are present. The list is debian12.txt beside this file: `make deps`
// installs its packages (mk/deps.mk reads the same file), the harness checks its tools
// before it starts a cluster, and tests/freshroot runs `make deps` in a fresh Debian 12 root
// and checks every tool there, so a package missing from the list cannot hide.
package hostdeps

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// File is the list's path relative to the repository root (what the Makefile reads).
const File = "tests/hostdeps/debian12.txt"

//go:embed debian12.txt
var list string

// Tool is one required host tool.
type Tool struct {
	// Name is a command name looked up in the standard PATH directories, or an absolute
	// path of a file that must exist.
	Name string
	// Package is the Debian 12 package that provides it.
	Package string
	// Line is its line number in File.
	Line int
}

// String is "NAME (Debian package PACKAGE)".
func (t Tool) String() string { return fmt.Sprintf("%s (Debian package %s)", t.Name, t.Package) }

// pathDirs are where a command is looked for under a root other than "/": root's PATH on
// Debian.
var pathDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

var tools, parseErr = Parse(list)

// Parse reads a list in the format of debian12.txt: "TOOL PACKAGE", one a line, "#" starts a
// comment, blank lines are skipped. Errors name the line. Non-blocking, pure.
func Parse(s string) ([]Tool, error) {
	var out []Tool
	seen := map[string]int{}
	for i, line := range strings.Split(s, "\n") {
		n := i + 1
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"TOOL PACKAGE\", got %q", File, n, strings.TrimSpace(line))
		}
		if strings.Contains(f[0], "/") && !filepath.IsAbs(f[0]) {
			return nil, fmt.Errorf("%s:%d: tool %q: a path must be absolute", File, n, f[0])
		}
		if prev, ok := seen[f[0]]; ok {
			return nil, fmt.Errorf("%s:%d: tool %q is already listed on line %d", File, n, f[0], prev)
		}
		seen[f[0]] = n
		out = append(out, Tool{Name: f[0], Package: f[1], Line: n})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no tools listed", File)
	}
	return out, nil
}

// Tools returns the list (a copy). It panics if the embedded file does not parse, which a
// unit test rules out. Non-blocking.
func Tools() []Tool {
	if parseErr != nil {
		panic(parseErr)
	}
	return slices.Clone(tools)
}

// Packages returns the Debian packages of the list, sorted and without duplicates, less
// those in drop. Non-blocking.
func Packages(drop ...string) []string {
	var out []string
	for _, t := range Tools() {
		if !slices.Contains(drop, t.Package) {
			out = append(out, t.Package)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Lookup returns the listed tool with this name. Non-blocking.
func Lookup(name string) (Tool, bool) {
	for _, t := range Tools() {
		if t.Name == name {
			return t, true
		}
	}
	return Tool{}, false
}

// Present reports whether t exists under root. Under "/" a command is looked up in this
// process's PATH (what the tests will run); under any other root, in root's standard PATH
// directories (symbolic links are resolved inside root only as far as they stay relative).
// Blocks on a few stat calls; idempotent.
func (t Tool) Present(root string) bool {
	if filepath.IsAbs(t.Name) {
		return exists(root, t.Name, false)
	}
	if root == "/" {
		_, err := exec.LookPath(t.Name)
		return err == nil
	}
	for _, d := range pathDirs {
		if exists(root, filepath.Join(d, t.Name), true) {
			return true
		}
	}
	return false
}

// exists reports whether name (absolute, as seen inside root) is a regular file under
// root, resolving symbolic links as a chroot would: an absolute target is taken relative
// to root, and ".." never climbs above it.
func exists(root, name string, executable bool) bool {
	rest := strings.Split(strings.Trim(filepath.Clean(name), "/"), "/")
	cur := "/"
	for links := 0; len(rest) > 0; {
		next := filepath.Join(cur, rest[0]) // Join cleans "..", never above "/"
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return false
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur, rest = next, rest[1:]
			if len(rest) == 0 {
				return fi.Mode().IsRegular() && (!executable || fi.Mode()&0o111 != 0)
			}
			continue
		}
		if links++; links > 40 {
			return false
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return false
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(strings.Trim(filepath.Clean(target), "/"), "/"), rest[1:]...)
	}
	return false
}

// Missing returns the listed tools that are not present under root ("/" for this host), in
// list order. Blocks on stat calls; idempotent.
func Missing(root string) []Tool {
	var out []Tool
	for _, t := range Tools() {
		if !t.Present(root) {
			out = append(out, t)
		}
	}
	return out
}

// Require returns nil when every named tool (each must be in the list) is present under
// root, else one error naming each missing tool, its package and the fix. With no names it
// checks the whole list. Blocks on stat calls; idempotent.
func Require(root string, names ...string) error {
	var missing []Tool
	if len(names) == 0 {
		missing = Missing(root)
	}
	for _, n := range names {
		t, ok := Lookup(n)
		if !ok {
			return fmt.Errorf("hostdeps: %q is not listed in %s", n, File)
		}
		if !t.Present(root) {
			missing = append(missing, t)
		}
	}
	return MissingError(root, missing)
}

// MissingError is nil for none, else an error that names every missing tool with its
// package and says how to install them.
func MissingError(root string, missing []Tool) error {
	if len(missing) == 0 {
		return nil
	}
	names := make([]string, len(missing))
	var pkgs []string
	for i, t := range missing {
		names[i] = t.String()
		if !slices.Contains(pkgs, t.Package) {
			pkgs = append(pkgs, t.Package)
		}
	}
	where := "this host"
	if root != "/" {
		where = root
	}
	return errors.New("missing on " + where + ": " + strings.Join(names, ", ") +
		"; run `make deps` (it installs the packages of " + File + "), or apt-get install " + strings.Join(pkgs, " "))
}
