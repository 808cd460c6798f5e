// Package nodehealth finds what is wrong with a compute node (GPUs through
// NVML, memory, disks, mounts, CPUs, daemons, admin scripts) and takes the
// node out of service in Slurm with a reason an admin understands, then
// gives it back once the problem has cleared.
//
// A Check returns Findings; a Policy turns consecutive findings into a
// Decision (drain, undrain or nothing); a Runner runs the checks, applies
// the policy and acts through internal/slurm, as a daemon loop or once
// (Slurm's HealthCheckProgram). The checks live in sub-packages: host/,
// exec/ and gpu/ (NVML, cgo).
package nodehealth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Status is the outcome of one finding.
type Status int

// Statuses. Unknown means the check could not tell (timeout, no data): it
// never drains a node and never counts as cleared.
const (
	OK Status = iota
	Fail
	Unknown
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Fail:
		return "FAIL"
	case Unknown:
		return "UNKNOWN"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText writes the status as in String.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Action is what a failure calls for. Every action from ActionReset on
// drains the node; the action itself (reset the GPU, power-cycle the node)
// is for the admin and is named in the drain reason.
type Action string

// Actions, mildest first.
const (
	ActionNone       Action = "none"  // informational (e.g. an application Xid)
	ActionWatch      Action = "watch" // reported and counted, never drains
	ActionReset      Action = "reset"
	ActionDrain      Action = "drain"
	ActionReboot     Action = "reboot"
	ActionPowerCycle Action = "power-cycle"
)

// Drains reports whether a failure with action a takes the node out of
// service.
func (a Action) Drains() bool {
	switch a {
	case ActionReset, ActionDrain, ActionReboot, ActionPowerCycle:
		return true
	}
	return false
}

// Finding is one observation of one component by one check.
type Finding struct {
	Check     string `json:"check"`     // the check's Name; filled by the Runner
	Component string `json:"component"` // gpu3, mem, /scratch, munged, ...
	Status    Status `json:"status"`
	Action    Action `json:"action,omitempty"` // for Fail; "" = ActionDrain
	Message   string `json:"message"`
}

// Drains reports whether f counts towards draining the node.
func (f Finding) Drains() bool { return f.Status == Fail && f.action().Drains() }

func (f Finding) action() Action {
	if f.Action == "" {
		return ActionDrain
	}
	return f.Action
}

// String is the one-line form printed by the one-shot mode:
// `FAIL disk /scratch: 2.0% free, want >= 5% (drain)`.
func (f Finding) String() string {
	s := f.Status.String() + " " + f.Check
	if f.Component != "" && f.Component != f.Check {
		s += " " + f.Component
	}
	s += ": " + oneLine(f.Message)
	if f.Status == Fail {
		s += " (" + string(f.action()) + ")"
	}
	return s
}

// MarshalJSON fills the effective action of failures.
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	p := plain(f)
	if f.Status == Fail {
		p.Action = f.action()
	} else {
		p.Action = ""
	}
	return json.Marshal(p)
}

// Check is one health check. Run must return when ctx is done; a check
// that cannot finish in time reports Unknown. Run blocks for the duration
// of the check and must be safe to call again (each Runner round calls it
// once); it must not be called concurrently with itself.
type Check interface {
	Name() string
	Run(ctx context.Context) []Finding
}

// DrainAfterer is implemented by checks that override the policy's
// consecutive-failure threshold (e.g. 1 for event-driven GPU Xids).
type DrainAfterer interface {
	DrainAfter() int
}

// Notifier is implemented by event-driven checks: a value on the channel
// asks the Runner for an immediate round instead of waiting for the
// interval.
type Notifier interface {
	Notify() <-chan struct{}
}

// OKf returns an OK finding.
func OKf(component, format string, args ...any) Finding {
	return Finding{Component: component, Status: OK, Message: fmt.Sprintf(format, args...)}
}

// Failf returns a failing finding with action a.
func Failf(component string, a Action, format string, args ...any) Finding {
	return Finding{Component: component, Status: Fail, Action: a, Message: fmt.Sprintf(format, args...)}
}

// Unknownf returns an Unknown finding.
func Unknownf(component, format string, args ...any) Finding {
	return Finding{Component: component, Status: Unknown, Message: fmt.Sprintf(format, args...)}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
