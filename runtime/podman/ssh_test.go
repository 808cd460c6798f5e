package podman

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containers/podman/v4/pkg/bindings"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// sshServer is an SSH server on 127.0.0.1 for tests: public-key auth for
// one client key, and direct-streamlocal channels (what the runtime opens
// to the remote Podman socket) forwarded to the unix socket sock.
type sshServer struct {
	t       testing.TB
	l       net.Listener
	addr    string // 127.0.0.1:port
	hostKey ssh.Signer
	sock    string

	mu    sync.Mutex
	conns []net.Conn
}

// newSSHServer starts a server forwarding to sock and returns it with the
// client's identity file (written to a test directory).
func newSSHServer(t testing.TB, sock string) (*sshServer, string) {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	identity := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(identity, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	allowed, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshServer{t: t, l: l, addr: l.Addr().String(), hostKey: hostKey, sock: sock}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(allowed.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	cfg.AddHostKey(hostKey)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go s.serve(c, cfg)
		}
	}()
	t.Cleanup(func() { l.Close(); s.dropAll() })
	return s, identity
}

func (s *sshServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "direct-streamlocal@openssh.com" {
			nc.Reject(ssh.UnknownChannelType, "only direct-streamlocal")
			continue
		}
		local, err := net.Dial("unix", s.sock)
		if err != nil {
			nc.Reject(ssh.ConnectionFailed, err.Error())
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			local.Close()
			continue
		}
		go ssh.DiscardRequests(creqs)
		go func() {
			defer ch.Close()
			defer local.Close()
			go func() { _, _ = io.Copy(local, ch); local.(*net.UnixConn).CloseWrite() }()
			_, _ = io.Copy(ch, local)
		}()
	}
}

// dropAll closes every client connection, as a host reboot does.
func (s *sshServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// knownHosts writes a known_hosts file with the server's key (or, with
// other, another key for its address) and returns its path.
func (s *sshServer) knownHosts(t testing.TB, other bool) string {
	t.Helper()
	key := s.hostKey.PublicKey()
	if other {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		key, _ = ssh.NewPublicKey(pub)
	}
	f := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f, []byte(knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// uri is the ssh:// URI of the remote socket path through s.
func (s *sshServer) uri(path string) string { return "ssh://root@" + s.addr + path }

// pingServer answers the Podman API's ping on a unix socket: the one call
// a connect makes (a stand-in for the service in unit tests).
func pingServer(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "se-ping-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "podman.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Libpod-API-Version", "4.3.1")
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); os.RemoveAll(dir) })
	return sock
}

func sshRuntime(t testing.TB, h Host) *Podman {
	t.Helper()
	p, err := New(context.Background(), Options{Cluster: "c", ConfServer: "head", MungeKey: "/etc/munge/munge.key", Hosts: []Host{h}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pingVia runs one API call (a ping) on p's only host.
func pingVia(p *Podman) error {
	return p.do(context.Background(), p.hosts[0], p.timeout, func(c context.Context) error {
		conn, err := bindings.GetClient(c)
		if err != nil {
			return err
		}
		return ping(c, conn)
	})
}

// TestSSHHostKey: an ssh:// host's key is checked against the configured
// known_hosts file: an unknown key is refused and not written anywhere
// unless host_key_checking is accept-new; a changed key is always refused.
func TestSSHHostKey(t *testing.T) {
	srv, identity := newSSHServer(t, pingServer(t))
	empty := func() string {
		f := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name   string
		known  string
		policy string
		want   string // in the error; "" = connects
		added  bool   // the key is in the file afterwards
	}{
		{"strict, known", srv.knownHosts(t, false), "", "", true},
		{"strict, unknown", empty(), HostKeyStrict, "is not in", false},
		{"strict, changed", srv.knownHosts(t, true), "", "does NOT match", false},
		{"accept-new, unknown", empty(), HostKeyAcceptNew, "", true},
		{"accept-new, changed", srv.knownHosts(t, true), HostKeyAcceptNew, "does NOT match", false},
		{"off", empty(), HostKeyOff, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir()) // nothing may be written to a home directory
			p := sshRuntime(t, Host{Name: "h", URI: srv.uri("/run/podman/podman.sock"), Identity: identity, KnownHosts: tt.known, HostKeyChecking: tt.policy})
			err := pingVia(p)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if tt.want != "" && !hostScoped(err) {
				t.Errorf("a refused host key is not host-scoped: %v", err)
			}
			data, _ := os.ReadFile(tt.known)
			line := knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, srv.hostKey.PublicKey())
			if got := strings.Contains(string(data), line); got != tt.added {
				t.Fatalf("key in known_hosts: %v, want %v:\n%s", got, tt.added, data)
			}
			if ents, _ := os.ReadDir(os.Getenv("HOME")); len(ents) != 0 {
				t.Fatalf("wrote into $HOME: %v", ents)
			}
		})
	}
}

// TestSSHRedial: after the SSH connection dies (the host rebooted), the
// next call dials again instead of failing forever on the dead connection.
func TestSSHRedial(t *testing.T) {
	srv, identity := newSSHServer(t, pingServer(t))
	p := sshRuntime(t, Host{Name: "h", URI: srv.uri("/run/podman/podman.sock"), Identity: identity, KnownHosts: srv.knownHosts(t, false)})
	if err := pingVia(p); err != nil {
		t.Fatalf("first call: %v", err)
	}
	srv.dropAll()
	// The call that meets the dead connection may fail (Transient, the
	// host's); the one after it must work.
	if err := pingVia(p); err != nil && (runtime.ClassOf(err) != runtime.ClassTransient || !hostScoped(err)) {
		t.Fatalf("call on the dead connection: %v (class %q), want a Transient host-scoped error", err, runtime.ClassOf(err))
	}
	if err := pingVia(p); err != nil {
		t.Fatalf("call after the SSH connection was dropped: %v", err)
	}
}
