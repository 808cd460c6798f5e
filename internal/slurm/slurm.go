// Package slurm is the narrow Slurm control-plane surface slurm-elastic
// needs, with two backends: slurmrestd (REST) and scontrol (exec).
package slurm

import (
	"context"
	"errors"
	"slices"
)

// State flags and base states as Slurm spells them (upper case).
const (
	StateIdle         = "IDLE"
	StateAllocated    = "ALLOCATED"
	StateMixed        = "MIXED"
	StateDown         = "DOWN"
	StateFuture       = "FUTURE"
	StateUnknown      = "UNKNOWN"
	StateError        = "ERROR"
	FlagCloud         = "CLOUD"
	FlagDrain         = "DRAIN"
	FlagCompleting    = "COMPLETING"
	FlagNotResponding = "NOT_RESPONDING"
	FlagPoweredDown   = "POWERED_DOWN"
	FlagPoweringUp    = "POWERING_UP"
	FlagPoweringDown  = "POWERING_DOWN"
	FlagPowerDown     = "POWER_DOWN" // power down pending ("!")
	// FlagRebootRequested: `scontrol reboot` was asked; Slurm issues it
	// when the node is idle (ASAP: drained first).
	FlagRebootRequested = "REBOOT_REQUESTED"
	// FlagRebootIssued: slurmctld sent the reboot to slurmd (the node is
	// DOWN with it) and waits up to ResumeTimeout for slurmd to register
	// with a newer boot time.
	FlagRebootIssued = "REBOOT_ISSUED"
)

// Node is one Slurm node as the controller sees it.
type Node struct {
	Name     string
	State    string   // base state: IDLE, ALLOCATED, MIXED, DOWN, ...
	Flags    []string // CLOUD, DRAIN, POWERED_DOWN, POWERING_UP, ...
	Reason   string
	Addr     string   // NodeAddr
	Hostname string   // NodeHostName
	Features []string // available features
	// ActiveFeatures are the features Slurm holds active now (changeable
	// features: node_features/helpers); nil when none are.
	ActiveFeatures []string
	Gres           string
	RealMemoryMB   int64
	CPUs           int
	Partitions     []string
}

// Has reports whether the node's base state or one of its flags is s.
func (n Node) Has(s string) bool { return n.State == s || slices.Contains(n.Flags, s) }

// UpdateState is a state to set with Update.
type UpdateState string

const (
	SetNone           UpdateState = ""
	SetDown           UpdateState = "DOWN"
	SetDrain          UpdateState = "DRAIN"
	SetResume         UpdateState = "RESUME"
	SetIdle           UpdateState = "IDLE"
	SetPowerDown      UpdateState = "POWER_DOWN"
	SetPowerDownAsap  UpdateState = "POWER_DOWN_ASAP"
	SetPowerDownForce UpdateState = "POWER_DOWN_FORCE"
	SetPowerUp        UpdateState = "POWER_UP"
	SetUndrain        UpdateState = "UNDRAIN"
)

// NodeUpdate is a change applied to nodes. Empty fields are not changed.
// Reason is required by Slurm with DOWN and DRAIN.
type NodeUpdate struct {
	State    UpdateState
	Reason   string
	Addr     string
	Hostname string
}

// ErrNodeNotFound is returned (wrapped) when a named node does not exist.
var ErrNodeNotFound = errors.New("node not found")

// Client is the Slurm control plane. Implementations are safe for
// concurrent use.
type Client interface {
	// Nodes returns the named nodes, or all nodes when names is empty.
	// A named node that does not exist is an error wrapping ErrNodeNotFound.
	// Blocks for one request.
	Nodes(ctx context.Context, names ...string) ([]Node, error)
	// Update applies u to every named node. Idempotent for a given u.
	// Blocks for one request per call (REST: one per node).
	Update(ctx context.Context, names []string, u NodeUpdate) error
	// Ping checks that the controller answers. Blocks for one request.
	Ping(ctx context.Context) error
}

// RebootOptions are the words of `scontrol reboot` (doc/man/man1/scontrol.1).
type RebootOptions struct {
	// ASAP drains the node so no new job starts there, and reboots it as
	// soon as its jobs end (Slurm undrains it afterwards unless it was
	// drained before).
	ASAP bool
	// NextState after the reboot: "" (Slurm's default: back in service,
	// a drain set before the reboot kept), RebootResume or RebootDown.
	NextState string
	// Reason: the node's reason from now on ("" = Slurm's "reboot
	// requested"); Slurm appends "reboot issued" and, with nextstate=DOWN,
	// "reboot complete".
	Reason string
}

// NextState values of RebootOptions.
const (
	RebootResume = "RESUME"
	RebootDown   = "DOWN"
)

// Rebooter is implemented by the clients that can ask slurmctld to reboot
// nodes: scontrol. slurmrestd has no reboot endpoint (v0.0.40 to v0.0.45),
// so the REST client does not implement it; callers build a Scontrol for
// it (NewScontrol).
type Rebooter interface {
	// Reboot asks slurmctld to reboot the named nodes (`scontrol reboot`).
	// Slurm skips, with an error message, nodes already rebooting or
	// powered down. Blocks for one request; idempotent while the reboot
	// is pending.
	Reboot(ctx context.Context, names []string, o RebootOptions) error
}
