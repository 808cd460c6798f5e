package podman

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containers/podman/v4/pkg/bindings"
	"github.com/containers/podman/v4/pkg/domain/entities"
	"github.com/containers/podman/v4/pkg/errorhandling"
	"github.com/containers/podman/v4/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Unit tests: no Podman service needed.

func TestNewValidates(t *testing.T) {
	ok := Host{Name: "h", URI: "unix:///run/podman/podman.sock"}
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"valid", Options{Cluster: "c", Hosts: []Host{ok}}, true},
		{"tcp and ssh", Options{Cluster: "c", Hosts: []Host{{Name: "a", URI: "tcp://127.0.0.1:8080"}, {Name: "b", URI: "ssh://u@h/run/podman/podman.sock"}}}, true},
		{"no cluster", Options{Hosts: []Host{ok}}, false},
		{"no hosts", Options{Cluster: "c"}, false},
		{"unnamed host", Options{Cluster: "c", Hosts: []Host{{URI: ok.URI}}}, false},
		{"duplicate host", Options{Cluster: "c", Hosts: []Host{ok, ok}}, false},
		{"empty uri", Options{Cluster: "c", Hosts: []Host{{Name: "h"}}}, false},
		{"bad scheme", Options{Cluster: "c", Hosts: []Host{{Name: "h", URI: "http://x"}}}, false},
		{"negative capacity", Options{Cluster: "c", Hosts: []Host{{Name: "h", URI: ok.URI, MaxNodes: -1}}}, false},
		{"no conf server", Options{Cluster: "c", Hosts: []Host{ok}, ConfServer: "-"}, false},
		{"no munge key", Options{Cluster: "c", Hosts: []Host{ok}, MungeKey: "-"}, false},
		{"relative munge key", Options{Cluster: "c", Hosts: []Host{ok}, MungeKey: "munge.key"}, false},
		{"pull missing", Options{Cluster: "c", Hosts: []Host{ok}, PullPolicy: PullMissing}, true},
		{"pull always", Options{Cluster: "c", Hosts: []Host{ok}, PullPolicy: "always"}, false},
		{"host pull missing", Options{Cluster: "c", Hosts: []Host{{Name: "h", URI: ok.URI, PullPolicy: PullMissing}}}, true},
		{"host pull bad", Options{Cluster: "c", Hosts: []Host{{Name: "h", URI: ok.URI, PullPolicy: "IfNotPresent"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The node contract is given unless the case clears it ("-").
			o := tt.o
			o.ConfServer = orDefault(o.ConfServer, "head")
			o.MungeKey = orDefault(o.MungeKey, "/etc/munge/munge.key")
			p, err := New(context.Background(), o)
			if (err == nil) != tt.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tt.ok)
			}
			if err == nil && (p.timeout != DefaultTimeout || p.stopTimeout != DefaultStopTimeout || p.pullTimeout != DefaultPullTimeout) {
				t.Fatalf("defaults not applied: %v %v %v", p.timeout, p.stopTimeout, p.pullTimeout)
			}
			if err == nil && tt.o.PullPolicy == "" && p.pullPolicy(p.hosts[0]) != orDefault(tt.o.Hosts[0].PullPolicy, PullNever) {
				t.Fatalf("pull policy of host %s: %q", p.hosts[0].Name, p.pullPolicy(p.hosts[0]))
			}
		})
	}
}

// orDefault returns def for "", "" for "-" and v otherwise.
func orDefault(v, def string) string {
	switch v {
	case "":
		return def
	case "-":
		return ""
	}
	return v
}

func TestBuildSpec(t *testing.T) {
	n := runtime.NodeSpec{Name: "cloud3", Group: "gpu", Template: runtime.Template{
		Image:    "localhost/node:1",
		Command:  []string{"/usr/local/bin/node-init"},
		CPUs:     1.5,
		MemoryMB: 512,
		GPUs:     1,
		Mounts: []runtime.Mount{
			{Source: "/etc/hosts", Destination: "/etc/hosts", ReadOnly: true},
			{Source: "/scratch", Destination: "/scratch"},
		},
		Env:     map[string]string{"A": "1"},
		Network: "slurm-net",
	}}
	s := buildSpec("prod", contract{confServer: "head:6817", mungeKey: "/srv/munge.key"}, n, []string{"nvidia.com/gpu=3"})
	if s.Name != "prod-cloud3" || s.Hostname != "cloud3" || s.Image != "localhost/node:1" {
		t.Fatalf("name/hostname/image: %q %q %q", s.Name, s.Hostname, s.Image)
	}
	wantLabels := map[string]string{
		runtime.LabelCluster: "prod", runtime.LabelGroup: "gpu", runtime.LabelNode: "cloud3",
		labelCPUs: "1.5", labelMemoryMB: "512", labelGPUs: "nvidia.com/gpu=3",
	}
	if !reflect.DeepEqual(s.Labels, wantLabels) {
		t.Fatalf("labels = %v", s.Labels)
	}
	if !reflect.DeepEqual(s.Env, map[string]string{"A": "1", runtime.EnvNode: "cloud3", runtime.EnvConfServer: "head:6817"}) {
		t.Fatalf("env = %v", s.Env)
	}
	if !reflect.DeepEqual(s.Command, n.Template.Command) {
		t.Fatalf("command = %v", s.Command)
	}
	if s.NetNS.NSMode != specgen.Bridge || len(s.Networks) != 1 {
		t.Fatalf("network: %v %v", s.NetNS, s.Networks)
	}
	if _, ok := s.Networks["slurm-net"]; !ok {
		t.Fatalf("networks = %v", s.Networks)
	}
	cpu := s.ResourceLimits.CPU
	if *cpu.Period != 100000 || *cpu.Quota != 150000 {
		t.Fatalf("cpu quota/period = %d/%d", *cpu.Quota, *cpu.Period)
	}
	if *s.ResourceLimits.Memory.Limit != 512<<20 {
		t.Fatalf("memory = %d", *s.ResourceLimits.Memory.Limit)
	}
	wantMounts := []spec.Mount{
		{Type: "bind", Source: "/etc/hosts", Destination: "/etc/hosts", Options: []string{"rbind", "ro"}},
		{Type: "bind", Source: "/scratch", Destination: "/scratch", Options: []string{"rbind"}},
		{Type: "bind", Source: "/srv/munge.key", Destination: "/run/slurm-elastic/munge.key", Options: []string{"rbind", "ro"}},
	}
	if !reflect.DeepEqual(s.Mounts, wantMounts) {
		t.Fatalf("mounts = %+v", s.Mounts)
	}
	if len(s.Devices) != 1 || s.Devices[0].Path != "nvidia.com/gpu=3" {
		t.Fatalf("devices = %+v", s.Devices)
	}
	if s.Privileged || s.RestartPolicy != "" {
		t.Fatalf("privileged %v, restart policy %q", s.Privileged, s.RestartPolicy)
	}

	// Minimal template: image's command, no limits, default network.
	m := buildSpec("c", contract{confServer: "10.0.0.2", mungeKey: "/etc/munge/munge.key"}, runtime.NodeSpec{Name: "n1", Template: runtime.Template{Image: "i", Privileged: true}}, nil)
	if m.Command != nil || m.ResourceLimits != nil || m.Networks != nil || !m.Privileged {
		t.Fatalf("minimal spec: command %v, limits %v, networks %v, privileged %v", m.Command, m.ResourceLimits, m.Networks, m.Privileged)
	}
	// The contract does not depend on the template.
	if !reflect.DeepEqual(m.Env, map[string]string{runtime.EnvNode: "n1", runtime.EnvConfServer: "10.0.0.2"}) || m.Hostname != "n1" ||
		!reflect.DeepEqual(m.Mounts, []spec.Mount{{Type: "bind", Source: "/etc/munge/munge.key", Destination: runtime.MungeKeyPath, Options: []string{"rbind", "ro"}}}) {
		t.Fatalf("minimal spec: env %v, hostname %q, mounts %+v", m.Env, m.Hostname, m.Mounts)
	}
	if u := usageFromLabels(m.Labels); !reflect.DeepEqual(u, usage{}) {
		t.Fatalf("usage of unlimited spec = %+v", u)
	}
	if u := usageFromLabels(s.Labels); !reflect.DeepEqual(u, usage{cpus: 1.5, memMB: 512, gpus: []string{"nvidia.com/gpu=3"}}) {
		t.Fatalf("usage from labels = %+v", u)
	}

	// A group image: its name is labelled and given to the node (its
	// Helper prints it); the default image (Image "") gets neither.
	n.Image, n.Template.Image = "rocky9", "localhost/rocky:9"
	im := buildSpec("prod", contract{confServer: "head"}, n, nil)
	if im.Image != "localhost/rocky:9" || im.Labels[runtime.LabelImage] != "rocky9" || im.Env[runtime.EnvImage] != "rocky9" {
		t.Fatalf("image spec: image %q, labels %v, env %v", im.Image, im.Labels, im.Env)
	}
	if _, ok := s.Labels[runtime.LabelImage]; ok {
		t.Fatalf("default image labelled: %v", s.Labels)
	}
	l := entities.ListContainer{ID: "x", Labels: im.Labels, State: "running"}
	if got := fromList(&host{Host: Host{Name: "h"}}, l).instance(); got.Image != "rocky9" || got.Name != "cloud3" {
		t.Fatalf("listed instance %+v", got)
	}
}

func TestCheckSpec(t *testing.T) {
	good := runtime.Template{Image: "i"}
	tests := []struct {
		name string
		n    runtime.NodeSpec
		ok   bool
	}{
		{"ok", runtime.NodeSpec{Name: "cloud1", Template: good}, true},
		{"no name", runtime.NodeSpec{Template: good}, false},
		{"bad name", runtime.NodeSpec{Name: "a/b", Template: good}, false},
		{"no image", runtime.NodeSpec{Name: "a"}, false},
		{"negative cpus", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", CPUs: -1}}, false},
		{"negative memory", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", MemoryMB: -1}}, false},
		{"mount without source", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", Mounts: []runtime.Mount{{Destination: "/x"}}}}, false},
		{"negative gpus", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", GPUs: -1}}, false},
		{"other env", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", Env: map[string]string{"SLURM_CONF": "/x"}}}, true},
		{"env sets node", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", Env: map[string]string{runtime.EnvNode: "b"}}}, false},
		{"env sets conf server", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", Env: map[string]string{runtime.EnvConfServer: "h"}}}, false},
		{"mount on munge key", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", Mounts: []runtime.Mount{{Source: "/k", Destination: "/run/slurm-elastic/./munge.key"}}}}, false},
		{"image name", runtime.NodeSpec{Name: "a", Image: "rocky9", Template: good}, true},
		{"image name not a feature", runtime.NodeSpec{Name: "a", Image: "rocky-9", Template: good}, false},
		{"env sets image", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", Env: map[string]string{runtime.EnvImage: "x"}}}, false},
		{"mount beside munge key", runtime.NodeSpec{Name: "a", Template: runtime.Template{Image: "i", Mounts: []runtime.Mount{{Source: "/k", Destination: "/run/slurm-elastic/other"}}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkSpec("c", tt.n); (err == nil) != tt.ok {
				t.Fatalf("checkSpec = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestPick(t *testing.T) {
	tests := []struct {
		name  string
		rooms []room
		need  usage
		want  int
	}{
		{"unlimited: fewest nodes", []room{{nodes: 3}, {nodes: 1}, {nodes: 2}}, usage{}, 1},
		{"unlimited tie: config order", []room{{nodes: 1}, {nodes: 1}}, usage{}, 0},
		{"max nodes full", []room{{maxNodes: 2, nodes: 2}, {maxNodes: 4, nodes: 3}}, usage{}, 1},
		{"all full", []room{{maxNodes: 1, nodes: 1}, {maxNodes: 2, nodes: 2}}, usage{}, -1},
		{"most free fraction", []room{{maxNodes: 10, nodes: 5}, {maxNodes: 4, nodes: 1}}, usage{}, 1},
		{"cpus do not fit", []room{{cpus: 4, usedCPU: 3.5}, {cpus: 2, usedCPU: 0}}, usage{cpus: 1}, 1},
		{"cpus exactly fit", []room{{cpus: 4, usedCPU: 3}}, usage{cpus: 1}, 0},
		{"memory does not fit", []room{{memMB: 1024, usedMem: 600}, {memMB: 8192, usedMem: 8000}}, usage{memMB: 500}, -1},
		{"tightest dimension counts", []room{{maxNodes: 100, cpus: 4, usedCPU: 3}, {maxNodes: 4, nodes: 1, cpus: 64}}, usage{cpus: 1}, 1},
		{"no hosts", nil, usage{}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pick(tt.rooms, tt.need, 0); got != tt.want {
				t.Fatalf("pick = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	api := func(code int, cause string) error {
		return &errorhandling.ErrorModel{ResponseCode: code, Because: cause, Message: "msg: " + cause}
	}
	tests := []struct {
		name string
		err  error
		want runtime.Class
	}{
		{"nil", nil, ""},
		{"classified", runtime.Errorf(runtime.ClassCapacity, "x"), runtime.ClassCapacity},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), runtime.ClassTransient},
		{"canceled", context.Canceled, runtime.ClassTransient},
		{"connect", bindings.ConnectError{Err: &net.OpError{Op: "dial", Err: os.ErrNotExist}}, runtime.ClassTransient},
		{"image missing", api(500, "image not known"), runtime.ClassConfig},
		{"network missing", api(500, "network not found"), runtime.ClassConfig},
		{"cdi", api(500, "unresolvable CDI devices example.com/gpu=0"), runtime.ClassConfig},
		{"device file", api(500, "no such file or directory"), runtime.ClassConfig},
		{"command not found", api(500, "OCI runtime attempted to invoke a command that was not found"), runtime.ClassConfig},
		{"bad request", api(400, "bad"), runtime.ClassConfig},
		{"not found", api(404, "no such container"), runtime.ClassConfig},
		{"conflict", api(409, "name in use"), runtime.ClassTransient},
		{"server error", api(500, "database is locked"), runtime.ClassTransient},
		{"503", api(503, ""), runtime.ClassTransient},
		{"wrapped api", fmt.Errorf("create: %w", api(500, "image not known")), runtime.ClassConfig},
		{"other", errors.New("EOF"), runtime.ClassTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); got != tt.want {
				t.Fatalf("classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestStateOf(t *testing.T) {
	for s, want := range map[string]runtime.State{
		"running": runtime.StateRunning, "created": runtime.StateCreated, "configured": runtime.StateCreated,
		"exited": runtime.StateExited, "stopped": runtime.StateExited, "paused": runtime.StateUnknown, "": runtime.StateUnknown,
	} {
		if got := stateOf(s); got != want {
			t.Errorf("stateOf(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestReserveConcurrent: concurrent reservations never overcommit a host,
// and released ones free their room. The inventory is preset, so no service
// is called.
func TestReserveConcurrent(t *testing.T) {
	p, err := New(context.Background(), Options{Cluster: "c", ConfServer: "head", MungeKey: "/etc/munge/munge.key", Hosts: []Host{
		{Name: "a", URI: "unix:///nonexistent/a.sock", MaxNodes: 3},
		{Name: "b", URI: "unix:///nonexistent/b.sock", MaxNodes: 2, CPUs: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.loadedAt {
		p.setInventory(i, nil)
	}
	p.setInventory(0, []ctr{{host: 0, node: "old", state: runtime.StateRunning}, {host: 0, node: "dead", state: runtime.StateExited}})
	const n = 20
	got := make([]int, n)
	errs := make([]error, n)
	forEach(n, func(i int) {
		node := runtime.NodeSpec{Name: fmt.Sprintf("n%d", i), Template: runtime.Template{Image: "i", CPUs: 1}}
		got[i], _, errs[i] = p.reserve(context.Background(), node, time.Time{}, nil)
	})
	per := map[int]int{}
	for i := range got {
		if errs[i] != nil {
			if runtime.ClassOf(errs[i]) != runtime.ClassCapacity {
				t.Fatalf("reserve: %v", errs[i])
			}
			continue
		}
		per[got[i]]++
	}
	// a: 3 slots, one taken by "old" ("dead" has exited); b: 2 slots.
	if per[0] != 2 || per[1] != 2 {
		t.Fatalf("placed per host = %v, want 2 on a, 2 on b", per)
	}
	// Releasing one frees a slot; committing keeps it taken.
	var placed []string
	for i := range got {
		if errs[i] == nil {
			placed = append(placed, fmt.Sprintf("n%d", i))
		}
	}
	p.commit(placed[0])
	p.release(placed[1])
	if _, _, err := p.reserve(context.Background(), runtime.NodeSpec{Name: "late", Template: runtime.Template{Image: "i"}}, time.Time{}, nil); err != nil {
		t.Fatalf("reserve after release: %v", err)
	}
	if _, _, err := p.reserve(context.Background(), runtime.NodeSpec{Name: "later", Template: runtime.Template{Image: "i"}}, time.Time{}, nil); runtime.ClassOf(err) != runtime.ClassCapacity {
		t.Fatalf("reserve when full: %v, want Capacity", err)
	}
}

// TestReserveGPUs: nodes of a GPU group get distinct devices of their
// host; devices held by containers another process started (recovered from
// their labels) are not given again; a host without enough free devices is
// full (Capacity); a released reservation frees its devices.
func TestReserveGPUs(t *testing.T) {
	p, err := New(context.Background(), Options{Cluster: "c", ConfServer: "head", MungeKey: "/etc/munge/munge.key", Hosts: []Host{
		{Name: "a", URI: "unix:///nonexistent/a.sock", GPUs: []string{"nvidia.com/gpu=0", "nvidia.com/gpu=1", "nvidia.com/gpu=2", "nvidia.com/gpu=3"}},
		{Name: "b", URI: "unix:///nonexistent/b.sock"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Host a as listed: a container started by another process holds gpu=1.
	held := usageFromLabels(map[string]string{labelGPUs: "nvidia.com/gpu=1"})
	p.setInventory(0, []ctr{{host: 0, node: "old", state: runtime.StateRunning, u: held}})
	p.setInventory(1, nil)
	gpuNode := func(name string, n int) runtime.NodeSpec {
		return runtime.NodeSpec{Name: name, Template: runtime.Template{Image: "i", GPUs: n}}
	}
	ctx := context.Background()
	h1, g1, err := p.reserve(ctx, gpuNode("g1", 1), time.Time{}, nil)
	if err != nil || h1 != 0 {
		t.Fatalf("g1: host %d, err %v", h1, err)
	}
	h2, g2, err := p.reserve(ctx, gpuNode("g2", 2), time.Time{}, nil)
	if err != nil || h2 != 0 {
		t.Fatalf("g2: host %d, err %v", h2, err)
	}
	got := append(slices.Clone(g1), g2...)
	slices.Sort(got)
	if want := []string{"nvidia.com/gpu=0", "nvidia.com/gpu=2", "nvidia.com/gpu=3"}; !slices.Equal(got, want) {
		t.Fatalf("gpus given %v (g1 %v, g2 %v), want %v: distinct, never the held gpu=1", got, g1, g2, want)
	}
	// All four are taken now: a GPU node does not fit anywhere, a CPU node does.
	if _, _, err := p.reserve(ctx, gpuNode("g3", 1), time.Time{}, nil); runtime.ClassOf(err) != runtime.ClassCapacity || !strings.Contains(err.Error(), "gpus 4/4") {
		t.Fatalf("g3: %v, want Capacity naming gpus 4/4", err)
	}
	if h, g, err := p.reserve(ctx, gpuNode("cpu1", 0), time.Time{}, nil); err != nil || h != 1 || len(g) != 0 {
		t.Fatalf("cpu node: host %d, gpus %v, err %v", h, g, err)
	}
	p.release("g2")
	if _, g, err := p.reserve(ctx, gpuNode("g3", 2), time.Time{}, nil); err != nil || !reflect.DeepEqual(g, g2) {
		t.Fatalf("after release: gpus %v, err %v; want %v", g, err, g2)
	}
}

// TestPlaceSkipsCoolingHost: a host cooling down after a host-scoped
// failure is not placed on while it cools; a host failed in this launch
// is not tried again.
func TestPlaceSkipsCoolingHost(t *testing.T) {
	p, err := New(context.Background(), Options{Cluster: "c", ConfServer: "head", MungeKey: "/etc/munge/munge.key", Hosts: []Host{
		{Name: "a", URI: "unix:///nonexistent/a.sock"}, {Name: "b", URI: "unix:///nonexistent/b.sock"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.setInventory(0, nil)
	p.setInventory(1, []ctr{{host: 1, node: "x", state: runtime.StateRunning}}) // a is preferred: emptier
	n := runtime.NodeSpec{Name: "n", Template: runtime.Template{Image: "i"}}
	if h, _, err := p.reserve(context.Background(), n, time.Time{}, nil); err != nil || h != 0 {
		t.Fatalf("before cooldown: host %d, err %v", h, err)
	}
	p.release("n")
	p.coolDown(0, runtime.HostErrorf(runtime.ClassConfig, "a", "image not found"))
	if h, _, err := p.reserve(context.Background(), n, time.Time{}, nil); err != nil || h != 1 {
		t.Fatalf("a cooling: host %d, err %v; want b", h, err)
	}
	p.release("n")
	_, _, err = p.reserve(context.Background(), n, time.Time{}, map[int]error{1: errors.New("b failed")})
	if runtime.ClassOf(err) != runtime.ClassCapacity || !strings.Contains(err.Error(), "cooling down until") || !strings.Contains(err.Error(), "b failed") {
		t.Fatalf("both out: %v", err)
	}
}

// TestPlaceFailed: the scope and class of a launch that failed on hosts.
func TestPlaceFailed(t *testing.T) {
	p, err := New(context.Background(), Options{Cluster: "c", ConfServer: "head", MungeKey: "/etc/munge/munge.key", Hosts: []Host{
		{Name: "a", URI: "unix:///nonexistent/a.sock"}, {Name: "b", URI: "unix:///nonexistent/b.sock"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := runtime.NodeSpec{Name: "n"}
	cfgA := runtime.HostErrorf(runtime.ClassConfig, "a", "image not found on a")
	cfgB := runtime.HostErrorf(runtime.ClassConfig, "b", "image not found on b")
	downB := runtime.HostErrorf(runtime.ClassTransient, "b", "connect: refused")
	last := runtime.Errorf(runtime.ClassCapacity, "no room")
	tests := []struct {
		name  string
		tried map[int]error
		class runtime.Class
	}{
		{"image missing everywhere: the template's", map[int]error{0: cfgA, 1: cfgB}, runtime.ClassConfig},
		{"image missing on one, other full: retry later", map[int]error{0: cfgA}, runtime.ClassCapacity},
		{"one missing image, one down", map[int]error{0: cfgA, 1: downB}, runtime.ClassCapacity},
		{"none answers", map[int]error{0: runtime.HostErrorf(runtime.ClassTransient, "a", "refused"), 1: downB}, runtime.ClassTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.placeFailed(n, tt.tried, last)
			if runtime.ClassOf(err) != tt.class || runtime.HostOf(err) != "" {
				t.Fatalf("class %q host %q (%v), want %q, not host-scoped", runtime.ClassOf(err), runtime.HostOf(err), err, tt.class)
			}
		})
	}
	// The node's image on no host: Config naming the image and the hosts.
	n.Template.Image = "site/node-x:1"
	imgA := runtime.HostErrorf(runtime.ClassConfig, "a", "image %q %w on a", n.Template.Image, errImageNotFound)
	imgB := runtime.HostErrorf(runtime.ClassConfig, "b", "image %q %w on b", n.Template.Image, errImageNotFound)
	err = p.placeFailed(n, map[int]error{0: imgA, 1: imgB}, last)
	if runtime.ClassOf(err) != runtime.ClassConfig || runtime.HostOf(err) != "" ||
		!strings.Contains(err.Error(), `image "site/node-x:1" is on no podman host (a, b)`) {
		t.Fatalf("image on no host: class %q, %v", runtime.ClassOf(err), err)
	}
}

// TestImageSkips: a host found without an image is skipped for that image
// only (placement goes to the other host; the host is not cooled down,
// other images still go there), until the recheck time has passed; the
// pull policy resolves per host.
func TestImageSkips(t *testing.T) {
	p, err := New(context.Background(), Options{Cluster: "c", ConfServer: "head", MungeKey: "/etc/munge/munge.key",
		PullPolicy: PullMissing, Hosts: []Host{
			{Name: "a", URI: "unix:///nonexistent/a.sock", PullPolicy: PullNever}, {Name: "b", URI: "unix:///nonexistent/b.sock"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if p.pullPolicy(p.hosts[0]) != PullNever || p.pullPolicy(p.hosts[1]) != PullMissing {
		t.Fatalf("pull policies %q %q, want never (the host's) and missing (the default)", p.pullPolicy(p.hosts[0]), p.pullPolicy(p.hosts[1]))
	}
	p.setInventory(0, nil)
	p.setInventory(1, []ctr{{host: 1, node: "x", state: runtime.StateRunning}}) // a is preferred: emptier
	miss := runtime.HostErrorf(runtime.ClassConfig, "a", "image %q %w", "img:1", errImageNotFound)
	p.hosts[0].lacksImage("img:1", time.Now().Add(time.Hour), miss)

	n := runtime.NodeSpec{Name: "n", Template: runtime.Template{Image: "img:1"}}
	skip := p.imageSkips(n.Template.Image)
	if len(skip) != 1 || skip[0] != miss {
		t.Fatalf("skips for img:1: %v, want host a's error", skip)
	}
	if h, _, err := p.reserve(context.Background(), n, time.Time{}, skip); err != nil || h != 1 {
		t.Fatalf("img:1: host %d, err %v; want b", h, err)
	}
	p.release("n")
	other := runtime.NodeSpec{Name: "m", Template: runtime.Template{Image: "other:1"}}
	if h, _, err := p.reserve(context.Background(), other, time.Time{}, p.imageSkips(other.Template.Image)); err != nil || h != 0 {
		t.Fatalf("other:1: host %d, err %v; want a (it lacks img:1 only)", h, err)
	}
	p.release("m")
	if !p.cool[0].until.IsZero() {
		t.Fatalf("host a cooled down: %+v", p.cool[0])
	}
	p.hosts[0].lacksImage("img:1", time.Now().Add(-time.Second), miss) // the recheck time passed
	if skip := p.imageSkips(n.Template.Image); len(skip) != 0 {
		t.Fatalf("skips after the recheck time: %v", skip)
	}
	if !imageFailed(miss) || imageFailed(runtime.HostErrorf(runtime.ClassConfig, "a", "network not found")) {
		t.Fatal("imageFailed does not tell image failures from others")
	}
}

func TestHostScoped(t *testing.T) {
	api := func(code int, cause string) error {
		return &errorhandling.ErrorModel{ResponseCode: code, Because: cause, Message: "msg: " + cause}
	}
	tests := []struct {
		err  error
		want bool
	}{
		{api(500, "image not known"), true},
		{api(500, "network not found"), true},
		{api(500, "unresolvable CDI devices example.com/gpu=0"), true},
		{api(500, "no such file or directory"), true},
		{api(500, "OCI runtime attempted to invoke a command that was not found"), false},
		{api(400, "bad"), false},
		{api(500, "database is locked"), false},
		{bindings.ConnectError{Err: errors.New("dial unix: connection refused")}, true},
		{&connErr{errors.New("ssh: handshake failed")}, true},
		{fmt.Errorf("list: %w", context.DeadlineExceeded), true},
		{context.Canceled, false},
		{runtime.Errorf(runtime.ClassConfig, "template"), false},
		{runtime.HostErrorf(runtime.ClassConfig, "a", "x"), true},
	}
	for _, tt := range tests {
		if got := hostScoped(tt.err); got != tt.want {
			t.Errorf("hostScoped(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
