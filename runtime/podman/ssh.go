package podman

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	osuser "os/user"
	"path/filepath"
	"sync"
	"time"

	"github.com/blang/semver/v4"
	"github.com/containers/podman/v4/pkg/bindings"
	"github.com/containers/podman/v4/version"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host key checking of ssh:// hosts (Host.HostKeyChecking).
const (
	// HostKeyStrict: the host's key must be in the known_hosts file;
	// an unknown or a changed key is refused. The default.
	HostKeyStrict = "strict"
	// HostKeyAcceptNew: trust on first use, like OpenSSH's
	// StrictHostKeyChecking=accept-new: an unknown host's key is added to
	// the known_hosts file; a changed key is refused.
	HostKeyAcceptNew = "accept-new"
	// HostKeyOff: no checking at all. Anyone on the path can pose as the host.
	HostKeyOff = "off"
)

// sshTunnel is one SSH connection to a Podman host; each HTTP connection
// of the bindings is a direct-streamlocal channel to the remote socket.
// The bindings' own SSH dial is not used: it trusts unknown hosts on first
// use, writing to ~/.ssh/known_hosts of $HOME, and its connection is never
// dialled again once it dies.
type sshTunnel struct {
	client *ssh.Client
	sock   string // the Podman socket on the remote host

	once sync.Once
}

// dial opens a channel to the remote socket. Blocks until the server
// answers or ctx ends.
func (t *sshTunnel) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := t.client.Dial("unix", t.sock)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Close closes the SSH connection. Idempotent.
func (t *sshTunnel) Close() {
	t.once.Do(func() { t.client.Close() })
}

// dialSSH opens an SSH connection to the host of u as h says (identity,
// known_hosts, host key checking). Blocks for the TCP dial and the
// handshake, bounded by ctx.
func dialSSH(ctx context.Context, h Host, u *url.URL) (*sshTunnel, error) {
	user := u.User.Username()
	if user == "" {
		cur, err := osuser.Current()
		if err != nil {
			return nil, fmt.Errorf("ssh: no user in uri and the current user is unknown: %w", err)
		}
		user = cur.Username
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	if h.Identity == "" {
		return nil, fmt.Errorf("ssh %s: no identity (SSH private key) configured", addr)
	}
	pem, err := os.ReadFile(h.Identity)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: identity: %w", addr, err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			return nil, fmt.Errorf("ssh %s: identity %s is protected by a passphrase, which the hooks cannot enter: use a key without one, readable only by the user running slurm-elastic", addr, h.Identity)
		}
		return nil, fmt.Errorf("ssh %s: identity %s: %w", addr, h.Identity, err)
	}
	check, err := hostKeyCallback(h)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: check}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if !stop() || err != nil {
		nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &sshTunnel{client: ssh.NewClient(c, chans, reqs), sock: u.Path}, nil
}

// knownHostsFile returns h's known_hosts file: Host.KnownHosts, or
// ~/.ssh/known_hosts of the user this process runs as (looked up in the
// user database: hooks run without $HOME).
func knownHostsFile(h Host) (string, error) {
	if h.KnownHosts != "" {
		return h.KnownHosts, nil
	}
	cur, err := osuser.Current()
	if err != nil || cur.HomeDir == "" {
		return "", fmt.Errorf("known_hosts: no file configured and no home directory for the current user: %v", err)
	}
	return filepath.Join(cur.HomeDir, ".ssh", "known_hosts"), nil
}

// hostKeyCallback checks the server's host key as h.HostKeyChecking says.
func hostKeyCallback(h Host) (ssh.HostKeyCallback, error) {
	policy := h.HostKeyChecking
	if policy == "" {
		policy = HostKeyStrict
	}
	if policy == HostKeyOff {
		return ssh.InsecureIgnoreHostKey(), nil
	}
	file, err := knownHostsFile(h)
	if err != nil {
		return nil, err
	}
	switch policy {
	case HostKeyStrict:
		known, err := knownhosts.New(file)
		if err != nil {
			return nil, fmt.Errorf("known_hosts %s: %w", file, err)
		}
		return func(name string, remote net.Addr, key ssh.PublicKey) error {
			return explainKeyError(known(name, remote, key), name, file, key)
		}, nil
	case HostKeyAcceptNew:
		return func(name string, remote net.Addr, key ssh.PublicKey) error {
			known, err := knownhosts.New(file)
			if errors.Is(err, os.ErrNotExist) {
				known = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
			} else if err != nil {
				return fmt.Errorf("known_hosts %s: %w", file, err)
			}
			err = known(name, remote, key)
			var ke *knownhosts.KeyError
			if errors.As(err, &ke) && len(ke.Want) == 0 {
				return addKnownHost(file, name, key)
			}
			return explainKeyError(err, name, file, key)
		}, nil
	}
	return nil, fmt.Errorf("host key checking %q: want %s, %s or %s", policy, HostKeyStrict, HostKeyAcceptNew, HostKeyOff)
}

// explainKeyError says what a known_hosts refusal means and what to do.
func explainKeyError(err error, name, file string, key ssh.PublicKey) error {
	var ke *knownhosts.KeyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return fmt.Errorf("host key %s of %s is not in %s: check its fingerprint and add it (ssh-keyscan), or set host_key_checking: %s: %w",
			ssh.FingerprintSHA256(key), name, file, HostKeyAcceptNew, err)
	case errors.As(err, &ke):
		return fmt.Errorf("host key %s of %s does NOT match %s: the host was reinstalled, or someone is in between; refusing to connect: %w",
			ssh.FingerprintSHA256(key), name, file, err)
	}
	return err
}

// addKnownHost appends name's key to file (creating it and its directory).
func addKnownHost(file, name string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	_, err = fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(name)}, key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("known_hosts %s: %w", file, err)
	}
	return nil
}

// viaDialer returns a bindings connection context for the service at u
// whose HTTP client dials with dial, after pinging the service through it.
//
// The bindings have no constructor that takes a dialer: NewConnection
// wants a URI it can dial and ping itself. So a unix socket in a fresh
// private directory answers that one ping, and the connection's client is
// then replaced (bindings.GetClient gives the connection every later call
// uses) by one that dials with dial. Blocks for one ping, bounded by ctx.
func viaDialer(ctx context.Context, u *url.URL, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (context.Context, error) {
	dir, err := os.MkdirTemp("", "slurm-elastic-conn-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "ping.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	minimal := version.APIVersion[version.Libpod][version.MinimalAPI].String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Libpod-API-Version", minimal)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	c, err := bindings.NewConnection(ctx, "unix://"+sock)
	srv.Close()
	if err != nil {
		return nil, err
	}
	conn, err := bindings.GetClient(c)
	if err != nil {
		return nil, err
	}
	conn.URI = u
	conn.Client = &http.Client{Transport: &http.Transport{DialContext: dial, DisableCompression: true}}
	if err := ping(ctx, conn); err != nil {
		closeIdle(c)
		return nil, err
	}
	return c, nil
}

// ping asks the service at conn for its API version, as the bindings'
// own connect does.
func ping(ctx context.Context, conn *bindings.Connection) error {
	r, err := conn.DoRequest(ctx, nil, http.MethodGet, "/_ping", nil, nil)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("ping: status %d", r.StatusCode)
	}
	if v := r.Header.Get("Libpod-API-Version"); v != "" {
		got, err := semver.ParseTolerant(v)
		if err != nil {
			return fmt.Errorf("ping: API version %q: %w", v, err)
		}
		if min := version.APIVersion[version.Libpod][version.MinimalAPI]; got.LT(min) {
			return fmt.Errorf("ping: server API version %s is older than %s", got, min)
		}
	}
	return nil
}
