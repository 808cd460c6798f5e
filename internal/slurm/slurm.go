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
)

// Node is one Slurm node as the controller sees it.
type Node struct {
	Name         string
	State        string   // base state: IDLE, ALLOCATED, MIXED, DOWN, ...
	Flags        []string // CLOUD, DRAIN, POWERED_DOWN, POWERING_UP, ...
	Reason       string
	Addr         string // NodeAddr
	Hostname     string // NodeHostName
	Features     []string
	Gres         string
	RealMemoryMB int64
	CPUs         int
	Partitions   []string
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
