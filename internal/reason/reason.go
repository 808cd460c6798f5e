// Package reason is the one registry of the Slurm node reasons
// slurm-elastic sets: every code, who owns it, what it means and whether
// the failure it records may pass by itself. It formats reasons
// (`slurm-elastic: (Code:X) msg`, `slurm-elastic-health: check: msg`), one
// line and at most 240 bytes, and parses a node's reason back into its
// owner and code, so whose reason a node carries is read from the
// registry, never guessed by listing what it is not.
//
// It imports only the standard library; every function is pure.
package reason

import (
	"strings"
	"unicode/utf8"
)

// Prefix starts every reason the power hooks and the reconciler set. A
// reason without it (or HealthPrefix) belongs to someone else and is never
// changed or cleared by us.
const Prefix = "slurm-elastic:"

// HealthPrefix starts every reason the node health daemon sets. It differs
// from Prefix, so the power hooks never clear a health drain and the
// health daemon never clears theirs.
const HealthPrefix = "slurm-elastic-health:"

// Max is the longest reason slurm-elastic sets, in bytes: Slurm stores it
// whole and shows it in every sinfo -R line.
const Max = 240

// Code is a reason code: the X of `(Code:X)`.
type Code string

// Owner is who sets a reason, and so who may change or clear it.
type Owner string

// Owners.
const (
	// Other: an admin or anyone else; never changed by slurm-elastic.
	Other Owner = "other"
	// Hooks: the power hooks (resume, resume-fail).
	Hooks Owner = "hooks"
	// Reconciler: slurm-elastic daemon.
	Reconciler Owner = "reconciler"
	// Health: slurm-elastic-health (HealthPrefix).
	Health Owner = "health"
)

// Family groups codes by what the reconciler does with a node carrying
// one.
type Family string

// Families.
const (
	// LaunchFailure: a hook could not bring the node up (held by an open
	// circuit breaker).
	LaunchFailure Family = "launch-failure"
	// CapacityFailure: no capacity; the node's group cools down.
	CapacityFailure Family = "capacity"
	// Hold: the node is kept out of scheduling until its group's cooldown
	// ends or its breaker is re-armed.
	Hold Family = "hold"
	// Failover: the reconciler replaced the node; it is re-enabled once
	// powered down.
	Failover Family = "failover"
	// Reimaging: the reconciler is giving the idle node a fresh instance
	// in another image for a pending job (`scontrol reboot ASAP`); Slurm
	// returns it to service when the new slurmd registers.
	Reimaging Family = "reimage"
)

// The registered codes.
const (
	// Runtime failure classes (runtime.Class*): the hooks' launch failures.
	Config    Code = "Config"
	Transient Code = "Transient"
	Capacity  Code = "Capacity"

	UnknownNode      Code = "UnknownNode"
	SlurmUpdate      Code = "SlurmUpdate"
	ResumeTimeout    Code = "ResumeTimeout"
	SlurmUnreachable Code = "SlurmUnreachable"
	BreakerOpen      Code = "BreakerOpen"
	Interrupted      Code = "Interrupted"

	DeadNode     Code = "DeadNode"
	StuckPowerUp Code = "StuckPowerUp"
	Unhealthy    Code = "Unhealthy"
	Cooldown     Code = "Cooldown"
	Reimage      Code = "Reimage"
)

// Info is one registered code.
type Info struct {
	Code    Code
	Owner   Owner
	Family  Family
	Meaning string
	// Retryable: the failure may pass by itself, so a node failed with it
	// is powered down after DOWN (it returns to the pool after
	// SuspendTimeout); otherwise it stays DOWN until an admin acts.
	Retryable bool
}

var registry = map[Code]Info{
	Config:           {Config, Hooks, LaunchFailure, "the group's template or the config cannot start a node; fix it and resume the node", false},
	Transient:        {Transient, Hooks, LaunchFailure, "the runtime failed in a way that may pass (API hiccup, host restart)", true},
	Capacity:         {Capacity, Hooks, CapacityFailure, "no capacity (stockout, quota); the group cools down", true},
	UnknownNode:      {UnknownNode, Hooks, LaunchFailure, "the node is in no node group, or its runtime is not available", false},
	SlurmUpdate:      {SlurmUpdate, Hooks, LaunchFailure, "Slurm did not take the started node's address; the instance was removed", true},
	ResumeTimeout:    {ResumeTimeout, Hooks, LaunchFailure, "the node did not register within ResumeTimeout", false},
	SlurmUnreachable: {SlurmUnreachable, Hooks, LaunchFailure, "the configured Slurm client did not answer; nothing was launched", true},
	BreakerOpen:      {BreakerOpen, Hooks, Hold, "the group's circuit breaker is open; launches stopped until it is re-armed", true},
	Interrupted:      {Interrupted, Hooks, LaunchFailure, "the resume hook ran out of time (resume.timeout, the node lock wait) or was stopped before the node's launch was done; not a launch failure (the breaker does not count it)", true},
	DeadNode:         {DeadNode, Reconciler, Failover, "the node was up but its instance was gone or exited; jobs requeued, powered down", true},
	StuckPowerUp:     {StuckPowerUp, Reconciler, Failover, "the node was powering up too long with no instance; reset", true},
	Unhealthy:        {Unhealthy, Reconciler, Failover, "the health daemon drained the idle node; the reconciler replaced it", true},
	Cooldown:         {Cooldown, Reconciler, Hold, "the group is paused after a capacity failure until its cooldown ends", true},
	Reimage:          {Reimage, Reconciler, Reimaging, "the idle node is rebooted into the image a pending job asks for; Slurm returns it to service when it registers", true},
}

// Lookup returns code's registry entry. It does not block.
func Lookup(c Code) (Info, bool) {
	i, ok := registry[c]
	return i, ok
}

// Registered returns every registered code's entry (a copy, any order).
func Registered() []Info {
	out := make([]Info, 0, len(registry))
	for _, i := range registry {
		out = append(out, i)
	}
	return out
}

// Retryable reports whether a failure recorded with c may pass by itself
// (unregistered codes: no).
func Retryable(c Code) bool { return registry[c].Retryable }

// Format returns the reason `slurm-elastic: (Code:<c>) <msg>`, msg on one
// line, at most Max bytes.
func Format(c Code, msg string) string {
	return Fit(Prefix + " (Code:" + string(c) + ") " + strings.Join(strings.Fields(msg), " "))
}

// WithHint returns msg with " (hint)" at its end, msg cut (marked "...")
// so that Format(c, result) keeps the hint whole within Max bytes: where
// to look (e.g. a saved log) must survive a long message. Pure.
func WithHint(c Code, msg, hint string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	suffix := " (" + hint + ")"
	room := Max - len(Prefix+" (Code:"+string(c)+") ") - len(suffix)
	if len(msg) > room {
		msg = msg[:max(room-3, 0)]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
		msg += "..."
	}
	return msg + suffix
}

// FormatHealth returns the health daemon's reason
// `slurm-elastic-health: <check>: <what>`, at most Max bytes.
func FormatHealth(check, what string) string {
	return Fit(HealthPrefix + " " + check + ": " + what)
}

// Fit cuts r to at most Max bytes (on a rune boundary, marked with "...").
func Fit(r string) string {
	if len(r) <= Max {
		return r
	}
	r = r[:Max-3]
	for !utf8.ValidString(r) {
		r = r[:len(r)-1]
	}
	return r + "..."
}

// Parsed is a node reason read back.
type Parsed struct {
	Owner Owner
	// Code is the registered code (Hooks, Reconciler); "" otherwise.
	Code Code
	// Family of Code; "" when there is none.
	Family Family
	// Check is the health check a Health reason names.
	Check string
	// Msg is the text after the code (or check).
	Msg string
}

// Parse reads whose reason r is and what it says. A reason with our prefix
// but no registered code is Other: it is not ours to change. It does not
// block.
func Parse(r string) Parsed {
	if rest, ok := strings.CutPrefix(r, HealthPrefix); ok {
		check, msg, _ := strings.Cut(strings.TrimSpace(rest), ":")
		return Parsed{Owner: Health, Check: check, Msg: strings.TrimSpace(msg)}
	}
	rest, ok := strings.CutPrefix(r, Prefix+" (Code:")
	if !ok {
		return Parsed{Owner: Other, Msg: r}
	}
	c, msg, ok := strings.Cut(rest, ")")
	info, known := registry[Code(c)]
	if !ok || !known {
		return Parsed{Owner: Other, Msg: r}
	}
	return Parsed{Owner: info.Owner, Code: info.Code, Family: info.Family, Msg: strings.TrimSpace(msg)}
}

// Has reports whether r is Format(c, ...).
func Has(r string, c Code) bool { return Parse(r).Code == c && c != "" }

// Ours reports whether r was set by slurm-elastic (hooks, reconciler or
// health daemon) with a registered code or the health prefix.
func Ours(r string) bool { return Parse(r).Owner != Other }
