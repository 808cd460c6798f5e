package nodehealth

import (
	"slices"
	"strconv"
	"strings"

	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
)

// Reason formats the drain reason `slurm-elastic-health: <check>: <finding>`
// on one line, at most 240 bytes (reason.FormatHealth).
func Reason(f Finding) string {
	what := oneLine(f.Message)
	if f.Component != "" && f.Component != f.Check {
		what = f.Component + ": " + what
	}
	if a := f.action(); a != ActionDrain {
		what += " (" + string(a) + ")"
	}
	return reason.FormatHealth(f.Check, what)
}

// OwnReason reports whether r was set by the health daemon (its owner in
// the reason registry) and, if so, the check it names.
func OwnReason(r string) (check string, ok bool) {
	p := reason.Parse(r)
	return p.Check, p.Owner == reason.Health
}

// Op is what a Decision does to the node.
type Op string

// Ops.
const (
	OpNone    Op = "none"
	OpDrain   Op = "drain"
	OpUndrain Op = "undrain"
	// OpReboot asks Slurm to reboot the node (`scontrol reboot ASAP`,
	// Reason as its reason): Slurm drains it, reboots it once its jobs
	// end and returns it to service (Policy.Reboot).
	OpReboot Op = "reboot"
)

// RebootIssued is what Slurm appends to a node's reason when it issues a
// reboot (" : reboot issued"); the reason stays on the node until a job
// is allocated there. Our reason carrying it means a reboot we asked for
// has happened and no job has run since.
const RebootIssued = "reboot issued"

// Decision is the Policy's verdict for one node after one round.
type Decision struct {
	Op     Op
	Reason string // the drain reason (OpDrain), the reboot's reason (OpReboot)
	Why    string // for the log: why this op (or why nothing)
}

// Policy turns consecutive findings into decisions. The zero value drains
// and undrains after one round.
type Policy struct {
	// DrainAfter (K): consecutive rounds in which a check reports a
	// draining failure before the node is drained. Per-check overrides come
	// from DrainAfterer and PerCheck. < 1 means 1.
	DrainAfter int
	// UndrainAfter (M): consecutive rounds in which the check named in our
	// reason reports no failure and no Unknown, with no other check
	// failing, before the node is undrained. < 1 means 1.
	UndrainAfter int
	// PerCheck overrides DrainAfter by check name.
	PerCheck map[string]int
	// Reboot: a failure whose action is in it asks for a reboot (OpReboot)
	// where others drain, once: if the node's reason shows a reboot we
	// asked for and no job ran since (our reason carrying RebootIssued;
	// also after "reboot timed out"), it is drained instead, so a fault a reboot does not
	// clear never reboots the node in a loop. nil = drain only
	// (health.reboot_actions).
	Reboot map[Action]bool
}

// State is what the Policy remembers between rounds. The zero value is
// ready; it is not safe for concurrent use.
type State struct {
	fails  map[string]int     // consecutive rounds with a draining failure
	clean  map[string]int     // consecutive rounds with neither failure nor Unknown
	last   map[string]Finding // the latest draining failure per check
	rounds int
}

// Observe records one round of findings (all checks). Per check: a
// draining failure increments its failure count and resets its clean
// count; Unknown (without a draining failure) freezes the failure count and
// resets the clean count; otherwise the failure count resets and the clean
// count increments. Never blocks.
func (s *State) Observe(findings []Finding) {
	if s.fails == nil {
		s.fails, s.clean, s.last = map[string]int{}, map[string]int{}, map[string]Finding{}
	}
	s.rounds++
	type verdict struct{ fail, unknown bool }
	seen := map[string]*verdict{}
	var order []string
	for _, f := range findings {
		v := seen[f.Check]
		if v == nil {
			v = &verdict{}
			seen[f.Check] = v
			order = append(order, f.Check)
		}
		switch {
		case f.Drains():
			if !v.fail {
				s.last[f.Check] = f
			}
			v.fail = true
		case f.Status == Unknown:
			v.unknown = true
		}
	}
	for _, c := range order {
		v := seen[c]
		switch {
		case v.fail:
			s.fails[c]++
			s.clean[c] = 0
		case v.unknown:
			s.clean[c] = 0
		default:
			s.fails[c] = 0
			s.clean[c]++
			delete(s.last, c)
		}
	}
}

func (p Policy) threshold(check string) int {
	k := p.DrainAfter
	if v, ok := p.PerCheck[check]; ok && v > 0 {
		k = v
	}
	return max(k, 1)
}

// Decide returns what to do with node given the state. It never acts on a
// node powering up, powering down or powered down, nor on one with a
// reboot pending (REBOOT_REQUESTED, REBOOT_ISSUED), never touches a node
// DOWN or drained with a reason that is not ours (an admin's
// `state=down reason=...` is neither overwritten nor undrained), and
// undrains only a node drained with our reason. Never blocks; a pure function of its arguments.
func (p Policy) Decide(s *State, node slurm.Node) Decision {
	for _, f := range []string{slurm.FlagPoweringUp, slurm.FlagPoweringDown, slurm.FlagPoweredDown} {
		if node.Has(f) {
			return Decision{Op: OpNone, Why: "node is " + f + ": health actions wait"}
		}
	}
	if node.Has(slurm.FlagRebootRequested) || node.Has(slurm.FlagRebootIssued) {
		return Decision{Op: OpNone, Why: "a reboot of the node is pending: health actions wait"}
	}
	drained := node.Has(slurm.FlagDrain)
	ownCheck, ours := OwnReason(node.Reason)
	if !ours && (drained || node.Has(slurm.StateDown)) {
		return Decision{Op: OpNone, Why: "node is " + strings.Join(slices.Concat([]string{node.State}, node.Flags), "+") +
			" with a reason that is not ours (" + node.Reason + "): left alone"}
	}

	// The first check (by name) over its threshold decides the reason.
	var failing []string
	for c, n := range s.fails {
		if n > 0 {
			failing = append(failing, c)
		}
	}
	slices.Sort(failing)
	for _, c := range failing {
		if s.fails[c] < p.threshold(c) {
			continue
		}
		f := s.last[c]
		if drained {
			return Decision{Op: OpNone, Why: "check " + c + " fails; node already drained by us"}
		}
		why := "check " + c + " failed " + itoa(s.fails[c]) + " consecutive rounds"
		if p.Reboot[f.action()] {
			if ours && strings.Contains(node.Reason, RebootIssued) {
				f.Message += "; not cleared by a reboot"
				return Decision{Op: OpDrain, Reason: Reason(f), Why: why + " after the reboot we asked for, with no job since: drained, not rebooted again"}
			}
			return Decision{Op: OpReboot, Reason: Reason(f), Why: why + "; its action " + string(f.action()) + " asks for a reboot"}
		}
		return Decision{Op: OpDrain, Reason: Reason(f), Why: why}
	}
	if !drained {
		return Decision{Op: OpNone, Why: "nothing to do"}
	}
	if len(failing) > 0 {
		return Decision{Op: OpNone, Why: "drained by us; check " + failing[0] + " still fails"}
	}
	m := max(p.UndrainAfter, 1)
	clean, known := s.clean[ownCheck]
	if !known {
		// The check is gone (configuration changed): count whole rounds.
		clean = s.rounds
	}
	if clean < m {
		return Decision{Op: OpNone, Why: "drained by us; check " + ownCheck + " clear for " + itoa(clean) + " of " + itoa(m) + " rounds"}
	}
	return Decision{Op: OpUndrain, Why: "check " + ownCheck + " clear for " + itoa(clean) + " consecutive rounds"}
}

func itoa(n int) string { return strconv.Itoa(n) }
