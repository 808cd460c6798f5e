package kube

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// Version is the Kubernetes release the harness builds (k8s.io/kubernetes from the Go
// module proxy; its staging modules are v0.<minor>.<patch>).
const Version = "v1.34.4"

// buildRecipe changes when the way the binaries are built changes (cache key).
const buildRecipe = "kube-build-v1"

// Components are the binaries Binaries builds from k8s.io/kubernetes/cmd/<name>.
var Components = []string{"kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubelet"}

// stagingModules are the k8s.io/kubernetes staging repositories: a dependent module must
// replace each with its v0.x tag (k8s.io/kubernetes's own ./staging replaces do not apply).
var stagingModules = []string{"api", "apiextensions-apiserver", "apimachinery", "apiserver",
	"cli-runtime", "client-go", "cloud-provider", "cluster-bootstrap", "code-generator",
	"component-base", "component-helpers", "controller-manager", "cri-api", "cri-client",
	"csi-translation-lib", "dynamic-resource-allocation", "endpointslice", "externaljwt", "kms",
	"kube-aggregator", "kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl",
	"kubelet", "metrics", "mount-utils", "pod-security-admission", "sample-apiserver"}

// PauseImage is the sandbox image every pod's infrastructure container runs: a static
// Go program that waits for a signal, imported from a docker-archive the build writes.
const PauseImage = "localhost/se-kube-pause:1"

// pauseSource is the pause program (PID 1 of each pod sandbox): reaps children, exits
// on SIGINT/SIGTERM.
const pauseSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range c {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
`

// ldflags stamps the version into every component (else they report v0.0.0-master).
func ldflags() string {
	maj, min, _ := strings.Cut(strings.TrimPrefix(Version, "v"), ".")
	min, _, _ = strings.Cut(min, ".")
	b := []string{"-s", "-w"} // stripped: a third smaller, and faster to link
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		b = append(b, "-X", p+".gitVersion="+Version, "-X", p+".gitMajor="+maj, "-X", p+".gitMinor="+min,
			"-X", p+".gitTreeState=clean")
	}
	return strings.Join(b, " ")
}

// goMod is the scratch module's go.mod.
func goMod() string {
	staging := "v0." + strings.SplitN(strings.TrimPrefix(Version, "v"), ".", 2)[1]
	var b strings.Builder
	b.WriteString("module slurm-elastic.test/kubebuild\n\ngo 1.24\n\nrequire k8s.io/kubernetes " + Version + "\n\n")
	for _, m := range stagingModules {
		fmt.Fprintf(&b, "replace k8s.io/%s => k8s.io/%s %s\n", m, m, staging)
	}
	return b.String()
}

// buildKey covers everything that makes the binaries: version, ldflags, go.mod, pause.
func buildKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s\n", buildRecipe, Version, ldflags(), goMod(), pauseSource)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// BinDir returns the directory Binaries fills (whether or not it exists yet).
func BinDir() string { return filepath.Join(cacheRoot, buildKey()) }

// Binaries returns the directory holding kube-apiserver, kube-scheduler,
// kube-controller-manager, kubelet (Version, built from the Go module proxy with
// CGO_ENABLED=0 -trimpath and version ldflags) and pause.tar (PauseImage as a
// docker-archive). It blocks: cold it builds for 7-15 minutes (GOCACHE grows ~3.4 GB);
// cached it returns at once. Concurrent callers, other processes too, serialise on a lock
// file; the result appears by an atomic rename, so a crashed build leaves nothing used.
// Idempotent. Progress goes to logw (nil: discarded).
func Binaries(ctx context.Context, logw io.Writer) (string, error) {
	if logw == nil {
		logw = io.Discard
	}
	dir := BinDir()
	if complete(dir) {
		return dir, nil
	}
	l, err := harness.LockFile(ctx, filepath.Join(cacheRoot, "build.lock"))
	if err != nil {
		return "", fmt.Errorf("build Kubernetes: %w", err)
	}
	defer l.Unlock()
	if complete(dir) { // built by whoever held the lock
		return dir, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build Kubernetes: the go command is not in PATH: %w", err)
	}
	work, err := os.MkdirTemp(cacheRoot, "build-")
	if err != nil {
		return "", fmt.Errorf("build Kubernetes: %w", err)
	}
	defer os.RemoveAll(work)
	src, out := filepath.Join(work, "src"), filepath.Join(work, "out")
	for _, f := range []struct{ path, data string }{
		{filepath.Join(src, "go.mod"), goMod()},
		{filepath.Join(src, "pause", "main.go"), pauseSource},
	} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return "", fmt.Errorf("build Kubernetes: %w", err)
		}
		if err := os.WriteFile(f.path, []byte(f.data), 0o644); err != nil {
			return "", fmt.Errorf("build Kubernetes: %w", err)
		}
	}
	args := []string{"build", "-trimpath", "-ldflags", ldflags(), "-o", out + "/"}
	for _, c := range Components {
		args = append(args, "k8s.io/kubernetes/cmd/"+c)
	}
	args = append(args, "./pause")
	t0 := time.Now()
	fmt.Fprintf(logw, "kube: building Kubernetes %s into %s (minutes when cold)\n", Version, dir)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOWORK=off", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build Kubernetes %s: go %s (in %s): %w: %s", Version, strings.Join(args, " "), src, err, tail(b, 3000))
	}
	fmt.Fprintf(logw, "kube: built in %s\n", time.Since(t0).Round(time.Second))
	if err := writePauseArchive(filepath.Join(out, "pause"), filepath.Join(out, "pause.tar")); err != nil {
		return "", fmt.Errorf("build Kubernetes: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "complete"), []byte(Version+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("build Kubernetes: %w", err)
	}
	os.RemoveAll(dir) // an incomplete leftover (no "complete" file)
	if err := os.Rename(out, dir); err != nil {
		return "", fmt.Errorf("build Kubernetes: %w", err)
	}
	pruneBinaries(logw, dir)
	return dir, nil
}

var keyRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// pruneBinaries removes the binaries of other keys (older versions or recipes, ~400 MB
// each) and build directories a killed build left. It runs under the build lock. Best effort.
func pruneBinaries(logw io.Writer, keep string) {
	ents, _ := os.ReadDir(cacheRoot)
	for _, e := range ents {
		p := filepath.Join(cacheRoot, e.Name())
		if !e.IsDir() || p == keep || !(keyRE.MatchString(e.Name()) || strings.HasPrefix(e.Name(), "build-")) {
			continue
		}
		if os.RemoveAll(p) == nil {
			fmt.Fprintf(logw, "kube: removed old %s\n", p)
		}
	}
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "complete"))
	return err == nil
}

// writePauseArchive writes a docker-archive (manifest.json, config, one layer) holding
// the pause binary as /pause, tagged PauseImage.
func writePauseArchive(bin, dst string) error {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	mtime := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := lw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(exe)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	lw.Write(exe)
	if err := lw.Close(); err != nil {
		return err
	}
	diff := sha256.Sum256(layer.Bytes())
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/pause"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diff[:])}},
	})
	cfgSum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{PauseImage}, "Layers": []string{"layer.tar"}}})
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		data []byte
	}{{cfgName, cfg}, {"layer.tar", layer.Bytes()}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			f.Close()
			return fmt.Errorf("pause image: %w", err)
		}
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("pause image: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	return os.Rename(tmp, dst)
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
