// Package fake is an in-memory runtime.Runtime that behaves like a remote
// cloud API: it keeps real state (one instance per node), answers after a
// per-call latency, rejects calls over its rate limit ("throttled",
// ClassTransient), refuses launches past its capacity (ClassCapacity) and of
// unknown images (ClassConfig), and lets tests inject faults. It is meant for
// unit tests and 10,000-node simulations: an instance costs well under 100
// bytes and no goroutine.
package runtimefake

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Host is the Instance.Host of every fake instance.
const Host = "fake"

// Operations passed to a fault function.
const (
	OpLaunch    = "launch"
	OpTerminate = "terminate"
	OpList      = "list"
	OpLogs      = "logs"
)

// ErrThrottled is wrapped (as ClassTransient) by every call rejected for
// going over the rate limit.
var ErrThrottled = errors.New("throttled: request rate exceeded")

// Options configures a Fake.
type Options struct {
	// Cluster names the owner; shown in instance IDs.
	Cluster string
	// Latency is how long every call takes (per node for Launch and
	// Terminate, which handle their nodes as parallel calls).
	Latency time.Duration
	// RateLimit is the calls per second the fake accepts (token bucket,
	// server side); calls over it fail with ErrThrottled. 0 = unlimited.
	RateLimit float64
	// Burst is the bucket size; 0 = max(1, ceil(RateLimit)).
	Burst int
	// Capacity is the most instances that may exist; 0 = unlimited.
	Capacity int
	// Images are the known images; empty = any image.
	Images []string

	// now is the clock (tests); default time.Now.
	now func() time.Time
}

// Stats counts calls. Each node of a Launch or Terminate is one call; List is
// one call.
type Stats struct {
	Calls      int64 // every call received
	Throttled  int64 // rejected by the rate limit
	Faults     int64 // failed by the fault function
	Launched   int64 // instances created
	Terminated int64 // instances removed
	Refused    int64 // launches refused for capacity or config
}

// instance is the stored form; strings shared with the caller, no pointers
// beyond them.
type instance struct {
	group   string
	image   string
	name    string // NodeSpec.Image: the group image's name
	id      uint64
	created int64 // unix nanoseconds
	state   runtime.State
}

// Fake is an in-memory runtime. Safe for concurrent use.
type Fake struct {
	o      Options
	images map[string]bool

	mu        sync.Mutex
	instances map[string]instance
	nextID    uint64
	fault     func(op, node string) error
	logs      map[string]string // node -> its instances' canned output
	exitStart map[string]bool   // node -> its instances exit at once
	tokens    float64
	last      time.Time

	calls, throttled, faults, launched, terminated, refused atomic.Int64
}

var _ runtime.Runtime = (*Fake)(nil)

// New returns an empty fake. It does not block.
func New(o Options) *Fake {
	if o.now == nil {
		o.now = time.Now
	}
	if o.Burst <= 0 {
		o.Burst = max(1, int(math.Ceil(o.RateLimit)))
	}
	f := &Fake{o: o, instances: map[string]instance{}, tokens: float64(o.Burst)}
	if len(o.Images) > 0 {
		f.images = make(map[string]bool, len(o.Images))
		for _, im := range o.Images {
			f.images[im] = true
		}
	}
	return f
}

// SetFault installs fn, called for every call that passed the rate limit
// with the operation (OpLaunch, OpTerminate, OpList) and node ("" for
// List). A non-nil error fails that call before it changes anything; an
// unclassified error counts as ClassTransient. nil removes the fault.
func (f *Fake) SetFault(fn func(op, node string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// SetLog sets the output (stdout and stderr) node's instances have, now
// and after a relaunch, as Logs returns it. Not a call.
func (f *Fake) SetLog(node, output string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logs == nil {
		f.logs = map[string]string{}
	}
	f.logs[node] = output
}

// SetExitOnStart makes node's launches behave as an image whose PID 1
// exits at once (on) or not (off): the instance is created, exits, is
// removed again, and Launch fails with ClassConfig, its Result carrying
// the instance's log (SetLog) as a real runtime reads it before the
// removal. Not a call.
func (f *Fake) SetExitOnStart(node string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exitStart == nil {
		f.exitStart = map[string]bool{}
	}
	f.exitStart[node] = on
}

// SetState sets the state of node's instance (e.g. runtime.StateExited to
// simulate a crash) and reports whether it exists. Not a call: no latency,
// no rate limit.
func (f *Fake) SetState(node string, s runtime.State) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[node]
	if ok {
		in.state = s
		f.instances[node] = in
	}
	return ok
}

// Stats returns the counters.
func (f *Fake) Stats() Stats {
	return Stats{
		Calls: f.calls.Load(), Throttled: f.throttled.Load(), Faults: f.faults.Load(),
		Launched: f.launched.Load(), Terminated: f.terminated.Load(), Refused: f.refused.Load(),
	}
}

// Len returns the number of instances. Not a call.
func (f *Fake) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.instances)
}

// Instances returns a snapshot of every instance, sorted by name. Not a call:
// no latency, no rate limit, no fault.
func (f *Fake) Instances() []runtime.Instance {
	f.mu.Lock()
	out := make([]runtime.Instance, 0, len(f.instances))
	for name, in := range f.instances {
		out = append(out, f.export(name, in))
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b runtime.Instance) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// ImageRef returns the image reference (Template.Image) node's instance
// was launched with, "" when it has none. Not a call: no latency, no fault.
func (f *Fake) ImageRef(node string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.instances[node].image
}

func (f *Fake) export(name string, in instance) runtime.Instance {
	return runtime.Instance{
		Name:    name,
		Group:   in.group,
		Host:    Host,
		ID:      f.o.Cluster + "-" + strconv.FormatUint(in.id, 16),
		Addr:    "fake-" + name,
		Image:   in.name,
		State:   in.state,
		Created: time.Unix(0, in.created),
	}
}

// admit takes n calls at once through the rate limiter and the fault
// function. It returns, per call, nil or the error that rejects it.
func (f *Fake) admit(op string, names []string) []error {
	errs := make([]error, len(names))
	f.calls.Add(int64(len(names)))
	f.mu.Lock()
	fault := f.fault
	if f.o.RateLimit > 0 {
		now := f.o.now()
		if !f.last.IsZero() {
			f.tokens = min(float64(f.o.Burst), f.tokens+now.Sub(f.last).Seconds()*f.o.RateLimit)
		}
		f.last = now
		for i := range names {
			if f.tokens >= 1 {
				f.tokens--
				continue
			}
			errs[i] = runtime.Errorf(runtime.ClassTransient, "%w (limit %g calls/s)", ErrThrottled, f.o.RateLimit)
			f.throttled.Add(1)
		}
	}
	f.mu.Unlock()
	if fault != nil {
		for i, n := range names {
			if errs[i] != nil {
				continue
			}
			if err := fault(op, n); err != nil {
				errs[i] = err
				f.faults.Add(1)
			}
		}
	}
	return errs
}

// wait is the call's latency; it fails with ctx's error if ctx ends first.
func (f *Fake) wait(ctx context.Context) error {
	if f.o.Latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(f.o.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Launch implements runtime.Runtime. Each node is one call; a batch is
// handled as parallel calls (one Latency for all). A running instance is
// returned as is; a stopped one is replaced (new ID). Blocks for Latency;
// honours ctx (a call cut short changes nothing). Idempotent.
func (f *Fake) Launch(ctx context.Context, nodes []runtime.NodeSpec) []runtime.Result {
	res := make([]runtime.Result, len(nodes))
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
		res[i].Name = n.Name
	}
	errs := f.admit(OpLaunch, names)
	werr := f.wait(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, n := range nodes {
		switch {
		case errs[i] != nil:
			res[i].Err = fmt.Errorf("node %s: launch: %w", n.Name, errs[i])
		case werr != nil:
			res[i].Err = runtime.Errorf(runtime.ClassTransient, "node %s: launch: %w", n.Name, werr)
		default:
			old, ok := f.instances[n.Name]
			running := ok && old.state == runtime.StateRunning
			res[i].Instance, res[i].Err = f.launchLocked(n)
			if res[i].Err == nil && !running && f.exitStart[n.Name] {
				in := f.instances[n.Name]
				delete(f.instances, n.Name)
				f.terminated.Add(1)
				lg := f.logLocked(n.Name, in, 0)
				res[i].Instance, res[i].Log = runtime.Instance{}, &lg
				res[i].Err = runtime.Errorf(runtime.ClassConfig, "node %s on host %s: start: container exited at once: status exited, exit code 1", n.Name, Host)
			}
		}
	}
	return res
}

func (f *Fake) launchLocked(n runtime.NodeSpec) (runtime.Instance, error) {
	if n.Name == "" {
		f.refused.Add(1)
		return runtime.Instance{}, runtime.Errorf(runtime.ClassConfig, "launch: empty node name")
	}
	if f.images != nil && !f.images[n.Template.Image] {
		f.refused.Add(1)
		return runtime.Instance{}, runtime.Errorf(runtime.ClassConfig, "node %s: launch: image %q not found", n.Name, n.Template.Image)
	}
	old, exists := f.instances[n.Name]
	if exists && old.state == runtime.StateRunning {
		return f.export(n.Name, old), nil
	}
	count := len(f.instances)
	if exists {
		count-- // replaced
	}
	if f.o.Capacity > 0 && count >= f.o.Capacity {
		f.refused.Add(1)
		return runtime.Instance{}, runtime.Errorf(runtime.ClassCapacity, "node %s: launch: capacity exhausted (%d of %d instances)", n.Name, count, f.o.Capacity)
	}
	f.nextID++
	in := instance{group: n.Group, image: n.Template.Image, name: n.Image, id: f.nextID, created: f.o.now().UnixNano(), state: runtime.StateRunning}
	f.instances[n.Name] = in
	f.launched.Add(1)
	return f.export(n.Name, in), nil
}

// Terminate implements runtime.Runtime. Each name is one call; a batch is
// handled as parallel calls. Absent = success. Blocks for Latency; honours
// ctx. Idempotent.
func (f *Fake) Terminate(ctx context.Context, names []string) []runtime.Result {
	res := make([]runtime.Result, len(names))
	errs := f.admit(OpTerminate, names)
	werr := f.wait(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, name := range names {
		res[i].Name = name
		switch {
		case errs[i] != nil:
			res[i].Err = fmt.Errorf("node %s: terminate: %w", name, errs[i])
		case werr != nil:
			res[i].Err = runtime.Errorf(runtime.ClassTransient, "node %s: terminate: %w", name, werr)
		default:
			if _, ok := f.instances[name]; ok {
				delete(f.instances, name)
				f.terminated.Add(1)
			}
		}
	}
	return res
}

// List implements runtime.Runtime: one call returning every instance,
// sorted by name. Blocks for Latency; honours ctx.
func (f *Fake) List(ctx context.Context) ([]runtime.Instance, error) {
	if err := f.admit(OpList, []string{""})[0]; err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if err := f.wait(ctx); err != nil {
		return nil, runtime.Errorf(runtime.ClassTransient, "list: %w", err)
	}
	return f.Instances(), nil
}

// Logs implements runtime.Runtime: one call returning the last max bytes
// of node's canned output (SetLog; none set: empty). A node without an
// instance is an error wrapping runtime.ErrNoInstance. Blocks for Latency;
// honours ctx.
func (f *Fake) Logs(ctx context.Context, node string, max int) (runtime.Log, error) {
	if err := f.admit(OpLogs, []string{node})[0]; err != nil {
		return runtime.Log{}, fmt.Errorf("node %s: logs: %w", node, err)
	}
	if err := f.wait(ctx); err != nil {
		return runtime.Log{}, runtime.Errorf(runtime.ClassTransient, "node %s: logs: %w", node, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[node]
	if !ok {
		return runtime.Log{}, fmt.Errorf("node %s: logs: %w", node, runtime.ErrNoInstance)
	}
	return f.logLocked(node, in, max), nil
}

// logLocked is node's log with in's identity, cut to its last max bytes
// (0: whole).
func (f *Fake) logLocked(node string, in instance, max int) runtime.Log {
	out := f.logs[node]
	l := runtime.Log{ID: f.export(node, in).ID, Image: in.image, Host: Host}
	if max > 0 && len(out) > max {
		out, l.Truncated = out[len(out)-max:], true
	}
	l.Tail = []byte(out)
	return l
}
