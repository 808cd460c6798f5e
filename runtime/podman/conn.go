package podman

import (
	"context"
	"fmt"
	"net/http"
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
	// images and networks seen present on this host (positive cache only:
	// a later removal surfaces as a create error, classified the same).
	images   map[string]bool
	networks map[string]bool

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

// connect returns the connection context of h, opening it on first use. A
// failed open is not remembered: the next call tries again. Blocks for at
// most one ping, bounded by ctx.
func (h *host) connect(ctx context.Context) (context.Context, error) {
	h.mu.Lock()
	c := h.conn
	h.mu.Unlock()
	if c != nil {
		return c, nil
	}
	// The SSH dial inside the bindings does not watch ctx: run the connect
	// aside so this call returns when ctx ends (the goroutine ends with the
	// dial; its ping then fails on the ended ctx).
	type result struct {
		c   context.Context
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := bindings.NewConnectionWithIdentity(noValues{ctx}, h.URI, h.Identity, false)
		if err == nil {
			h.mu.Lock()
			if h.conn == nil {
				h.conn = c
			}
			c = h.conn
			h.mu.Unlock()
		}
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("connect %s: %w (%w)", h.URI, ctx.Err(), r.err)
			}
			return nil, fmt.Errorf("connect %s: %w", h.URI, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("connect %s: %w", h.URI, ctx.Err())
	}
}

// call derives the context for one API call on h: ctx bounded by d, with the
// connection values. The returned cancel must be called.
func (p *Podman) call(ctx context.Context, h *host, d time.Duration) (context.Context, context.CancelFunc, error) {
	cctx, cancel := context.WithTimeout(ctx, d)
	conn, err := h.connect(cctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return callCtx{Context: cctx, conn: conn}, cancel, nil
}

// closeIdle closes idle keep-alive connections of h.
func (h *host) closeIdle() {
	h.mu.Lock()
	c := h.conn
	h.mu.Unlock()
	if c == nil {
		return
	}
	if conn, err := bindings.GetClient(c); err == nil && conn.Client != nil {
		if t, ok := conn.Client.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
}

func (h *host) hasImage(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.images[name]
}

func (h *host) sawImage(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.images[name] = true
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
