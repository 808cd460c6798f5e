package podman

// A minimal image registry on loopback for the pull tests: it serves one
// image (the busybox root filesystem of env_test.go as one uncompressed
// layer, OCI manifest) under any repository name and tag "1", over plain
// HTTP on 127.0.0.1. The test hosts' registries.conf marks it insecure
// (HTTP) and sets no search registries, so nothing but loopback is asked.
// A second listener accepts connections and never answers: a registry
// that hangs (the pull timeout case).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

type testRegistry struct {
	srv   *http.Server
	addr  string // 127.0.0.1:PORT of the registry
	hang  net.Listener
	blobs map[string][]byte // digest -> content
	man   []byte
	manD  string

	mu    sync.Mutex
	pulls map[string]int // repository -> manifest GETs
}

// registriesConf is the test hosts' registries.conf (CONTAINERS_REGISTRIES_CONF).
func registriesConf() string { return filepath.Join(baseDir, "registries.conf") }

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// startRegistry serves the test image and writes registries.conf for it;
// call before the Podman services start (they read it at each pull, but
// the file must exist).
func startRegistry() (*testRegistry, error) {
	layer, err := busyboxRootfs()
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": idleCmd},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digestOf(layer)}},
	})
	if err != nil {
		return nil, err
	}
	man, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(cfg), "size": len(cfg)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digestOf(layer), "size": len(layer)}},
	})
	if err != nil {
		return nil, err
	}
	r := &testRegistry{
		blobs: map[string][]byte{digestOf(layer): layer, digestOf(cfg): cfg},
		man:   man, manD: digestOf(man), pulls: map[string]int{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.addr = ln.Addr().String()
	r.hang, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		for {
			c, err := r.hang.Accept()
			if err != nil {
				return
			}
			_ = c // held open, never answered; closed with the process
		}
	}()
	r.srv = &http.Server{Handler: r}
	go func() { _ = r.srv.Serve(ln) }()
	conf := fmt.Sprintf("unqualified-search-registries = []\n\n[[registry]]\nlocation = %q\ninsecure = true\n\n[[registry]]\nlocation = %q\ninsecure = true\n",
		r.addr, r.hang.Addr().String())
	if err := os.WriteFile(registriesConf(), []byte(conf), 0o644); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *testRegistry) close() {
	r.srv.Close()
	r.hang.Close()
}

// ref returns the image reference of repo on the registry.
func (r *testRegistry) ref(repo string) string { return r.addr + "/" + repo + ":1" }

// hangRef returns a reference on the registry that never answers.
func (r *testRegistry) hangRef(repo string) string { return r.hang.Addr().String() + "/" + repo + ":1" }

// manifestGets returns how many times repo's manifest was fetched.
func (r *testRegistry) manifestGets(repo string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pulls[repo]
}

// ServeHTTP answers /v2/, /v2/REPO/manifests/1 and /v2/REPO/blobs/DIGEST;
// a repository named "denied/..." is refused (401), as a registry does
// without credentials.
func (r *testRegistry) ServeHTTP(w http.ResponseWriter, q *http.Request) {
	p := q.URL.Path
	switch {
	case p == "/v2/" || p == "/v2":
		w.WriteHeader(http.StatusOK)
		return
	case !strings.HasPrefix(p, "/v2/"):
		http.NotFound(w, q)
		return
	}
	rest := strings.TrimPrefix(p, "/v2/")
	if strings.HasPrefix(rest, "denied/") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return
	}
	if i := strings.LastIndex(rest, "/manifests/"); i > 0 {
		repo, tag := rest[:i], rest[i+len("/manifests/"):]
		if tag != "1" && tag != r.manD {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
			return
		}
		if q.Method == http.MethodGet {
			r.mu.Lock()
			r.pulls[repo]++
			r.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", r.manD)
		w.Header().Set("Content-Length", fmt.Sprint(len(r.man)))
		if q.Method != http.MethodHead {
			_, _ = w.Write(r.man)
		}
		return
	}
	if i := strings.LastIndex(rest, "/blobs/"); i > 0 {
		b, ok := r.blobs[rest[i+len("/blobs/"):]]
		if !ok {
			http.NotFound(w, q)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		if q.Method != http.MethodHead {
			_, _ = w.Write(b)
		}
		return
	}
	http.NotFound(w, q)
}
