package podman

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/containers/podman/v4/pkg/bindings"
)

// host is one Podman API service and its lazily opened connection.
type host struct {
	Host
	idx int

	mu   sync.Mutex
	conn context.Context // bindings connection values; nil until the first successful ping
	// tunnel is the SSH connection conn's client dials through (ssh://
	// hosts); closed when conn is dropped.
	tunnel *sshTunnel
	// images: what this process knows of each image on this host (see
	// imageState). networks seen present (positive cache only: a later
	// removal surfaces as a create error, classified the same).
	images   map[string]imageState
	networks map[string]bool
	// pulls serialises pulls of one image on this host (lockPull).
	pulls map[string]chan struct{}

	// loadMu serialises inventory loads of this host so that concurrent
	// launches share one list call.
	loadMu sync.Mutex
}

// noValues carries the deadline and cancellation of a context but none of
// its values. The bindings keep the context they are given for the lifetime
// of a connection; this keeps the first caller's values out of it.
type noValues struct{ context.Context }

func (noValues) Value(any) any { return nil }

// callCtx is what every bindings call gets: deadline and cancellation of the
// caller's context, plus the connection values the bindings look up.
type callCtx struct {
	context.Context                 // the caller's (deadline, cancellation, other values)
	conn            context.Context // the values bindings.NewConnection stored
}

func (c callCtx) Value(key any) any {
	if v := c.conn.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}

// connErr marks an error of opening a host's connection (dial, SSH
// handshake or host key, ping): the host is not usable now.
type connErr struct{ err error }

func (e *connErr) Error() string { return e.err.Error() }
func (e *connErr) Unwrap() error { return e.err }

// connect returns the connection context of h, opening it on first use or
// after drop. A failed open is not remembered: the next call tries again.
// Blocks for at most one dial and ping, bounded by ctx.
func (h *host) connect(ctx context.Context) (context.Context, error) {
	h.mu.Lock()
	c := h.conn
	h.mu.Unlock()
	if c != nil {
		return c, nil
	}
	// The dial inside the bindings does not watch ctx: run the connect
	// aside so this call returns when ctx ends (the goroutine ends with the
	// dial; its ping then fails on the ended ctx).
	type result struct {
		c   context.Context
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, t, err := h.open(noValues{ctx})
		if err == nil {
			h.mu.Lock()
			if h.conn == nil {
				h.conn, h.tunnel = c, t
				t = nil
			}
			c = h.conn
			h.mu.Unlock()
			if t != nil { // another call connected meanwhile
				t.Close()
			}
		}
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if ctx.Err() != nil {
				return nil, &connErr{fmt.Errorf("connect %s: %w (%w)", h.URI, ctx.Err(), r.err)}
			}
			return nil, &connErr{fmt.Errorf("connect %s: %w", h.URI, r.err)}
		}
		return r.c, nil
	case <-ctx.Done():
		return nil, &connErr{fmt.Errorf("connect %s: %w", h.URI, ctx.Err())}
	}
}

// open dials h: ssh:// through an SSH connection of our own (host key
// checked against Host.KnownHosts as Host.HostKeyChecking says), unix://
// and tcp:// by the bindings. Blocks for the dial and one ping.
func (h *host) open(ctx context.Context) (context.Context, *sshTunnel, error) {
	u, err := url.Parse(h.URI)
	if err != nil {
		return nil, nil, err
	}
	if u.Scheme != "ssh" {
		c, err := bindings.NewConnection(ctx, h.URI)
		return c, nil, err
	}
	t, err := dialSSH(ctx, h.Host, u)
	if err != nil {
		return nil, nil, err
	}
	c, err := viaDialer(ctx, u, t.dial)
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	return c, t, nil
}

// drop forgets h's connection c after a connection-level error, so that
// the next call dials again (a rebooted host, a restarted service, a dead
// SSH connection). A newer connection than c is kept. Does not block.
func (h *host) drop(c context.Context) {
	h.mu.Lock()
	var t *sshTunnel
	if h.conn == c {
		h.conn, t, h.tunnel = nil, h.tunnel, nil
	}
	h.mu.Unlock()
	closeIdle(c)
	if t != nil {
		t.Close()
	}
}

// do runs one API call f on h, bounded by d, with the connection values.
// A connection-level error (anything but an answer of the API: refused,
// reset, EOF, a dead SSH connection, a timeout) drops the connection, so
// the next call dials again. Connect errors come back as *connErr.
func (p *Podman) do(ctx context.Context, h *host, d time.Duration, f func(cctx context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	conn, err := h.connect(cctx)
	if err != nil {
		return err
	}
	err = f(callCtx{Context: cctx, conn: conn})
	if err != nil && isConnLevel(err) {
		p.log.Debug("connection-level error: the next call dials again", "host", h.Name, "error", err)
		h.drop(conn)
	}
	return err
}

// isConnLevel reports whether err is no answer of the Podman API.
func isConnLevel(err error) bool {
	if err == nil {
		return false
	}
	if _, api := apiError(err); api {
		return false
	}
	return !errors.Is(err, context.Canceled)
}

// closeIdle closes idle keep-alive connections of connection c.
func closeIdle(c context.Context) {
	if c == nil {
		return
	}
	if conn, err := bindings.GetClient(c); err == nil && conn.Client != nil {
		if t, ok := conn.Client.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
}

// closeIdle closes idle keep-alive connections of h.
func (h *host) closeIdle() {
	h.mu.Lock()
	c := h.conn
	h.mu.Unlock()
	closeIdle(c)
}

func (h *host) hasNetwork(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.networks[name]
}

func (h *host) sawNetwork(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.networks[name] = true
}
