// Package runtime defines the interface that powers Slurm cloud nodes up and
// down. Implementations live in sub-packages (podman, kubernetes,
// runtimefake) and share the loops and helpers of batch.go. Every call is
// name-oriented, idempotent and takes a context.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Labels put on every instance this project creates. Ownership is decided by
// these labels only: an implementation never lists, stops or removes an
// instance that does not carry LabelCluster with its own cluster name.
const (
	LabelCluster = "slurm-elastic.cluster"
	LabelGroup   = "slurm-elastic.group"
	LabelNode    = "slurm-elastic.node"
	// LabelImage is the name of the group image the instance was started
	// with (NodeSpec.Image); absent for the group's default image.
	LabelImage = "slurm-elastic.image"
)

// The node contract: what every node container gets from the runtime,
// whatever the group's template says. A node image (packaging/node, whose
// PID 1 is tests/image/slurm-elastic-node) relies on exactly these; a
// template must not set them itself (conf rejects it, and so does a
// runtime's own check).
//
//   - hostname: the Slurm node name
//   - EnvNode: the Slurm node name (slurmd -N)
//   - EnvConfServer: slurmctld as host[:port] (configless slurmd
//     --conf-server), from the config key slurm.conf_server
//   - MungeKeyPath: the cluster's munge key, mounted read-only (the Podman
//     runtime bind-mounts podman.munge_key of its host there)
//   - EnvImage: the name of the group image the node was started with
//     (NodeSpec.Image, a Slurm feature of the node); unset for the group's
//     default image. The node's Helper program (NodeFeatureHelper, run by
//     slurmd's node_features/helpers plugin) prints it, so the node reports
//     the feature its job asked for and nothing on the default image.
const (
	EnvNode       = "SLURM_ELASTIC_NODE"
	EnvConfServer = "SLURM_CONF_SERVER"
	EnvImage      = "SLURM_ELASTIC_IMAGE"
	MungeKeyPath  = "/run/slurm-elastic/munge.key"
	// NodeFeatureHelper is where a node image keeps the Helper program
	// that helpers.conf names (packaging/node and the test image install
	// it): with no argument it prints $SLURM_ELASTIC_IMAGE, if set.
	NodeFeatureHelper = "/usr/local/sbin/slurm-elastic-node-image"
)

// Class is the failure class of a launch or terminate. It decides the reason
// set in Slurm and what the reconciler does next.
type Class string

const (
	// ClassCapacity: stockout, quota, no host with room. Retry later.
	ClassCapacity Class = "Capacity"
	// ClassConfig: a permanent problem with the template (missing image,
	// bad device, bad network). Retrying will not help until config changes.
	ClassConfig Class = "Config"
	// ClassTransient: a passing problem (API timeout, connection refused).
	// Retrying now may help.
	ClassTransient Class = "Transient"
)

// Error carries a failure class with the underlying error, and the scope
// of the failure: Host names the one runtime host it is confined to.
//
// Scope decides who pays: a host-scoped failure (Host set: that host is
// unreachable, lacks the image, a device or the network) is a problem of
// that host, which a runtime takes out of placement for a while and works
// around on its other hosts; it never says the group's template is wrong.
// A failure with Host empty is not confined to one host: of class Config,
// it is a problem of the template itself (invalid, or failing on every
// host), and callers may treat the whole group as broken.
type Error struct {
	Class Class
	Host  string // runtime host the failure is confined to; "" = not confined to one host
	Err   error
}

// Error returns the underlying message only: the class is carried
// separately (ClassOf) and shown where it belongs, e.g. a reason's Code.
func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of class c wrapping fmt.Errorf(format, args...).
func Errorf(c Class, format string, args ...any) error {
	return &Error{Class: c, Err: fmt.Errorf(format, args...)}
}

// HostErrorf returns an *Error of class c confined to host, wrapping
// fmt.Errorf(format, args...).
func HostErrorf(c Class, host string, format string, args ...any) error {
	return &Error{Class: c, Host: host, Err: fmt.Errorf(format, args...)}
}

// HostOf returns the host the failure err is confined to: the Host of the
// first *Error in its chain, "" when that has none (or there is none).
func HostOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Host
	}
	return ""
}

// PartialError is what List returns, beside the instances it did get,
// when some of the runtime's hosts did not answer: the instances are
// complete for every other host. Whether a node has an instance on one of
// Hosts is not known, so a caller must neither take a node missing from
// the list for gone nor act on it as if it were.
type PartialError struct {
	Hosts []string // the hosts that were not listed
	Err   error    // why (one error per host, joined)
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("hosts %s not listed: %v", strings.Join(e.Hosts, ", "), e.Err)
}
func (e *PartialError) Unwrap() error { return e.Err }

// ClassOf returns the class of err: the class of the first *Error in its
// chain, ClassTransient for context deadline/cancel and any unclassified
// error, and "" for nil.
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassTransient
}

// Mount is a bind mount from the host into the instance.
type Mount struct {
	Source      string
	Destination string
	ReadOnly    bool
}

// Template describes how to start an instance for a node of a group.
type Template struct {
	Image    string
	Command  []string // empty: the image's entrypoint/cmd
	CPUs     float64  // CPU limit; 0 = none
	MemoryMB int64    // memory limit; 0 = none
	// GPUs is how many GPUs the instance gets, distinct ones: no two
	// instances on a host share one (the runtime keeps each host's device
	// inventory). 0 = none.
	GPUs     int
	Features []string
	Mounts   []Mount
	Env      map[string]string
	Network  string
	// DNS lists name servers for the instance. Empty: the runtime's
	// default (Podman copies the host's resolv.conf). ["none"]: no name
	// server at all (the image's own resolv.conf), so no lookup ever
	// leaves the node — right when nodes are addressed by IP.
	DNS []string
	// Privileged runs the instance privileged. Off unless config says so.
	Privileged bool
}

// NodeSpec is one node to launch.
type NodeSpec struct {
	Name  string // Slurm node name; also the instance hostname
	Group string
	// Image is the name of the group image Template.Image refers to (the
	// Slurm feature users ask for with -C); "" = the group's default image.
	// The runtime labels the instance with it (LabelImage) and gives it to
	// the node as EnvImage.
	Image    string
	Template Template
}

// DNSNone in Template.DNS means no name server at all.
const DNSNone = "none"

// State of an instance.
type State string

const (
	StateRunning State = "running"
	StateCreated State = "created" // created, not (yet) started
	StateExited  State = "exited"  // stopped, exited or dead
	StateUnknown State = "unknown"
)

// Instance is one owned instance as the runtime sees it.
type Instance struct {
	Name  string // Slurm node name
	Group string
	Host  string // runtime host that runs it (e.g. Podman host name)
	ID    string
	Addr  string // address Slurm should use (NodeAddr); empty if none yet
	// Image is the name of the group image it was started with
	// (NodeSpec.Image, from LabelImage); "" = the group's default image.
	Image   string
	State   State
	Created time.Time
}

// Result is the outcome for one node. Err is nil on success; then Instance
// holds the running instance (Launch) or is zero (Terminate).
type Result struct {
	Name     string
	Instance Instance
	Err      error
	// Log, on a failed Launch whose instance was created and then removed
	// again (it exited at once, had no address...), is the tail of that
	// instance's output, read before the removal; nil otherwise.
	Log *Log
}

// Log is the tail of one instance's output (stdout and stderr, in order),
// with what identifies the instance.
type Log struct {
	ID    string // instance ID
	Image string
	Host  string // runtime host that ran it
	// Tail is the last bytes of the output, at most the max asked for.
	Tail []byte
	// Truncated: the output was longer than Tail.
	Truncated bool
}

// MaxLogTail is how much of a failed instance's output is kept: the most
// bytes of a launch's Result.Log, and what callers ask Logs for.
const MaxLogTail = 64 << 10

// ErrNoInstance is wrapped by Logs when the node has no instance.
var ErrNoInstance = errors.New("no instance")

// Class returns ClassOf(r.Err).
func (r Result) Class() Class { return ClassOf(r.Err) }

// Runtime powers nodes. Implementations are safe for concurrent use.
type Runtime interface {
	// Launch makes each node's instance run and returns one Result per
	// node, in input order. A node whose instance already runs is success
	// (its Instance is returned, never a second one). A node whose instance
	// exists but is not running is replaced. On failure nothing is left
	// behind for that node. Blocks until every node is running or failed;
	// honours ctx. Idempotent.
	Launch(ctx context.Context, nodes []NodeSpec) []Result
	// Terminate stops and removes each named node's instance and returns one
	// Result per name, in input order. An absent instance is success.
	// Blocks; honours ctx. Idempotent.
	Terminate(ctx context.Context, names []string) []Result
	// List returns every instance this cluster owns, in any state. When
	// some hosts do not answer but others do, it returns the instances of
	// those that did and a *PartialError naming the others; when none
	// answers, no instances and an error. Blocks for one round of API calls.
	List(ctx context.Context) ([]Instance, error)
	// Logs returns the last max bytes (max > 0) of the output of node's
	// instance, in any state, so the evidence of a failed node can be kept
	// before it is removed. A node without an instance is an error
	// wrapping ErrNoInstance. Blocks for a few API calls; changes nothing.
	Logs(ctx context.Context, node string, max int) (Log, error)
}
