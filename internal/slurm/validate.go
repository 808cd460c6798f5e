package slurm

import (
	"errors"
	"fmt"
	"strings"
)

// ValidateNodeName reports whether name is a plain Slurm node name: letters,
// digits, '-', '_' and '.', at most 255 bytes. Hostlist syntax ("n[1-4]",
// commas) and anything a shell or URL would interpret are rejected, so a
// validated name is safe as one scontrol argument and as a URL path segment.
func ValidateNodeName(name string) error {
	if name == "" {
		return errors.New("empty node name")
	}
	if len(name) > 255 {
		return fmt.Errorf("node name %.32q...: longer than 255 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("invalid node name %q: character %q at %d (allowed: letters, digits, '-', '_', '.')", name, c, i)
		}
	}
	return nil
}

// validateNames checks every name and joins all problems into one error.
func validateNames(names []string) error {
	var errs []error
	for _, n := range names {
		if err := ValidateNodeName(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// knownStates lists the UpdateState values both backends implement.
var knownStates = map[UpdateState]bool{
	SetNone: true, SetDown: true, SetDrain: true, SetResume: true, SetIdle: true,
	SetPowerDown: true, SetPowerDownAsap: true, SetPowerDownForce: true,
	SetPowerUp: true, SetUndrain: true,
}

// validateReboot checks a Reboot request before anything is sent.
func validateReboot(names []string, o RebootOptions) error {
	if len(names) == 0 {
		return errors.New("reboot: no node names given")
	}
	if err := validateNames(names); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	if o.NextState != "" && o.NextState != RebootResume && o.NextState != RebootDown {
		return fmt.Errorf("reboot: nextstate %q: want %s or %s", o.NextState, RebootResume, RebootDown)
	}
	if strings.ContainsAny(o.Reason, "\n\r") {
		return fmt.Errorf("reboot: reason %.40q: must be one line", o.Reason)
	}
	return nil
}

// validateUpdate checks an Update request before anything is sent.
func validateUpdate(names []string, u NodeUpdate) error {
	if len(names) == 0 {
		return errors.New("update: no node names given")
	}
	if err := validateNames(names); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if !knownStates[u.State] {
		return fmt.Errorf("update: unknown state %q", u.State)
	}
	if (u.State == SetDown || u.State == SetDrain) && strings.TrimSpace(u.Reason) == "" {
		return fmt.Errorf("update %s: state %s needs a reason", strings.Join(names, ","), u.State)
	}
	if strings.ContainsAny(u.Reason, "\n\r") {
		return fmt.Errorf("update %s: reason must be one line", strings.Join(names, ","))
	}
	for _, f := range []struct{ key, val string }{{"NodeAddr", u.Addr}, {"NodeHostName", u.Hostname}} {
		if strings.ContainsAny(f.val, " ,\t\n\r[]") {
			return fmt.Errorf("update %s: invalid %s %q", strings.Join(names, ","), f.key, f.val)
		}
	}
	return nil
}

// emptyUpdate reports whether u changes nothing.
func emptyUpdate(u NodeUpdate) bool { return u == NodeUpdate{} }

// notFound wraps ErrNodeNotFound with the missing names.
func notFound(names []string) error {
	return fmt.Errorf("%w: %s", ErrNodeNotFound, strings.Join(names, ","))
}

// baseStates are the states Slurm reports as a node's base state; every
// other state word is a flag.
var baseStates = map[string]bool{
	StateIdle: true, StateAllocated: true, StateMixed: true, StateDown: true,
	StateFuture: true, StateUnknown: true, StateError: true,
}

// splitState turns Slurm's state words (base first or anywhere, flags in
// any order) into the base state and the flags, upper-cased.
func splitState(words []string) (string, []string) {
	base := ""
	var flags []string
	for _, w := range words {
		w = strings.ToUpper(strings.TrimSpace(w))
		if w == "" {
			continue
		}
		switch {
		case base == "" && baseStates[w]:
			base = w
		case w == "DRAINED" || w == "DRAINING": // sinfo-style long forms
			if base == "" {
				base = map[string]string{"DRAINED": StateIdle, "DRAINING": StateAllocated}[w]
			}
			flags = append(flags, FlagDrain)
		default:
			flags = append(flags, w)
		}
	}
	if base == "" {
		base = StateUnknown
	}
	return base, flags
}
