// Package conf holds slurm-elastic's typed configuration: defaults, loading
// (YAML file + SLURM_ELASTIC_* environment + flags), validation, and the
// slurm.conf lines rendered from it.
package conf

import (
	"time"
)

// DefaultPath is where the config file lives unless --config or
// SLURM_ELASTIC_CONFIG says otherwise.
const DefaultPath = "/etc/slurm-elastic/config.yaml"

// Config is the whole configuration. One file is the single source of truth
// for the hooks, the daemons and the slurm.conf lines.
type Config struct {
	// Cluster names this cluster; it is put on every instance as the
	// ownership label. Required; [a-z0-9-], at most 40 characters.
	Cluster   string        `mapstructure:"cluster"`
	Slurm     SlurmConf     `mapstructure:"slurm"`
	Podman    PodmanConf    `mapstructure:"podman"`
	Groups    []Group       `mapstructure:"groups"`
	Log       LogConf       `mapstructure:"log"`
	StateDir  string        `mapstructure:"state_dir"` // lock files, event state; default /var/lib/slurm-elastic
	Resume    HookConf      `mapstructure:"resume"`
	Suspend   HookConf      `mapstructure:"suspend"`
	PowerSave PowerSaveConf `mapstructure:"power_save"`
	Health    HealthConf    `mapstructure:"health"`
	Daemon    DaemonConf    `mapstructure:"daemon"`
	Breaker   BreakerConf   `mapstructure:"breaker"`

	// Kubernetes is the cluster the groups with runtime kubernetes run on.
	Kubernetes KubernetesConf `mapstructure:"kubernetes"`

	// File is the path the config was loaded from ("" when none). Not a key.
	File string `mapstructure:"-"`

	// inventory is the node inventory Validate built (see Inventory). Not a key.
	inventory *Inventory
	// derived records the values ApplyDefaults derived (defaults.go). Not a key.
	derived derivedValues
}

// SlurmConf says how to reach slurmctld.
type SlurmConf struct {
	// Backend: "auto" (REST when rest_url is set and answers, else
	// scontrol), "rest" or "scontrol". Default auto.
	Backend string `mapstructure:"backend"`
	// RESTURL: http://host:port or unix:///path/to/slurmrestd.sock.
	RESTURL string `mapstructure:"rest_url"`
	// TokenFile holds the JWT (re-read when it changes). 0600/0640.
	TokenFile string `mapstructure:"token_file"`
	// AllowInsecureHTTP lets the JWT go over http:// to a host that is not
	// loopback (anyone on the path can read and replay it). Default false:
	// such a rest_url is refused when a token is used; use https://, a
	// unix:// socket or a loopback address instead.
	AllowInsecureHTTP bool `mapstructure:"allow_insecure_http"`
	// User is sent as X-SLURM-USER-NAME. Default: the user the process runs as.
	User string `mapstructure:"user"`
	// Scontrol is the scontrol binary. Default "scontrol" looked up in
	// /usr/bin:/usr/local/bin:/bin (hooks run with an almost empty PATH).
	Scontrol string `mapstructure:"scontrol"`
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration `mapstructure:"timeout"`
	// ConfServer is slurmctld as node containers reach it, host or
	// host:port (no IPv6 literal: slurmd splits at the first ':'). The
	// runtime sets runtime.EnvConfServer to it in every node container, for
	// configless slurmd (--conf-server). Required when groups are set.
	ConfServer string `mapstructure:"conf_server"`
}

// PodmanConf lists the Podman hosts node containers run on.
type PodmanConf struct {
	Hosts []PodmanHost `mapstructure:"hosts"`
	// Timeout bounds one API call. Default 30s.
	Timeout time.Duration `mapstructure:"timeout"`
	// HostCooldown is how long a host that failed a launch (did not
	// answer, or lacks the network or a device) is left out of placement;
	// the node is tried on another host meanwhile. A host without a node's
	// image is skipped for that image alone, this long. Default 5m.
	HostCooldown time.Duration `mapstructure:"host_cooldown"`
	// ImagePullPolicy says what happens when a node's image is missing on
	// a host: "never" (the default: the host is skipped for that image,
	// the node placed on a host that has it) or "missing" (it is pulled
	// there through the host's Podman API). Each host may override it.
	ImagePullPolicy string `mapstructure:"image_pull_policy"`
	// PullTimeout bounds one image pull (image_pull_policy missing).
	// Default 5m.
	PullTimeout time.Duration `mapstructure:"pull_timeout"`
	// MungeKey is the absolute path of the cluster's munge key on each
	// Podman host; the runtime bind-mounts it read-only at
	// runtime.MungeKeyPath in every node container. Default
	// DefaultMungeKey.
	MungeKey string `mapstructure:"munge_key"`
}

// PodmanHost is one Podman API service.
type PodmanHost struct {
	Name string `mapstructure:"name"`
	// URI: unix:///run/podman/podman.sock, tcp://127.0.0.1:PORT or
	// ssh://user@host/run/podman/podman.sock.
	URI string `mapstructure:"uri"`
	// Identity is the SSH private key for ssh:// URIs.
	Identity string `mapstructure:"identity"`
	// KnownHosts is the known_hosts file an ssh:// host's key is checked
	// against. Default: ~/.ssh/known_hosts of the user running slurm-elastic.
	KnownHosts string `mapstructure:"known_hosts"`
	// HostKeyChecking for ssh:// URIs: "strict" (default: the key must be
	// in KnownHosts), "accept-new" (trust on first use: an unknown host's
	// key is added; a changed one is refused) or "off" (no check at all).
	HostKeyChecking string `mapstructure:"host_key_checking"`
	// Capacity: 0 = unlimited.
	MaxNodes int     `mapstructure:"max_nodes"`
	CPUs     float64 `mapstructure:"cpus"`
	MemoryMB int64   `mapstructure:"memory_mb"`
	// GPUs are the host's GPU devices (CDI names, e.g. nvidia.com/gpu=0)
	// node containers may be given; each goes to one container at a time.
	GPUs []string `mapstructure:"gpus"`
	// ImagePullPolicy overrides podman.image_pull_policy for this host:
	// "never", "missing"; "": the podman-wide one.
	ImagePullPolicy string `mapstructure:"image_pull_policy"`
}

// Group is a node group: nodes sharing a runtime and a template.
type Group struct {
	Name string `mapstructure:"name"`
	// Nodes is a hostlist expression, e.g. cloud[1-16].
	Nodes string `mapstructure:"nodes"`
	// Runtime: "podman" (default) or "kubernetes".
	Runtime string `mapstructure:"runtime"`
	// Partition the group's nodes are rendered into by `conf slurm`.
	Partition string `mapstructure:"partition"`
	// Slurm node attributes for the NodeName line.
	CPUs         int      `mapstructure:"cpus"`
	RealMemoryMB int64    `mapstructure:"real_memory_mb"`
	Gres         string   `mapstructure:"gres"`
	Weight       int      `mapstructure:"weight"`
	Template     Template `mapstructure:"template"`
	// Images are the other images the group's nodes may boot, each by the
	// name users ask for (`sbatch -C NAME`). template.image stays the
	// default: a job without -C (or a node resumed without a job) boots
	// it, and it reports no feature. `conf slurm` renders the names as
	// the nodes' features and `conf helpers` the helpers.conf that makes
	// them changeable. Empty: one image, no node features plugin.
	Images []Image `mapstructure:"images"`
	// Kubernetes places the group's pods (runtime kubernetes only).
	Kubernetes GroupKubernetes `mapstructure:"kubernetes"`
	// Warm keeps idle nodes powered up ahead of demand (the daemon powers
	// them up; `conf slurm` keeps Slurm from suspending them). Default off.
	Warm WarmConf `mapstructure:"warm"`
}

// Image is one of a group's images (groups[].images[]).
type Image struct {
	// Name is the Slurm feature users ask for with -C: a letter or '_'
	// first, then letters, digits, '_' or '.' (what slurmd's
	// node_features/helpers plugin accepts), at most 63 characters.
	Name string `mapstructure:"name"`
	// Image is the image reference the node container is started from;
	// the rest of the group's template is the same for every image.
	Image string `mapstructure:"image"`
}

// ImageRef returns the reference of the group image called name and
// whether the group has it; name "" is the default, template.image. It
// does not block.
func (g *Group) ImageRef(name string) (string, bool) {
	if name == "" {
		return g.Template.Image, true
	}
	for _, im := range g.Images {
		if im.Name == name {
			return im.Image, true
		}
	}
	return "", false
}

// WarmConf is a group's warm pool: the daemon powers nodes up until Idle
// of them are idle (or on their way up), never above Max powered-up nodes
// in the group.
type WarmConf struct {
	// Idle nodes to keep powered up and idle; 0 = no warm pool.
	Idle int `mapstructure:"idle"`
	// Max powered-up nodes (busy or idle) beyond which no node is warmed;
	// 0 = the group's size.
	Max int `mapstructure:"max"`
	// Images: of the Idle nodes, how many to keep warm in each named
	// image of the group (groups[].images[].name -> count); the rest boot
	// the default image. Empty = all default.
	Images map[string]int `mapstructure:"images"`
}

// LogConf says where structured logs go (Slurm discards hook output).
type LogConf struct {
	// File: a path, "stderr" or "journald". Default
	// /var/log/slurm-elastic/slurm-elastic.log.
	File  string `mapstructure:"file"`
	Level string `mapstructure:"level"` // debug, info, warn, error; default info
}

// HookConf bounds one hook invocation.
type HookConf struct {
	// Timeout bounds the whole run; must be less than
	// power_save.resume_timeout / suspend_timeout. Default (0 or unset):
	// resume 3/4, suspend 5/6 of it (90s of 120s, 50s of 60s).
	Timeout time.Duration `mapstructure:"timeout"`
	// Concurrency: runtime calls in flight at once. Default 32.
	Concurrency int `mapstructure:"concurrency"`
	// Rate: runtime calls started per second; 0 = unlimited.
	Rate float64 `mapstructure:"rate"`
}

// PowerSaveConf is rendered into slurm.conf by `slurm-elastic conf slurm`.
type PowerSaveConf struct {
	BinDir         string        `mapstructure:"bin_dir"`         // default /usr/libexec/slurm-elastic
	ResumeTimeout  time.Duration `mapstructure:"resume_timeout"`  // default 120s
	SuspendTimeout time.Duration `mapstructure:"suspend_timeout"` // default 60s
	SuspendTime    time.Duration `mapstructure:"suspend_time"`    // default 300s
	ResumeRate     int           `mapstructure:"resume_rate"`     // nodes/min, default 300
	SuspendRate    int           `mapstructure:"suspend_rate"`    // nodes/min, default 60
	// Prolog renders PrologSlurmctld=bin_dir/slurm-elastic-prolog, which
	// lets a job on powered-down nodes start as soon as they register
	// instead of at slurmctld's next 30 s pass. Default true. false: the
	// line is not rendered, and a slurm-elastic-prolog still named in
	// slurm.conf returns at once.
	Prolog bool `mapstructure:"prolog"`
	// SiteProlog is a site's own PrologSlurmctld (absolute path): slurm.conf
	// holds one PrologSlurmctld, so slurm-elastic-prolog runs it (exec, same
	// environment, its exit status is the job's) after its wait. "" = none.
	SiteProlog string `mapstructure:"site_prolog"`
	// RebootProgram renders RebootProgram=: the program slurmd runs on the
	// node for `scontrol reboot` (as root, no arguments). A node container
	// cannot reboot its kernel: the node images' program
	// (DefaultRebootProgram) stops the container, and the reconciler
	// launches a fresh one from the same image. Absolute path on the
	// nodes, no arguments; "" = not rendered (a site's own line).
	RebootProgram string `mapstructure:"reboot_program"`
}

// DefaultRebootProgram is power_save.reboot_program's default: the
// program of the shipped and the test node image (packaging/node,
// tests/image/slurm-elastic-node-reboot) that stops the node container.
const DefaultRebootProgram = "/usr/local/sbin/slurm-elastic-node-reboot"
