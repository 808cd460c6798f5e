package harness

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/hostdeps"
	"github.com/slurm-elastic/slurm-elastic/tests/image"
)

// ImageRepo is the repository of the test image in the harness's image store.
const ImageRepo = "localhost/slurm-elastic-slurm"

// recipeVersion changes when the way the root file system is made changes; importVersion
// when the way it becomes an image (addScripts, import changes) changes.
const (
	recipeVersion = "rootfs-v1"
	importVersion = "import-v2"
)

// Labels put on the image: the numeric ids of the daemon users inside it.
const (
	labelSlurmUID = "slurm-elastic.uid.slurm"
	labelSlurmGID = "slurm-elastic.gid.slurm"
)

// imageInfo is what Start needs to know about the image.
type imageInfo struct {
	Ref      string
	SlurmUID int
	SlurmGID int
}

// rootfsIDs are the ids read from the root file system, kept next to the cached tarball,
// and the Slurm release it carries ("" in files written before there were several: 24.11).
type rootfsIDs struct {
	Users  map[string]int `json:"users"`
	Groups map[string]int `json:"groups"`
	Slurm  string         `json:"slurm,omitempty"`
}

// EnvSlurm names the environment variable that picks the Slurm release of a cluster whose
// Options.Slurm is empty: 22.05, 24.11 or 26.05 (unset: image.DefaultSlurm).
const EnvSlurm = "SE_SLURM"

// SlurmRecipe returns the image recipe of the Slurm release v, or, when v is "", of the
// release in $SE_SLURM, or image.DefaultSlurm. The error names the valid releases. It does
// not block.
func SlurmRecipe(v string) (image.Recipe, error) {
	if v == "" {
		v = os.Getenv(EnvSlurm)
	}
	r, err := image.For(v)
	if err != nil && os.Getenv(EnvSlurm) == v {
		return r, fmt.Errorf("%s: %w", EnvSlurm, err)
	}
	return r, err
}

// BuildImage builds the test image of the Slurm release slurm ("" = $SE_SLURM or 24.11;
// Debian suite and packages from package tests/image) into the harness's image store and
// returns its reference localhost/slurm-elastic-slurm:<release>-<hash>, where hash covers
// the package list, the setup steps and the scripts. It blocks: cold (debootstrap,
// download) it takes minutes; when the tag exists it returns in about a second. The
// debootstrap result is cached as a tarball under /var/cache/slurm-elastic-test, so a
// script change only re-imports. Concurrent callers (other processes too) serialise on a
// lock file. Idempotent. Progress goes to logw (nil: discarded).
func BuildImage(ctx context.Context, slurm string, logw io.Writer) (string, error) {
	r, err := SlurmRecipe(slurm)
	if err != nil {
		return "", fmt.Errorf("build image: %w", err)
	}
	info, err := buildImage(ctx, r, logw)
	if err != nil {
		return "", err
	}
	return info.Ref, nil
}

func buildStore() (*store, error) {
	b := filepath.Join(libDir, "build")
	return openStore(filepath.Join(b, "containers.conf"), filepath.Join(b, "libpod"),
		filepath.Join(runDir, "build", "libpod"), filepath.Join(b, "networks"), filepath.Join(b, "volumes"))
}

// rootfsKey covers what makes r's root file system (for 24.11 the same key as before
// there were several releases, so its cached tarball stays valid).
func rootfsKey(r image.Recipe) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%q\n%q\n", recipeVersion, r.Suite, r.Packages, r.Setup)
	return hex.EncodeToString(h.Sum(nil))
}

// imageTag is ImageRepo:<release>-<hash of the root file system key and the scripts>.
func imageTag(r image.Recipe, rootfs string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", rootfs, importVersion)
	for _, b := range [][]byte{image.NodeEntrypoint, image.HeadEntrypoint, image.NodeReboot, image.NodeImageHelper} {
		fmt.Fprintf(h, "%d\n", len(b))
		h.Write(b)
	}
	for _, name := range slices.Sorted(maps.Keys(replaced)) {
		fmt.Fprintf(h, "%s %d\n", name, len(replaced[name]))
		h.Write(replaced[name])
	}
	return ImageRepo + ":" + r.Slurm + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

func buildImage(ctx context.Context, r image.Recipe, logw io.Writer) (imageInfo, error) {
	logw = orDiscard(logw)
	st, err := buildStore()
	if err != nil {
		return imageInfo{}, fmt.Errorf("build image: %w", err)
	}
	key := rootfsKey(r)
	ref := imageTag(r, key)
	if info, ok := inspectImage(ctx, st, ref); ok {
		return info, nil
	}
	l, err := LockFile(ctx, filepath.Join(libDir, "build.lock"))
	if err != nil {
		return imageInfo{}, fmt.Errorf("build image: %w", err)
	}
	defer l.Unlock()
	if info, ok := inspectImage(ctx, st, ref); ok { // built by whoever held the lock
		return info, nil
	}
	t0 := time.Now()
	tarball := filepath.Join(cacheDir, "rootfs-"+key[:16]+".tar")
	idsPath := tarball + ".ids.json"
	ids, err := readIDs(idsPath)
	if _, serr := os.Stat(tarball); serr != nil || err != nil {
		if ids, err = debootstrap(ctx, logw, r, tarball, idsPath); err != nil {
			return imageInfo{}, fmt.Errorf("build image: %w", err)
		}
	} else {
		fmt.Fprintf(logw, "harness: using cached root file system %s\n", tarball)
	}
	if err := importImage(ctx, logw, st, tarball, ids, ref); err != nil {
		return imageInfo{}, fmt.Errorf("build image: %w", err)
	}
	info, ok := inspectImage(ctx, st, ref)
	if !ok {
		return imageInfo{}, fmt.Errorf("build image: %s missing after import", ref)
	}
	fmt.Fprintf(logw, "harness: image %s ready in %s\n", ref, time.Since(t0).Round(time.Millisecond))
	pruneImages(ctx, logw, st, r.Slurm, ref)
	return info, nil
}

// pruneImages removes the other tags of ImageRepo of the same Slurm release (older
// recipes, ~300 MB each): other releases' images are never touched, since other test runs
// use them at the same time. An image that a container still uses (any cluster: they
// share the storage) is kept. Best effort.
func pruneImages(ctx context.Context, logw io.Writer, st *store, slurm, keep string) {
	out, err := st.run(ctx, nil, "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference="+ImageRepo)
	if err != nil {
		return
	}
	for _, ref := range strings.Fields(out) {
		if ref == keep || !strings.HasPrefix(ref, ImageRepo+":"+slurm+"-") {
			continue
		}
		if _, err := st.run(ctx, nil, "rmi", ref); err == nil {
			fmt.Fprintf(logw, "harness: removed old image %s\n", ref)
		}
	}
}

// inspectImage reports the image's ids when ref exists in the store.
func inspectImage(ctx context.Context, st *store, ref string) (imageInfo, bool) {
	out, err := st.run(ctx, nil, "image", "inspect", "--format", "{{json .Labels}}", ref)
	if err != nil {
		return imageInfo{}, false
	}
	var labels map[string]string
	if json.Unmarshal([]byte(strings.TrimSpace(out)), &labels) != nil {
		return imageInfo{}, false
	}
	uid, err1 := strconv.Atoi(labels[labelSlurmUID])
	gid, err2 := strconv.Atoi(labels[labelSlurmGID])
	if err1 != nil || err2 != nil {
		return imageInfo{}, false
	}
	return imageInfo{Ref: ref, SlurmUID: uid, SlurmGID: gid}, true
}

func readIDs(path string) (rootfsIDs, error) {
	var ids rootfsIDs
	b, err := os.ReadFile(path)
	if err != nil {
		return ids, err
	}
	if err := json.Unmarshal(b, &ids); err != nil {
		return ids, fmt.Errorf("%s: %w", path, err)
	}
	if _, ok := ids.Users["slurm"]; !ok {
		return ids, fmt.Errorf("%s: no slurm user", path)
	}
	return ids, nil
}

// DebianMirror reads the Debian mirror URI configured for apt on this machine
// (the only one it can reach). It reads two files and does not block otherwise.
func DebianMirror() (string, error) {
	const deb822 = "/etc/apt/sources.list.d/debian.sources"
	if f, err := os.Open(deb822); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "URIs") {
				continue
			}
			for _, u := range strings.Fields(v) {
				if strings.HasSuffix(strings.TrimRight(u, "/"), "/debian") {
					return u, nil
				}
			}
		}
	}
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "deb" && strings.HasSuffix(strings.TrimRight(f[1], "/"), "/debian") {
				return f[1], nil
			}
		}
	}
	return "", fmt.Errorf("no Debian mirror in %s or /etc/apt/sources.list", deb822)
}

// debootstrap makes the root file system and archives it to tarball (atomically), with
// the daemon users' ids in idsPath.
func debootstrap(ctx context.Context, logw io.Writer, r image.Recipe, tarball, idsPath string) (rootfsIDs, error) {
	ids := rootfsIDs{Slurm: r.Slurm}
	if err := hostdeps.Require("/", "debootstrap", "chroot", "tar"); err != nil {
		return ids, fmt.Errorf("build the image: %w", err)
	}
	mirror, err := DebianMirror()
	if err != nil {
		return ids, err
	}
	debs := filepath.Join(cacheDir, "debs") // shared by the suites: .deb file names carry the version
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return ids, fmt.Errorf("create %s: %w", debs, err)
	}
	work, err := os.MkdirTemp(cacheDir, "build-")
	if err != nil {
		return ids, fmt.Errorf("debootstrap: %w", err)
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	t0 := time.Now()
	fmt.Fprintf(logw, "harness: debootstrap %s for Slurm %s from %s (minutes when cold)\n", r.Suite, r.Slurm, mirror)
	args := []string{"--variant=minbase", "--cache-dir=" + debs,
		"--include=" + strings.Join(r.Packages, ","), r.Suite, root, mirror}
	if out, err := exec.CommandContext(ctx, "debootstrap", args...).CombinedOutput(); err != nil {
		return ids, fmt.Errorf("debootstrap %s: %w: %s", strings.Join(args, " "), err, tail(out, 3000))
	}
	fmt.Fprintf(logw, "harness: debootstrap done in %s\n", time.Since(t0).Round(time.Second))
	for _, argv := range r.Setup {
		c := exec.CommandContext(ctx, "chroot", append([]string{root}, argv...)...)
		c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
		if out, err := c.CombinedOutput(); err != nil {
			return ids, fmt.Errorf("chroot %s: %w: %s", strings.Join(argv, " "), err, tail(out, 2000))
		}
	}
	if ids.Users, err = readIDFile(filepath.Join(root, "etc/passwd")); err != nil {
		return ids, err
	}
	if ids.Groups, err = readIDFile(filepath.Join(root, "etc/group")); err != nil {
		return ids, err
	}
	for _, u := range []string{"slurm", "munge", "slurmrestd"} {
		if _, ok := ids.Users[u]; !ok {
			return ids, fmt.Errorf("root file system has no user %s", u)
		}
	}
	tmp := tarball + ".tmp"
	targs := []string{"-C", root, "--numeric-owner", "-cf", tmp,
		"--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
		"--exclude=./var/cache/apt/archives/*.deb", "--exclude=./var/lib/apt/lists/*", "."}
	if out, err := exec.CommandContext(ctx, "tar", targs...).CombinedOutput(); err != nil {
		os.Remove(tmp)
		return ids, fmt.Errorf("tar %s: %w: %s", root, err, tail(out, 2000))
	}
	b, _ := json.Marshal(ids)
	if err := os.WriteFile(idsPath, b, 0o644); err != nil {
		return ids, fmt.Errorf("write %s: %w", idsPath, err)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		return ids, fmt.Errorf("cache %s: %w", tarball, err)
	}
	pruneRootfs(r.Slurm, tarball)
	return ids, nil
}

// pruneRootfs removes the cached root file systems of older recipes of the same Slurm
// release (another package list); other releases' tarballs stay. Best effort.
func pruneRootfs(slurm, keep string) {
	old, _ := filepath.Glob(filepath.Join(cacheDir, "rootfs-*.tar"))
	for _, p := range old {
		if p == keep {
			continue
		}
		var ids rootfsIDs
		if b, err := os.ReadFile(p + ".ids.json"); err == nil && json.Unmarshal(b, &ids) == nil {
			if ids.Slurm == "" {
				ids.Slurm = "24.11" // written before there were several releases
			}
			if ids.Slurm != slurm {
				continue
			}
		}
		os.Remove(p)
		os.Remove(p + ".ids.json")
	}
}

// readIDFile maps names to the third field of a passwd or group file.
func readIDFile(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if id, err := strconv.Atoi(f[2]); err == nil {
			m[f[0]] = id
		}
	}
	return m, nil
}

// importImage streams the cached root file system plus the scripts into podman import.
func importImage(ctx context.Context, logw io.Writer, st *store, tarball string, ids rootfsIDs, ref string) error {
	t0 := time.Now()
	in, err := os.Open(tarball)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer in.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(addScripts(in, pw)) }()
	changes := []string{
		"--change", fmt.Sprintf(`CMD ["%s"]`, image.NodeEntrypointPath),
		"--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--change", "STOPSIGNAL SIGTERM",
		"--change", fmt.Sprintf("LABEL %s=%d", labelSlurmUID, ids.Users["slurm"]),
		"--change", fmt.Sprintf("LABEL %s=%d", labelSlurmGID, ids.Groups["slurm"]),
	}
	args := append([]string{"import", "--quiet"}, changes...)
	args = append(args, "-", ref)
	_, err = st.run(ctx, pr, args...)
	pr.CloseWithError(errors.New("import ended"))
	if err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	fmt.Fprintf(logw, "harness: imported %s in %s\n", ref, time.Since(t0).Round(time.Millisecond))
	return nil
}

// replaced are files of the root file system that the image gets with other content:
// debootstrap copies the build host's resolv.conf and hosts. An empty resolv.conf makes
// name lookups that /etc/hosts cannot answer go to 127.0.0.1 inside the container (where
// nothing answers) instead of to the host's name server (network-safety rule) when a
// container runs with --dns none (specgen: UseImageResolvConf).
var replaced = map[string][]byte{
	"./etc/resolv.conf": {},
	"./etc/hosts":       []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
}

// addScripts copies the tar stream r to w, with the files in replaced swapped, and
// appends the image's scripts.
func addScripts(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read root file system: %w", err)
		}
		if _, ok := replaced[h.Name]; ok {
			continue
		}
		h.Format = tar.FormatPAX
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("write %s: %w", h.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("write %s: %w", h.Name, err)
		}
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) // fixed: the same recipe gives the same layer
	files := []struct {
		path string
		data []byte
		mode int64
	}{{image.NodeEntrypointPath, image.NodeEntrypoint, 0o755}, {image.HeadEntrypointPath, image.HeadEntrypoint, 0o755},
		{image.NodeRebootPath, image.NodeReboot, 0o755},
		{image.NodeImageHelperPath, image.NodeImageHelper, 0o755}}
	for _, name := range slices.Sorted(maps.Keys(replaced)) {
		files = append(files, struct {
			path string
			data []byte
			mode int64
		}{name[1:], replaced[name], 0o644})
	}
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: "." + f.path, Mode: f.mode, Size: int64(len(f.data)),
			ModTime: now, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return tw.Close()
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
