package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Where the harness keeps its things on the host. Everything of one cluster lives under
// <libDir>/clusters/<Name> and <runDir>/<Name>; the image store is shared by all clusters.
const (
	libDir   = "/var/lib/slurm-elastic-test"
	runDir   = "/run/slurm-elastic-test"
	cacheDir = "/var/cache/slurm-elastic-test"

	// graphRoot and runRoot are the containers/storage of every harness store (the build
	// store and each cluster's store). They share both: containers/storage is made for
	// several processes on one graphroot+runroot (that is how buildah and podman share it),
	// while one graphroot with several runroots is not a supported layout (mount counts
	// live in the runroot). What is per cluster is libpod's own state: static_dir (its
	// database), tmp_dir (locks, exits, events) and the network config dir.
	graphRoot = libDir + "/storage"
	runRoot   = runDir + "/storage"
)

var storageConfPath = filepath.Join(libDir, "storage.conf")

const storageConf = `# Written by the slurm-elastic test harness (tests/harness); rewritten when it differs.
[storage]
driver = "overlay"
graphroot = "` + graphRoot + `"
runroot = "` + runRoot + `"
`

// store is one private libpod state on the shared containers/storage.
type store struct {
	confPath string   // CONTAINERS_CONF
	env      []string // CONTAINERS_CONF and CONTAINERS_STORAGE_CONF
	podman   string   // absolute path of the podman binary
}

// containersConf renders a private containers.conf. runc, not crun (crun fails on this
// hybrid cgroup host); ulimits that need no raise; file locks and events kept in tmpDir so
// that this store shares nothing with the host's default podman or other clusters.
func containersConf(staticDir, tmpDir, netDir, volDir string) string {
	return `# Written by the slurm-elastic test harness (tests/harness).
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
init_path = "` + initPath() + `"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
static_dir = "` + staticDir + `"
tmp_dir = "` + tmpDir + `"
volume_path = "` + volDir + `"

[network]
network_backend = "netavark"
network_config_dir = "` + netDir + `"
`
}

// initPath is catatonit, used for the head container's --init.
func initPath() string {
	for _, p := range []string{"/usr/libexec/podman/catatonit", "/usr/bin/catatonit"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "/usr/libexec/podman/catatonit"
}

// openStore writes (when they differ) the shared storage.conf and a containers.conf at
// confPath for the given libpod directories, and returns the store. Idempotent.
func openStore(confPath, staticDir, tmpDir, netDir, volDir string) (*store, error) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		return nil, fmt.Errorf("podman not found (install the Debian package podman): %w", err)
	}
	for _, d := range []string{filepath.Dir(confPath), staticDir, tmpDir, netDir, volDir, graphRoot, runRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := writeIfChanged(storageConfPath, []byte(storageConf), 0o644); err != nil {
		return nil, err
	}
	if err := writeIfChanged(confPath, []byte(containersConf(staticDir, tmpDir, netDir, volDir)), 0o644); err != nil {
		return nil, err
	}
	return &store{
		confPath: confPath,
		env:      []string{"CONTAINERS_CONF=" + confPath, "CONTAINERS_STORAGE_CONF=" + storageConfPath},
		podman:   podman,
	}, nil
}

// writeIfChanged writes data to path atomically unless the file already holds exactly it.
func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// cmd returns a podman command on this store.
func (s *store) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, s.podman, args...)
	c.Env = append(os.Environ(), s.env...)
	c.WaitDelay = 5 * time.Second
	return c
}

// run runs podman with args on this store and returns its stdout. The error names the
// command and carries stderr and stdout.
func (s *store) run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	c := s.cmd(ctx, args...)
	var stdout, stderr bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &stdout, &stderr
	if err := c.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "),
			err, strings.TrimSpace(stderr.String()+"\n"+stdout.String()))
	}
	return stdout.String(), nil
}

// FileLock is an exclusive flock on a file, taken while ctx allows.
type FileLock struct{ f *os.File }

// LockFile takes an exclusive flock on path (created if missing), waiting while ctx
// allows; Unlock releases it. Other processes serialise on the same path. It blocks.
func LockFile(ctx context.Context, path string) (*FileLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &FileLock{f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Unlock releases the lock. Idempotent enough: a second call only fails to close.
func (l *FileLock) Unlock() { l.f.Close() }
