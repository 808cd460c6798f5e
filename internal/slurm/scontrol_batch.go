package slurm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// DefaultAddrBatchWindow is how long the first of several concurrent
// address updates waits for others to join it in one scontrol run.
const DefaultAddrBatchWindow = 100 * time.Millisecond

// maxAddrBatch caps the nodes of one batched address update. With names,
// addresses and host names of at most 255 bytes each, every argument stays
// far below Linux's 128 KiB limit for one argv element.
const maxAddrBatch = 128

// errBatchFailed tells a caller that its batch failed as a whole: it
// updates its node on its own, so one bad node never hides the others.
var errBatchFailed = errors.New("batched address update failed")

// addrReq is one node's pending address update.
type addrReq struct {
	name, addr, host string
	done             chan error // buffered: the flusher never blocks on it
}

// addrBatcher coalesces concurrent NodeAddr/NodeHostName updates of single
// nodes into one `scontrol update NodeName=a,b NodeAddr=ip1,ip2
// NodeHostName=h1,h2`: Slurm takes one address and one host name per node
// named, in order. While a batch runs, new requests queue for the next one
// (at most one batched scontrol runs at a time), so the batches grow with
// the load at no extra latency; an idle batcher makes the first request wait
// up to window for company. No goroutine runs while nothing is pending.
type addrBatcher struct {
	s      *Scontrol
	window time.Duration

	mu       sync.Mutex
	pending  []*addrReq
	since    time.Time     // when the oldest pending request came
	active   bool          // a flusher goroutine runs
	full     chan struct{} // wakes the flusher early when a batch is full
	runs     int           // batched scontrol runs so far (for tests)
	failures int           // of which failed as a whole (for tests)
}

func newAddrBatcher(s *Scontrol, window time.Duration) *addrBatcher {
	return &addrBatcher{s: s, window: window, full: make(chan struct{}, 1)}
}

// update sets one node's address and host name, batched with concurrent
// callers. Each caller gets its own result: when the batch fails, the
// caller's node is updated alone (its error names that node only). If ctx
// ends while the node still waits, it is withdrawn; if ctx ends while its
// batch runs, update returns ctx's error and the update may still be
// applied. Blocks for at most the window plus the runs ahead of it and its
// own; idempotent.
func (b *addrBatcher) update(ctx context.Context, name, addr, host string) error {
	req := &addrReq{name: name, addr: addr, host: host, done: make(chan error, 1)}
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.since = time.Now()
	}
	b.pending = append(b.pending, req)
	if len(b.pending) >= maxAddrBatch {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
	if !b.active {
		b.active = true
		go b.flush()
	}
	b.mu.Unlock()

	select {
	case err := <-req.done:
		if errors.Is(err, errBatchFailed) {
			return b.s.update(ctx, []string{name}, NodeUpdate{Addr: addr, Hostname: host})
		}
		return err
	case <-ctx.Done():
		b.mu.Lock()
		for i, r := range b.pending {
			if r == req {
				b.pending = append(b.pending[:i], b.pending[i+1:]...)
				break
			}
		}
		b.mu.Unlock()
		return fmt.Errorf("scontrol update NodeName=%s NodeAddr=%s: %w", name, addr, ctx.Err())
	}
}

// flush runs batches until nothing is pending, then ends.
func (b *addrBatcher) flush() {
	for {
		b.mu.Lock()
		wait := b.window - time.Since(b.since)
		full := len(b.pending) >= maxAddrBatch
		b.mu.Unlock()
		if wait > 0 && !full {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-b.full:
				t.Stop()
			}
		}
		b.mu.Lock()
		batch := b.take()
		if len(batch) == 0 {
			b.active = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.run(batch)
	}
}

// take removes the next batch from pending: up to maxAddrBatch requests,
// oldest first, one per node (a second update of a node waits for the next
// batch, so the later one wins). Called with mu held.
func (b *addrBatcher) take() []*addrReq {
	var batch, rest []*addrReq
	seen := map[string]bool{}
	for _, r := range b.pending {
		if len(batch) < maxAddrBatch && !seen[r.name] {
			seen[r.name] = true
			batch = append(batch, r)
		} else {
			rest = append(rest, r)
		}
	}
	b.pending = rest
	if len(rest) > 0 {
		b.since = time.Now()
	}
	select { // a stale wake-up must not cut the next window short
	case <-b.full:
	default:
	}
	return batch
}

// run applies one batch and hands every request its result.
func (b *addrBatcher) run(batch []*addrReq) {
	// The callers' contexts may end independently; the run is bounded by
	// the backend's timeout.
	ctx := context.Background()
	if len(batch) == 1 {
		r := batch[0]
		r.done <- b.s.update(ctx, []string{r.name}, NodeUpdate{Addr: r.addr, Hostname: r.host})
		return
	}
	names := make([]string, len(batch))
	addrs := make([]string, len(batch))
	hosts := make([]string, len(batch))
	for i, r := range batch {
		names[i], addrs[i], hosts[i] = r.name, r.addr, r.host
	}
	_, err := b.s.run(ctx, "update", "NodeName="+strings.Join(names, ","),
		"NodeAddr="+strings.Join(addrs, ","), "NodeHostName="+strings.Join(hosts, ","))
	b.mu.Lock()
	b.runs++
	if err != nil {
		b.failures++
	}
	b.mu.Unlock()
	if err != nil {
		err = errBatchFailed
	}
	for _, r := range batch {
		r.done <- err
	}
}
