package elastic

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// BuildPackage builds the .deb of pkg (slurm-elastic or slurm-elastic-health)
// into dist with packaging/build-pkg.sh, as `make deb` does, from the
// binaries in binDir, and returns its path. root is the repository root. It
// blocks (seconds) and is idempotent (a rebuild of the same inputs is
// byte-identical).
func BuildPackage(ctx context.Context, root, binDir, dist, pkg string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "packaging/build-pkg.sh"), "deb", dist, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SE_BIN_DIR="+binDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("packaging/build-pkg.sh deb %s %s: %w\n%s", dist, pkg, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	path := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasSuffix(path, ".deb") {
		return "", fmt.Errorf("packaging/build-pkg.sh deb %s %s: printed %q, not a .deb path", dist, pkg, out)
	}
	return path, nil
}

// HealthBinDir returns a directory holding slurm-elastic-health for the
// health package: binDir when it has one (`make build-health`), else dir,
// where a static build (CGO_ENABLED=0: no NVML) is put. root is the
// repository root. It blocks for a `go build` when it builds.
func HealthBinDir(ctx context.Context, root, binDir, dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(binDir, "slurm-elastic-health")); err == nil {
		return binDir, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no slurm-elastic-health in %s (make build-health) and no go tool to build one: %w", binDir, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", filepath.Join(dir, "slurm-elastic-health"), "./cmd/slurm-elastic-health")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build slurm-elastic-health: %w\n%s", err, out)
	}
	return dir, nil
}

// BuildNodeImage builds the shipped node image recipe (packaging/node,
// through packaging/node/build.sh as `make node-image` does) from the
// cluster's Slurm image and the slurm-elastic-health package in dist, tagged
// tag, with no network and no registry. root is the repository root. It
// blocks (tens of seconds); the caller removes the image (c.Podman rmi).
func BuildNodeImage(ctx context.Context, c *harness.Cluster, root, tag, dist string) error {
	build := exec.CommandContext(ctx, filepath.Join(root, "packaging/node/build.sh"), c.Image, tag, dist)
	build.Dir = root
	build.Env = append(os.Environ(), c.Env...)
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("packaging/node/build.sh %s %s: %w\n%s", c.Image, tag, err, b)
	}
	return nil
}

// VerifyPackage checks that head runs slurm-elastic as the package deb installed it:
// dpkg knows the package, its files are unchanged (dpkg --verify), and the hooks the
// tests run are the package's files, not a mount. It returns the package and its
// version as dpkg has them, and blocks for a few execs in head.
func (c *Cluster) VerifyPackage(ctx context.Context, deb string) (string, error) {
	out, err := c.Exec(ctx, "dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Status}", "slurm-elastic")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), " installed") {
		return "", fmt.Errorf("SE_E2E_DEB=%s: slurm-elastic is not installed in head: %q %v", deb, out, err)
	}
	// Only the config (a conffile, which the cluster's own replaces) may differ.
	v, _ := c.Exec(ctx, "dpkg", "--verify", "slurm-elastic")
	for _, l := range strings.Split(strings.TrimSpace(v), "\n") {
		if l != "" && !strings.HasSuffix(l, " c "+harness.ConfigInHead) {
			return "", fmt.Errorf("SE_E2E_DEB=%s: dpkg --verify slurm-elastic in head: %q", deb, v)
		}
	}
	owner, err := c.Exec(ctx, "dpkg", "-S", "/usr/libexec/slurm-elastic/slurm-elastic-resume")
	if err != nil || !strings.HasPrefix(owner, "slurm-elastic:") {
		return "", fmt.Errorf("SE_E2E_DEB=%s: the resume hook in head is not the package's: %q %v", deb, owner, err)
	}
	mounts, err := c.Exec(ctx, "cat", "/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("SE_E2E_DEB=%s: mounts of head: %w", deb, err)
	}
	for _, l := range strings.Split(mounts, "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == "/usr/libexec/slurm-elastic" {
			return "", fmt.Errorf("SE_E2E_DEB=%s: /usr/libexec/slurm-elastic is a mount in head: %s", deb, l)
		}
	}
	return strings.TrimSpace(out), nil
}
