package podman

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/containers/podman/v4/pkg/bindings/images"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Image pull policies (Host.PullPolicy, Options.PullPolicy), named as
// Podman's own --pull values.
const (
	// PullNever: an image missing on a host is never pulled; the host is
	// skipped for that image (the default: air-gapped sites, and no
	// registry traffic a site did not ask for).
	PullNever = "never"
	// PullMissing: an image missing on a host is pulled there (through
	// the host's Podman API, from the registry its reference names).
	PullMissing = "missing"
)

// DefaultPullTimeout bounds one image pull (Options.PullTimeout).
const DefaultPullTimeout = 5 * time.Minute

// errImage is wrapped by every failure of a host to provide a node's image
// (missing under PullNever, a pull that failed or timed out): such a host
// is skipped for that image only, never cooled down, so the group's other
// images (its default among them) still start there.
var errImage = errors.New("image unavailable on the host")

// errImageNotFound is wrapped by a launch on a host that lacks the image
// (PullNever) or could not pull it (PullMissing); it is an errImage.
var errImageNotFound error = imageErr("not found")

type imageErr string

func (e imageErr) Error() string      { return string(e) }
func (imageErr) Is(target error) bool { return target == errImage }

// imageState is what this process knows of one image on one host: present
// (kept: images are not removed under running nodes), or missing until a
// time (the host is skipped for the image until then, with why).
type imageState struct {
	present bool
	missing time.Time
	why     error
}

// imageKnownMissing returns the error h last met providing image ref,
// while it is recent (within p.imageRecheck()); nil when h has it or may
// have it. Does not block.
func (p *Podman) imageKnownMissing(h *host, ref string, now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.images[ref]
	if !ok || s.present || !now.Before(s.missing) {
		return nil
	}
	return s.why
}

// imageRecheck is how long a host that lacks an image is skipped for that
// image before it is asked again: the host cooldown; one second when the
// cooldown is off (siblings of one launch batch still share the answer).
func (p *Podman) imageRecheck() time.Duration {
	if p.hostCooldown > 0 {
		return p.hostCooldown
	}
	return time.Second
}

func (h *host) hasImage(ref string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.images[ref].present
}

func (h *host) sawImage(ref string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.images[ref] = imageState{present: true}
}

func (h *host) lacksImage(ref string, until time.Time, why error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.images[ref] = imageState{missing: until, why: why}
}

// pullPolicy returns h's effective pull policy.
func (p *Podman) pullPolicy(h *host) string {
	if h.PullPolicy != "" {
		return h.PullPolicy
	}
	return p.pullDefault
}

// ensureImage makes sure host h has image ref, as h's pull policy says:
// under PullNever a missing image is an error; under PullMissing it is
// pulled (one pull per host and image at a time in this process; bounded
// by Options.PullTimeout). A missing image, or a pull that failed, is
// host-scoped ClassConfig wrapping errImageNotFound; a pull that ran out of
// time is host-scoped ClassTransient wrapping errImage. Either is
// remembered (imageRecheck), so sibling nodes skip h for ref without
// asking it again. A host that does not answer the check is host-scoped as
// any API failure (not an image error). Blocks for at most one exists
// call and one pull.
func (p *Podman) ensureImage(ctx context.Context, h *host, node, ref string) error {
	if h.hasImage(ref) {
		return nil
	}
	if err := p.imageKnownMissing(h, ref, time.Now()); err != nil {
		return forNode(node, err)
	}
	exists := func() (bool, error) {
		var ok bool
		err := p.do(ctx, h, p.timeout, func(c context.Context) (err error) { ok, err = images.Exists(c, ref, nil); return })
		return ok, err
	}
	ok, err := exists()
	if err != nil {
		e := &runtime.Error{Class: classify(err), Err: fmt.Errorf("node %s on host %s: check image %q: %w", node, h.Name, ref, err)}
		if hostScoped(err) {
			e.Host = h.Name
		}
		return e
	}
	if ok {
		h.sawImage(ref)
		return nil
	}
	policy := p.pullPolicy(h)
	if policy != PullMissing {
		err := runtime.HostErrorf(runtime.ClassConfig, h.Name,
			"host %s: check image: image %q %w there (image_pull_policy %s: load or pull it on the host, or set image_pull_policy: missing)",
			h.Name, ref, errImageNotFound, policy)
		h.lacksImage(ref, time.Now().Add(p.imageRecheck()), err)
		return forNode(node, err)
	}

	// One pull per host and image at a time: siblings wait for it, then
	// find the image (or its failure) remembered.
	unlock, err := h.lockPull(ctx, ref)
	if err != nil {
		return runtime.HostErrorf(runtime.ClassTransient, h.Name, "node %s on host %s: wait for the pull of image %q: %w (%w)", node, h.Name, ref, err, errImage)
	}
	defer unlock()
	if h.hasImage(ref) {
		return nil
	}
	if err := p.imageKnownMissing(h, ref, time.Now()); err != nil {
		return forNode(node, err)
	}
	start := time.Now()
	p.log.Info("pulling image on podman host (image_pull_policy missing)", "node", node, "host", h.Name, "image", ref)
	var pullErr error
	err = p.do(ctx, h, p.pullTimeout, func(c context.Context) error {
		// The pull's own failures come in its stream, after an HTTP 200:
		// they are an answer of the host, not a connection problem.
		_, pullErr = images.Pull(c, ref, new(images.PullOptions).WithPolicy(PullMissing).WithQuiet(true))
		var ue *url.Error
		_, api := apiError(pullErr)
		switch {
		case pullErr == nil:
		case c.Err() != nil:
			return errors.Join(c.Err(), pullErr) // timed out or cancelled
		case api || errors.As(pullErr, &ue):
			return pullErr // refused by the API, or no answer
		}
		return nil
	})
	switch {
	case err == nil && pullErr == nil:
		h.sawImage(ref)
		p.log.Info("image pulled on podman host", "node", node, "host", h.Name, "image", ref, "duration", time.Since(start).String())
		return nil
	case err != nil && ctx.Err() != nil:
		// The caller's own end (the resume budget, a signal): nothing is
		// known about the host.
		return runtime.HostErrorf(runtime.ClassTransient, h.Name, "node %s on host %s: pull image %q: %w (%w)", node, h.Name, ref, err, errImage)
	case errors.Is(err, context.DeadlineExceeded):
		e := runtime.HostErrorf(runtime.ClassTransient, h.Name, "host %s: pull image %q: not done within podman.pull_timeout %s (%w)",
			h.Name, ref, p.pullTimeout, errImage)
		h.lacksImage(ref, time.Now().Add(p.imageRecheck()), e)
		return forNode(node, e)
	case err != nil:
		if _, api := apiError(err); !api {
			// No answer at all: the host, not the image.
			return runtime.HostErrorf(runtime.ClassTransient, h.Name, "node %s on host %s: pull image %q: %w", node, h.Name, ref, err)
		}
		pullErr = err // the API refused the pull (a bad reference)
		fallthrough
	default:
		e := runtime.HostErrorf(runtime.ClassConfig, h.Name, "host %s: pull image %q: %s (image %w there)",
			h.Name, ref, oneLine(pullErr), errImageNotFound)
		h.lacksImage(ref, time.Now().Add(p.imageRecheck()), e)
		return forNode(node, e)
	}
}

// forNode is a host's image error (as remembered for every node) for the
// node at hand: same class and host, the node named.
func forNode(node string, err error) error {
	return runtime.HostErrorf(runtime.ClassOf(err), runtime.HostOf(err), "node %s on %w", node, err)
}

// oneLine joins the lines of err's text.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// lockPull serialises pulls of ref on h in this process; it waits, honouring
// ctx, and returns the unlock function.
func (h *host) lockPull(ctx context.Context, ref string) (func(), error) {
	h.mu.Lock()
	if h.pulls == nil {
		h.pulls = map[string]chan struct{}{}
	}
	ch := h.pulls[ref]
	if ch == nil {
		ch = make(chan struct{}, 1)
		h.pulls[ref] = ch
	}
	h.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// imageSkips returns, for every host known to lack ref (imageKnownMissing),
// the error it last met: placement does not try them for ref.
func (p *Podman) imageSkips(ref string) map[int]error {
	now := time.Now()
	out := map[int]error{}
	for i, h := range p.hosts {
		if err := p.imageKnownMissing(h, ref, now); err != nil {
			out[i] = err
		}
	}
	return out
}

// imageFailed reports whether err is a host's failure to provide the
// node's image (errImage): such a host is skipped for the image only.
func imageFailed(err error) bool { return errors.Is(err, errImage) }
