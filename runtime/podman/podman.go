// Package podman implements runtime.Runtime over the Podman REST API
// (github.com/containers/podman/v4 pkg/bindings, never the podman CLI).
// One Slurm node is one container named <cluster>-<node> whose hostname is
// the node name, labelled with runtime.LabelCluster/LabelGroup/LabelNode.
// Every container gets the node contract of package runtime: EnvNode,
// EnvConfServer (Options.ConfServer) and the host's munge key
// (Options.MungeKey) bind-mounted read-only at MungeKeyPath.
// Several Podman hosts are supported; a new container goes to the host with
// the most free room (MaxNodes, CPUs, MemoryMB; 0 = unlimited; GPUs).
//
// GPUs: each host lists its devices (Host.GPUs, CDI names); a node whose
// template asks for N GPUs gets N of its host's devices that no other
// container of the cluster holds. The devices a container was given are in
// its labels, so every process (the hooks are short-lived) recovers each
// host's assignments from one list call.
//
// Failures are scoped (runtime.Error.Host): a host that does not answer,
// or lacks the network or a device, fails that host only. It is taken out
// of placement for Options.HostCooldown and the node is tried on the next
// host; only a failure on every host, or a template no host can run, is
// the template's (Host empty). An image missing on a host is pulled there
// or not as the host's PullPolicy says; a host without the image is
// skipped for that image only (never cooled down), and a node whose image
// no host has fails alone (ClassConfig naming the image and the hosts).
// One host that does not answer stops no launch, removal or list on the
// others: List then returns what it got and a *runtime.PartialError.
//
// Build with CGO_ENABLED=0 -tags "remote containers_image_openpgp".
package podman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containers/podman/v4/libpod/define"
	"github.com/containers/podman/v4/pkg/bindings/containers"
	"github.com/containers/podman/v4/pkg/bindings/network"
	"github.com/containers/podman/v4/pkg/domain/entities"
	"github.com/containers/podman/v4/pkg/domain/entities/reports"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Defaults for Options.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultStopTimeout = 10 * time.Second
	// DefaultHostCooldown is how long a host that failed a launch is left
	// out of placement.
	DefaultHostCooldown = 5 * time.Minute
	// maxParallel bounds the API calls one Launch/Terminate/List batch has
	// in flight.
	maxParallel = 16
)

// Host is one Podman API service (mirrors conf.PodmanHost).
type Host struct {
	Name string
	// URI: unix:///run/podman/podman.sock, tcp://127.0.0.1:PORT or
	// ssh://user@host/run/podman/podman.sock.
	URI string
	// Identity is the SSH private key for ssh:// URIs (no passphrase).
	Identity string
	// KnownHosts is the known_hosts file the host key of an ssh:// URI is
	// checked against. "": ~/.ssh/known_hosts of the user this runs as.
	KnownHosts string
	// HostKeyChecking for ssh:// URIs: HostKeyStrict (""), HostKeyAcceptNew
	// or HostKeyOff.
	HostKeyChecking string
	// Capacity; 0 = unlimited.
	MaxNodes int
	CPUs     float64
	MemoryMB int64
	// GPUs are the host's GPU devices (CDI names, e.g. nvidia.com/gpu=0)
	// node containers are given, each to one container at a time.
	GPUs []string
	// PullPolicy for an image missing on this host: PullNever or
	// PullMissing; "": Options.PullPolicy.
	PullPolicy string
}

// Options configures a Podman runtime.
type Options struct {
	// Cluster is the ownership label value; required.
	Cluster string
	// Hosts: at least one.
	Hosts []Host
	// ConfServer is slurmctld as node containers reach it, host[:port];
	// every node container gets it as runtime.EnvConfServer (configless
	// slurmd). Required.
	ConfServer string
	// MungeKey is the absolute path of the cluster's munge key on every
	// Podman host; it is bind-mounted read-only at runtime.MungeKeyPath in
	// every node container. Required.
	MungeKey string
	// Timeout bounds one API call. Default 30s.
	Timeout time.Duration
	// StopTimeout is how long a container gets to stop before it is
	// killed. Default 10s.
	StopTimeout time.Duration
	// HostCooldown is how long a host that failed a launch (did not answer,
	// lacks the network or a device) is left out of placement, and how
	// long a host without an image is skipped for that image.
	// Default DefaultHostCooldown; negative: none.
	HostCooldown time.Duration
	// PullPolicy is the hosts' default for an image missing on a host:
	// PullNever ("", the default: the host is skipped for that image) or
	// PullMissing (it is pulled there).
	PullPolicy string
	// PullTimeout bounds one image pull. Default DefaultPullTimeout.
	PullTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Podman is a runtime.Runtime over one or more Podman API services. Safe for
// concurrent use. Connections are opened on first use and reused.
type Podman struct {
	cluster      string
	contract     contract
	hosts        []*host
	timeout      time.Duration
	stopTimeout  time.Duration
	hostCooldown time.Duration
	pullDefault  string
	pullTimeout  time.Duration
	log          *slog.Logger

	mu    sync.Mutex
	locks map[string]*nodeLock // per node, serialises work on one node
	// inventory per host (index as hosts): node -> reserved usage of every
	// owned container that is not exited, as last listed plus what this
	// process placed or removed since.
	inv      []map[string]usage
	loadedAt []time.Time // zero: never listed
	inflight map[string]reservation
	changes  map[string]nodeChange // recent changes, see setInventoryAt
	cool     []cooling             // per host: out of placement until
}

type nodeChange struct {
	host    int // -1: every host
	u       usage
	present bool
	at      time.Time
}

type reservation struct {
	host int
	u    usage
}

var _ runtime.Runtime = (*Podman)(nil)

// New validates o and returns a runtime. It opens no connection (each host
// is connected on first use), so it does not block. ctx is unused.
func New(ctx context.Context, o Options) (*Podman, error) {
	_ = ctx
	if o.Cluster == "" {
		return nil, errors.New("podman: cluster name is required")
	}
	if len(o.Hosts) == 0 {
		return nil, errors.New("podman: at least one host is required")
	}
	if o.ConfServer == "" {
		return nil, errors.New("podman: the controller address (conf server) is required")
	}
	if !filepath.IsAbs(o.MungeKey) {
		return nil, fmt.Errorf("podman: munge key %q: must be an absolute path", o.MungeKey)
	}
	p := &Podman{
		cluster:      o.Cluster,
		contract:     contract{confServer: o.ConfServer, mungeKey: filepath.Clean(o.MungeKey)},
		timeout:      o.Timeout,
		stopTimeout:  o.StopTimeout,
		hostCooldown: o.HostCooldown,
		pullDefault:  o.PullPolicy,
		pullTimeout:  o.PullTimeout,
		log:          o.Logger,
		locks:        map[string]*nodeLock{},
		inflight:     map[string]reservation{},
		changes:      map[string]nodeChange{},
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if p.stopTimeout <= 0 {
		p.stopTimeout = DefaultStopTimeout
	}
	if p.hostCooldown == 0 {
		p.hostCooldown = DefaultHostCooldown
	}
	if p.pullTimeout <= 0 {
		p.pullTimeout = DefaultPullTimeout
	}
	switch p.pullDefault {
	case "":
		p.pullDefault = PullNever
	case PullNever, PullMissing:
	default:
		return nil, fmt.Errorf("podman: image pull policy %q: want %s or %s", o.PullPolicy, PullNever, PullMissing)
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("runtime", "podman", "cluster", o.Cluster)
	seen := map[string]bool{}
	for i, h := range o.Hosts {
		if h.Name == "" {
			return nil, fmt.Errorf("podman: host %d: name is required", i)
		}
		if seen[h.Name] {
			return nil, fmt.Errorf("podman: host %s: duplicate name", h.Name)
		}
		seen[h.Name] = true
		u, err := url.Parse(h.URI)
		if err != nil {
			return nil, fmt.Errorf("podman: host %s: uri %q: %w", h.Name, h.URI, err)
		}
		switch u.Scheme {
		case "unix", "tcp", "ssh":
		default:
			return nil, fmt.Errorf("podman: host %s: uri %q: scheme must be unix, tcp or ssh", h.Name, h.URI)
		}
		if h.MaxNodes < 0 || h.CPUs < 0 || h.MemoryMB < 0 {
			return nil, fmt.Errorf("podman: host %s: capacity must not be negative", h.Name)
		}
		switch h.HostKeyChecking {
		case "", HostKeyStrict, HostKeyAcceptNew, HostKeyOff:
		default:
			return nil, fmt.Errorf("podman: host %s: host key checking %q: want %s, %s or %s", h.Name, h.HostKeyChecking, HostKeyStrict, HostKeyAcceptNew, HostKeyOff)
		}
		switch h.PullPolicy {
		case "", PullNever, PullMissing:
		default:
			return nil, fmt.Errorf("podman: host %s: image pull policy %q: want %s or %s", h.Name, h.PullPolicy, PullNever, PullMissing)
		}
		gpus := map[string]bool{}
		for _, g := range h.GPUs {
			if g == "" || strings.Contains(g, ",") || gpus[g] {
				return nil, fmt.Errorf("podman: host %s: gpu %q: empty, with a comma or listed twice", h.Name, g)
			}
			gpus[g] = true
		}
		h.GPUs = slices.Clone(h.GPUs)
		p.hosts = append(p.hosts, &host{Host: h, idx: i, images: map[string]imageState{}, networks: map[string]bool{}})
	}
	p.cool = make([]cooling, len(p.hosts))
	p.inv = make([]map[string]usage, len(p.hosts))
	for i := range p.inv {
		p.inv[i] = map[string]usage{}
	}
	p.loadedAt = make([]time.Time, len(p.hosts))
	return p, nil
}

// Close releases idle connections. The runtime stays usable (a later call
// reconnects). Does not block.
func (p *Podman) Close() error {
	for _, h := range p.hosts {
		h.closeIdle()
	}
	return nil
}

// Launch implements runtime.Runtime: it makes each node's container run, in
// parallel (at most 16 at once), and returns one Result per node in input
// order. A running container for the node on any host is returned as is;
// one that exists but does not run is removed and replaced. A failed launch
// leaves no container behind. Blocks until every node runs or failed;
// honours ctx. Idempotent.
func (p *Podman) Launch(ctx context.Context, nodes []runtime.NodeSpec) []runtime.Result {
	return runtime.LaunchEach(ctx, p.log, maxParallel, nodes, p.launchOne)
}

// Terminate implements runtime.Runtime: it stops (StopTimeout) and removes
// each named node's container on whatever host runs it, in parallel.
// Absent = success. Blocks; honours ctx. Idempotent.
func (p *Podman) Terminate(ctx context.Context, names []string) []runtime.Result {
	return runtime.TerminateEach(ctx, p.log, maxParallel, names, p.terminateOne)
}

// List implements runtime.Runtime: every container labelled with this
// cluster on every host, in any state. Running ones are inspected for their
// address. A host that does not answer (list or inspect) leaves the others'
// instances and a *runtime.PartialError naming it; none answering is an
// error. Blocks for one list per host plus one inspect per running container.
func (p *Podman) List(ctx context.Context) ([]runtime.Instance, error) {
	per := make([][]ctr, len(p.hosts))
	errs := make([]error, len(p.hosts))
	forEach(len(p.hosts), func(i int) {
		per[i], errs[i] = p.listHost(ctx, p.hosts[i], "")
		if errs[i] != nil && ctx.Err() == nil && isConnLevel(errs[i]) {
			p.coolDown(i, errs[i])
		}
	})
	var all []ctr
	for i, cs := range per {
		if errs[i] == nil {
			p.setInventory(i, cs)
			all = append(all, cs...)
		}
	}
	out := make([]runtime.Instance, len(all))
	gone := make([]bool, len(all))
	ierrs := make([]error, len(all))
	forEach(len(all), func(i int) {
		c := all[i]
		out[i] = c.instance()
		if c.state != runtime.StateRunning {
			return
		}
		d, err := p.inspect(ctx, p.hosts[c.host], c.id)
		switch {
		case isNotFound(err):
			gone[i] = true
		case err != nil:
			ierrs[i] = fmt.Errorf("node %s on host %s: inspect: %w", c.node, p.hosts[c.host].Name, err)
		default:
			out[i].State = stateOf(d.State.Status)
			out[i].Addr = addrOf(d, c.network)
		}
	})
	for i, err := range ierrs {
		if err != nil {
			errs[all[i].host] = errors.Join(errs[all[i].host], err)
		}
	}
	kept := out[:0]
	for i := range out {
		if !gone[i] && errs[all[i].host] == nil {
			kept = append(kept, out[i])
		}
	}
	var bad []string
	var why []error
	for i, err := range errs {
		if err != nil {
			bad = append(bad, p.hosts[i].Name)
			why = append(why, err)
		}
	}
	if len(bad) == 0 {
		return kept, nil
	}
	err := errors.Join(why...)
	if len(bad) == len(p.hosts) {
		return nil, runtime.Errorf(classify(err), "list: %w", err)
	}
	p.log.Warn("podman hosts not listed: returning the other hosts' instances; nodes on these hosts are unknown", "hosts", bad, "error", err)
	return kept, &runtime.PartialError{Hosts: bad, Err: err}
}

// ctr is one owned container as listed.
type ctr struct {
	host    int
	hostN   string
	id      string
	node    string
	group   string
	image   string // runtime.LabelImage: the group image's name, "" = default
	network string // first network it is attached to
	state   runtime.State
	created time.Time
	u       usage
}

func (c ctr) instance() runtime.Instance {
	return runtime.Instance{Name: c.node, Group: c.group, Host: c.hostN, ID: c.id, Image: c.image, State: c.state, Created: c.created}
}

// listHost lists the owned containers on h (all states), only node's when
// node is set.
func (p *Podman) listHost(ctx context.Context, h *host, node string) ([]ctr, error) {
	filters := map[string][]string{"label": {runtime.LabelCluster + "=" + p.cluster}}
	if node != "" {
		filters["label"] = append(filters["label"], runtime.LabelNode+"="+node)
	}
	var list []entities.ListContainer
	err := p.do(ctx, h, p.timeout, func(cctx context.Context) (err error) {
		list, err = containers.List(cctx, new(containers.ListOptions).WithAll(true).WithFilters(filters))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("host %s: list containers: %w", h.Name, err)
	}
	out := make([]ctr, 0, len(list))
	for _, l := range list {
		// Ownership is decided here again, not only by the server's filter.
		if l.Labels[runtime.LabelCluster] != p.cluster || l.Labels[runtime.LabelNode] == "" {
			continue
		}
		if node != "" && l.Labels[runtime.LabelNode] != node {
			continue
		}
		out = append(out, fromList(h, l))
	}
	return out, nil
}

func fromList(h *host, l entities.ListContainer) ctr {
	c := ctr{
		host:    h.idx,
		hostN:   h.Name,
		id:      l.ID,
		node:    l.Labels[runtime.LabelNode],
		group:   l.Labels[runtime.LabelGroup],
		image:   l.Labels[runtime.LabelImage],
		state:   stateOf(l.State),
		created: l.Created,
		u:       usageFromLabels(l.Labels),
	}
	if len(l.Networks) > 0 {
		c.network = l.Networks[0]
	}
	return c
}

// stateOf maps a Podman container state to a runtime.State.
func stateOf(s string) runtime.State {
	switch s {
	case "running":
		return runtime.StateRunning
	case "created", "configured", "initialized":
		return runtime.StateCreated
	case "exited", "stopped", "dead", "stopping", "removing":
		return runtime.StateExited
	default:
		return runtime.StateUnknown
	}
}

// counts reports whether a container in state s holds host resources.
func counts(s runtime.State) bool { return s != runtime.StateExited }

// addrOf returns the container's IP on network (any network if "").
func addrOf(d *define.InspectContainerData, network string) string {
	if d == nil || d.NetworkSettings == nil {
		return ""
	}
	ns := d.NetworkSettings
	if network != "" {
		if n, ok := ns.Networks[network]; ok && n != nil {
			return n.IPAddress
		}
		return ""
	}
	if ns.IPAddress != "" {
		return ns.IPAddress
	}
	for _, n := range ns.Networks {
		if n != nil && n.IPAddress != "" {
			return n.IPAddress
		}
	}
	return ""
}

func (p *Podman) inspect(ctx context.Context, h *host, id string) (d *define.InspectContainerData, err error) {
	err = p.do(ctx, h, p.timeout, func(cctx context.Context) (err error) {
		d, err = containers.Inspect(cctx, id, nil)
		return err
	})
	return d, err
}

// find lists node's containers on every host that answers. missed holds
// the error of each host that did not (the node might run there); a host
// that does not answer is cooled down. err is set when no host answered.
func (p *Podman) find(ctx context.Context, node string) (found []ctr, missed map[int]error, err error) {
	per := make([][]ctr, len(p.hosts))
	errs := make([]error, len(p.hosts))
	forEach(len(p.hosts), func(i int) {
		per[i], errs[i] = p.listHost(ctx, p.hosts[i], node)
	})
	missed = map[int]error{}
	for i, e := range errs {
		if e == nil {
			found = append(found, per[i]...)
			continue
		}
		missed[i] = e
		if ctx.Err() == nil && isConnLevel(e) {
			p.coolDown(i, e)
		}
	}
	if len(missed) == len(p.hosts) {
		return nil, missed, errors.Join(errs...)
	}
	return found, missed, nil
}

// hostNames returns the names of the hosts in m, in config order.
func (p *Podman) hostNames(m map[int]error) []string {
	var out []string
	for i, h := range p.hosts {
		if _, ok := m[i]; ok {
			out = append(out, h.Name)
		}
	}
	return out
}

// knownOn reports whether this process last saw node's container on host i.
func (p *Podman) knownOn(i int, node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.inv[i][node]
	return ok
}

// launchOne makes node n run; see Launch.
func (p *Podman) launchOne(ctx context.Context, n runtime.NodeSpec) (runtime.Instance, error) {
	if err := checkSpec(p.cluster, n); err != nil {
		return runtime.Instance{}, runtime.Errorf(runtime.ClassConfig, "node %s: invalid template: %w", n.Name, err)
	}
	unlock, err := p.lockNode(ctx, n.Name)
	if err != nil {
		return runtime.Instance{}, runtime.Errorf(runtime.ClassTransient, "node %s: wait for other operation on node: %w", n.Name, err)
	}
	defer unlock()
	start := time.Now()

	found, missed, err := p.find(ctx, n.Name)
	if err != nil {
		return runtime.Instance{}, runtime.Errorf(classify(err), "node %s: find: %w", n.Name, err)
	}
	for i, e := range missed {
		if p.knownOn(i, n.Name) {
			h := p.hosts[i].Name
			return runtime.Instance{}, runtime.HostErrorf(runtime.ClassTransient, h,
				"node %s: its container was last seen on host %s, which does not answer: not starting a second one: %w", n.Name, h, e)
		}
	}
	if len(missed) > 0 {
		p.log.Warn("podman hosts not answering were not checked for a container of the node: launching on the others",
			"node", n.Name, "hosts", p.hostNames(missed), "error", errors.Join(slices.Collect(maps.Values(missed))...))
	}
	var keep *ctr
	for i := range found {
		if found[i].state == runtime.StateRunning && keep == nil {
			keep = &found[i]
		}
	}
	if keep != nil {
		h := p.hosts[keep.host]
		d, err := p.inspect(ctx, h, keep.id)
		if err == nil && d.State.Running {
			if len(found) > 1 {
				p.log.Warn("node has more than one container; removing the extra ones", "node", n.Name, "keep", keep.id, "count", len(found))
			}
			if err := p.removeAll(ctx, n.Name, found, keep.id); err != nil {
				return runtime.Instance{}, err
			}
			p.observe(keep.host, n.Name, keep.u)
			inst := keep.instance()
			inst.Addr = addrOf(d, n.Template.Network)
			if inst.Addr == "" { // started under another network setting
				inst.Addr = addrOf(d, "")
			}
			p.log.Info("node already running; not launching another", "node", n.Name, "host", h.Name, "id", keep.id, "addr", inst.Addr)
			return inst, nil
		}
		if err != nil && !isNotFound(err) {
			return runtime.Instance{}, runtime.Errorf(classify(err), "node %s on host %s: inspect: %w", n.Name, h.Name, err)
		}
		// It stopped (or vanished) since it was listed: replace it.
	}
	if len(found) > 0 {
		p.log.Info("replacing node container that is not running", "node", n.Name, "count", len(found))
		if err := p.removeAll(ctx, n.Name, found, ""); err != nil {
			return runtime.Instance{}, err
		}
	}

	return p.place(ctx, n, start)
}

// place starts node n on the best host with room. A host-scoped failure
// cools that host down and the node is tried on the next one; see
// placeFailed for the error when none is left.
func (p *Podman) place(ctx context.Context, n runtime.NodeSpec, start time.Time) (runtime.Instance, error) {
	// Hosts this process found without the node's image lately are not
	// asked again (imageRecheck).
	tried := p.imageSkips(n.Template.Image)
	for {
		hi, gpus, err := p.reserve(ctx, n, start, tried)
		if err != nil {
			return runtime.Instance{}, p.placeFailed(n, tried, err)
		}
		h := p.hosts[hi]
		inst, err := p.create(ctx, h, n, gpus)
		if err == nil {
			p.commit(n.Name)
			p.log.Info("node launched", "node", n.Name, "group", n.Group, "host", inst.Host, "id", inst.ID, "addr", inst.Addr, "gpus", gpus)
			return inst, nil
		}
		p.release(n.Name)
		if runtime.HostOf(err) == "" || ctx.Err() != nil {
			return runtime.Instance{}, err
		}
		tried[hi] = err
		if imageFailed(err) {
			// The host lacks this image (or could not pull it): it is
			// skipped for this image only and still starts the group's
			// other images (and other groups' nodes).
			p.log.Warn("podman host lacks the node's image: trying the next host", "node", n.Name, "group", n.Group,
				"host", h.Name, "image", n.Template.Image, "name", n.Image, "error", err)
			continue
		}
		p.coolDown(hi, err)
		p.log.Warn("podman host cannot start the node: trying the next host", "node", n.Name, "group", n.Group, "host", h.Name,
			"class", runtime.ClassOf(err), "error", err)
	}
}

// placeFailed is the error of a node no host could start: tried holds the
// host-scoped failure of each host it was tried on, last why no other host
// was left. Failing on every host for want of the image is ClassConfig
// naming the image and the hosts; failing on every host with Config
// otherwise is the template's problem: ClassConfig, not host-scoped. Every host
// failing Transient (none answers) stays Transient. Otherwise no usable
// host is left for now: ClassCapacity (retry later).
func (p *Podman) placeFailed(n runtime.NodeSpec, tried map[int]error, last error) error {
	if len(tried) == 0 {
		return last
	}
	errs := make([]error, 0, len(tried)+1)
	classes := map[runtime.Class]int{}
	for i := range p.hosts {
		if e, ok := tried[i]; ok {
			errs = append(errs, e)
			classes[runtime.ClassOf(e)]++
		}
	}
	all := len(tried) == len(p.hosts)
	images := 0
	for _, e := range tried {
		if imageFailed(e) {
			images++
		}
	}
	switch {
	case all && images == len(tried):
		// The image alone: the node fails, the group's other images and
		// the hosts stay in use. A pull that ran out of time may work
		// later: Transient.
		class := runtime.ClassConfig
		if classes[runtime.ClassTransient] > 0 {
			class = runtime.ClassTransient
		}
		return runtime.Errorf(class, "node %s: image %q is on no podman host (%s): %w",
			n.Name, n.Template.Image, strings.Join(p.hostNames(tried), ", "), errors.Join(errs...))
	case all && classes[runtime.ClassConfig] == len(tried):
		return runtime.Errorf(runtime.ClassConfig, "node %s: no podman host can start it: %w", n.Name, errors.Join(errs...))
	case all && classes[runtime.ClassTransient] == len(tried):
		return runtime.Errorf(runtime.ClassTransient, "node %s: no podman host answers: %w", n.Name, errors.Join(errs...))
	}
	return runtime.Errorf(runtime.ClassCapacity, "node %s: no usable podman host left: %w", n.Name, errors.Join(append(errs, last)...))
}

// removeAll stops and removes every container in cs but the one with id
// keep, then forgets them in the inventory.
func (p *Podman) removeAll(ctx context.Context, node string, cs []ctr, keep string) error {
	var errs []error
	for _, c := range cs {
		if c.id == keep {
			continue
		}
		h := p.hosts[c.host]
		if err := p.remove(ctx, h, c.id, c.state == runtime.StateRunning); err != nil {
			errs = append(errs, runtime.Errorf(classify(err), "node %s on host %s: remove %.12s: %w", node, h.Name, c.id, err))
			continue
		}
		p.unobserve(c.host, node)
	}
	return errors.Join(errs...)
}

// create creates, starts and inspects node n's container on h, with the
// GPUs gpus. On failure it removes what it created. A failure of h (it
// does not answer, lacks the image, network or a device) is host-scoped.
func (p *Podman) create(ctx context.Context, h *host, n runtime.NodeSpec, gpus []string) (runtime.Instance, error) {
	fail := func(step string, err error) error {
		e := &runtime.Error{Class: classify(err), Err: fmt.Errorf("node %s on host %s: %s: %w", n.Name, h.Name, step, err)}
		if hostScoped(err) {
			e.Host = h.Name
		}
		return e
	}
	t := n.Template
	// step runs one API call bounded by the per-call timeout.
	step := func(f func(cctx context.Context) error) error { return p.do(ctx, h, p.timeout, f) }

	if err := p.ensureImage(ctx, h, n.Name, t.Image); err != nil {
		return runtime.Instance{}, err
	}
	if t.Network != "" && !h.hasNetwork(t.Network) {
		var ok bool
		if err := step(func(c context.Context) (err error) { ok, err = network.Exists(c, t.Network, nil); return }); err != nil {
			return runtime.Instance{}, fail("check network", err)
		}
		if !ok {
			return runtime.Instance{}, runtime.HostErrorf(runtime.ClassConfig, h.Name, "node %s on host %s: check network: network %q not found", n.Name, h.Name, t.Network)
		}
		h.sawNetwork(t.Network)
	}

	var r entities.ContainerCreateResponse
	err := step(func(c context.Context) (err error) {
		r, err = containers.CreateWithSpec(c, buildSpec(p.cluster, p.contract, n, gpus), nil)
		return
	})
	if err != nil {
		if _, api := apiError(err); !api {
			// The server may have created it before the call failed.
			p.cleanupByLabel(ctx, h, n.Name)
		}
		return runtime.Instance{}, fail("create", err)
	}
	for _, w := range r.Warnings {
		p.log.Warn("podman create warning", "node", n.Name, "host", h.Name, "warning", w)
	}
	undo := func() { p.cleanup(ctx, h, n.Name, r.ID) }

	if err := step(func(c context.Context) error { return containers.Start(c, r.ID, nil) }); err != nil {
		lg := p.keepTail(ctx, h, n.Name, r.ID)
		undo()
		return runtime.Instance{}, runtime.WithLog(fail("start", err), lg)
	}
	var d *define.InspectContainerData
	if err := step(func(c context.Context) (err error) { d, err = containers.Inspect(c, r.ID, nil); return }); err != nil {
		undo()
		return runtime.Instance{}, fail("inspect", err)
	}
	if !d.State.Running {
		lg := p.keepTail(ctx, h, n.Name, r.ID)
		undo()
		msg := fmt.Sprintf("container exited at once: status %s, exit code %d", d.State.Status, d.State.ExitCode)
		if d.State.OOMKilled {
			msg += ", killed by OOM"
		}
		if d.State.Error != "" {
			msg += ", error: " + d.State.Error
		}
		return runtime.Instance{}, runtime.WithLog(runtime.Errorf(runtime.ClassConfig, "node %s on host %s: start: %s", n.Name, h.Name, msg), lg)
	}
	addr := addrOf(d, t.Network)
	if addr == "" {
		lg := p.keepTail(ctx, h, n.Name, r.ID)
		undo()
		return runtime.Instance{}, runtime.WithLog(runtime.Errorf(runtime.ClassConfig, "node %s on host %s: inspect: container has no IP address on network %q", n.Name, h.Name, t.Network), lg)
	}
	return runtime.Instance{
		Name: n.Name, Group: n.Group, Host: h.Name, ID: r.ID, Addr: addr, Image: n.Image,
		State: runtime.StateRunning, Created: d.Created,
	}, nil
}

// cleanupCtx is a context for removing what a failed call left: it outlives
// the caller's cancellation (a leak is worse than a late return) but is
// bounded.
func (p *Podman) cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), p.timeout+p.stopTimeout)
}

func (p *Podman) cleanup(ctx context.Context, h *host, node, id string) {
	cctx, cancel := p.cleanupCtx(ctx)
	defer cancel()
	if err := p.remove(cctx, h, id, false); err != nil {
		p.log.Error("could not remove failed node container", "node", node, "host", h.Name, "id", id, "error", err)
		return
	}
	p.log.Info("removed failed node container", "node", node, "host", h.Name, "id", id)
}

// cleanupByLabel removes node's containers on h when a create call failed
// without an answer (it may have been created anyway).
func (p *Podman) cleanupByLabel(ctx context.Context, h *host, node string) {
	cctx, cancel := p.cleanupCtx(ctx)
	defer cancel()
	cs, err := p.listHost(cctx, h, node)
	if err != nil {
		p.log.Error("could not check for a half-created node container", "node", node, "host", h.Name, "error", err)
		return
	}
	for _, c := range cs {
		p.cleanup(cctx, h, node, c.id)
	}
}

// remove stops (if stop) and force-removes container id on h. A container
// that is gone is success.
func (p *Podman) remove(ctx context.Context, h *host, id string, stop bool) error {
	if stop {
		secs := uint((p.stopTimeout + time.Second - 1) / time.Second)
		err := p.do(ctx, h, p.timeout+p.stopTimeout, func(cctx context.Context) error {
			return containers.Stop(cctx, id, new(containers.StopOptions).WithTimeout(secs).WithIgnore(true))
		})
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("stop: %w", err)
		}
	}
	var err error
	gone := false
	xerr := p.do(ctx, h, p.timeout+p.stopTimeout, func(cctx context.Context) error {
		var rs []*reports.RmReport
		rs, err = containers.Remove(cctx, id, new(containers.RemoveOptions).WithForce(true).WithIgnore(true))
		if err == nil {
			for _, r := range rs {
				if r != nil && r.Err != nil {
					err = r.Err
					break
				}
			}
		}
		if err == nil || isNotFound(err) {
			gone = true
			return nil
		}
		// Removal can report a harmless warning ("Peer netns reference is
		// invalid") after the container is gone: what counts is whether it is.
		exists, xerr := containers.Exists(cctx, id, nil)
		if xerr == nil && !exists {
			p.log.Debug("container removed despite an error", "host", h.Name, "id", id, "error", err)
			gone = true
			return nil
		}
		return err
	})
	if gone {
		return nil
	}
	if err == nil {
		err = xerr
	}
	return fmt.Errorf("remove: %w", err)
}

// terminateOne removes every container of node on every host.
func (p *Podman) terminateOne(ctx context.Context, node string) error {
	if node == "" {
		return runtime.Errorf(runtime.ClassConfig, "terminate: empty node name")
	}
	unlock, err := p.lockNode(ctx, node)
	if err != nil {
		return runtime.Errorf(runtime.ClassTransient, "node %s: wait for other operation on node: %w", node, err)
	}
	defer unlock()
	found, missed, err := p.find(ctx, node)
	if err != nil {
		return runtime.Errorf(classify(err), "node %s: find: %w", node, err)
	}
	if err := p.removeAll(ctx, node, found, ""); err != nil {
		return err
	}
	for _, c := range found {
		p.log.Info("node terminated", "node", node, "host", c.hostN, "id", c.id)
	}
	switch {
	case len(missed) == 0:
		p.forget(node)
		if len(found) == 0 {
			p.log.Debug("node has no container; nothing to terminate", "node", node)
		}
	case len(found) > 0:
		// Removed where it ran; a node has one container, so the hosts
		// that did not answer are not waited for.
		p.log.Warn("node terminated; podman hosts not answering were not checked for another container of it",
			"node", node, "hosts", p.hostNames(missed))
	default:
		names := p.hostNames(missed)
		return runtime.HostErrorf(runtime.ClassTransient, names[0],
			"node %s: no container on the hosts that answer, and hosts %s do not answer (it may run there): %w",
			node, strings.Join(names, ", "), errors.Join(slices.Collect(maps.Values(missed))...))
	}
	return nil
}

// forEach calls fn for each i in [0, n), at most maxParallel at once
// (runtime.ForEach). Blocks.
func forEach(n int, fn func(i int)) { runtime.ForEach(n, maxParallel, fn) }
