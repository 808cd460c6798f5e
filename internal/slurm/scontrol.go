package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultSearchPath is where a bare scontrol name is looked up first, and
// the PATH given to scontrol when the caller has none: Slurm runs its power
// saving hooks with an almost empty environment.
const DefaultSearchPath = "/usr/bin:/usr/local/bin:/bin"

// DefaultTimeout bounds one request when no timeout is configured.
const DefaultTimeout = 10 * time.Second

// maxListArg bounds the length of one node list argument. Linux limits one
// argv element to 128 KiB; longer lists are split (update) or replaced by
// a full listing filtered here (show).
const maxListArg = 32 << 10

// ScontrolOptions configures the scontrol backend.
type ScontrolOptions struct {
	// Path is the scontrol binary: a path containing '/', or a bare name
	// looked up in DefaultSearchPath and then $PATH. Default "scontrol".
	Path string
	// Env holds extra KEY=VALUE entries for scontrol (e.g. SLURM_CONF);
	// they override the inherited environment.
	Env []string
	// Timeout bounds each scontrol run. Default DefaultTimeout.
	Timeout time.Duration
	// AddrBatchWindow is how long the first of concurrent address updates
	// (Update of one node with Addr and Hostname only, as the resume and
	// suspend hooks make) waits for others to join it in one scontrol run.
	// 0 means DefaultAddrBatchWindow; negative turns batching off.
	AddrBatchWindow time.Duration
}

// Scontrol is the exec backend: it runs scontrol with an argv (never a
// shell). It works with any Slurm release from 22.05 on. Safe for
// concurrent use; concurrent address updates share scontrol runs (see
// Update).
type Scontrol struct {
	path    string
	env     []string
	timeout time.Duration
	batch   *addrBatcher // nil: batching off
}

var _ Client = (*Scontrol)(nil)

// NewScontrol resolves the scontrol binary and returns the backend. It
// does not contact slurmctld; it does not block.
func NewScontrol(o ScontrolOptions) (*Scontrol, error) {
	path, err := LookScontrol(o.Path)
	if err != nil {
		return nil, err
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("scontrol environment entry %q: want KEY=VALUE", kv)
		}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	env := os.Environ()
	if os.Getenv("PATH") == "" {
		env = append(env, "PATH="+DefaultSearchPath)
	}
	// One time format, whatever the caller's environment says.
	env = append(env, "SLURM_TIME_FORMAT=standard")
	env = append(env, o.Env...)
	s := &Scontrol{path: path, env: env, timeout: timeout}
	switch w := o.AddrBatchWindow; {
	case w == 0:
		s.batch = newAddrBatcher(s, DefaultAddrBatchWindow)
	case w > 0:
		s.batch = newAddrBatcher(s, w)
	}
	return s, nil
}

// LookScontrol resolves name ("" means "scontrol") to an executable: a name
// containing '/' is used as is; a bare name is searched in
// DefaultSearchPath, then in $PATH. The error names what to install.
func LookScontrol(name string) (string, error) {
	if name == "" {
		name = "scontrol"
	}
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("scontrol binary %s: %w", name, err)
		}
		return name, nil
	}
	dirs := filepath.SplitList(DefaultSearchPath)
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("scontrol binary %q not found in %s or $PATH (install the Slurm client, e.g. apt-get install slurm-client, or set slurm.scontrol)", name, DefaultSearchPath)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not an executable file (mode %s)", st.Mode())
	}
	return nil
}

// Path returns the resolved scontrol binary.
func (s *Scontrol) Path() string { return s.path }

// scontrolError is a failed scontrol run; it carries scontrol's stderr.
type scontrolError struct {
	args   []string
	err    error
	stderr string
}

func (e *scontrolError) Error() string {
	msg := fmt.Sprintf("scontrol %s: %v", shortArgs(e.args), e.err)
	if e.stderr != "" {
		msg += ": " + e.stderr
	}
	return msg
}

func (e *scontrolError) Unwrap() error { return e.err }

// shortArgs renders args for an error message, eliding very long lists.
func shortArgs(args []string) string {
	s := strings.Join(args, " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// run executes scontrol with args, bounded by ctx and the timeout. On a
// non-zero exit it returns stdout too, with a *scontrolError.
func (s *Scontrol) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.path, args...)
	cmd.Env = s.env
	cmd.Stdin = nil
	cmd.WaitDelay = time.Second // a stray child holding the pipes cannot hang us
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(ctxErr, context.DeadlineExceeded) {
				err = fmt.Errorf("no answer within %s: %w", s.timeout, ctxErr)
			} else {
				err = ctxErr
			}
		}
		return stdout.String(), &scontrolError{args: args, err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

// Nodes returns the named nodes in the order given, or all nodes when
// names is empty (FUTURE nodes included; powered-down CLOUD nodes appear
// only when slurm.conf has PrivateData=cloud). Unknown names give an error
// wrapping ErrNodeNotFound, returned together with the nodes that were
// found. Blocks for one scontrol run; read-only.
func (s *Scontrol) Nodes(ctx context.Context, names ...string) ([]Node, error) {
	if err := validateNames(names); err != nil {
		return nil, fmt.Errorf("scontrol show node: %w", err)
	}
	names = dedupe(names)
	args := []string{"--all", "--future", "--oneliner", "show", "node"}
	list := strings.Join(names, ",")
	if len(names) > 0 && len(list) <= maxListArg {
		args = append(args, list)
	}
	out, runErr := s.run(ctx, args...)
	nodes, missing, err := parseShowNode(out)
	if err != nil {
		return nil, fmt.Errorf("scontrol %s: %w", shortArgs(args), err)
	}
	if runErr != nil && (len(missing) == 0 || len(names) == 0) {
		return nil, runErr
	}
	if len(names) == 0 {
		return nodes, nil
	}
	return pick(nodes, names, "scontrol show node")
}

// pick returns the nodes named, in order; missing ones give ErrNodeNotFound.
func pick(all []Node, names []string, what string) ([]Node, error) {
	byName := make(map[string]int, len(all))
	for i, n := range all {
		byName[n.Name] = i
	}
	out := make([]Node, 0, len(names))
	var missing []string
	for _, name := range names {
		if i, ok := byName[name]; ok {
			out = append(out, all[i])
		} else {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("%s: %w (powered-down CLOUD nodes are listed only with PrivateData=cloud in slurm.conf)", what, notFound(missing))
	}
	return out, nil
}

// Update applies u to the named nodes with `scontrol update`; the reason is
// one argv element, so it may hold any text but a newline. Empty fields are
// left alone; an update with no field set does nothing. Addr and Hostname,
// when set, are given to every named node. Idempotent for a given u, except
// that Slurm refuses RESUME for a node that is neither DOWN nor drained
// ("Invalid node state specified"). Unknown names give ErrNodeNotFound;
// slurmctld may have updated the names listed before the first unknown one.
// Blocks for one scontrol run per 32 KiB of node names.
//
// An update of one node's Addr and Hostname and nothing else (what the
// resume and suspend hooks make for each node) is batched: concurrent ones
// share one `scontrol update NodeName=a,b NodeAddr=ip1,ip2
// NodeHostName=h1,h2`. The first waits up to the batch window (default
// 100 ms) for company, later ones queue while a batch runs. Each caller
// gets its own result: if a batch fails, each of its nodes is updated
// alone, so one bad node never hides the others. Such a call blocks for the
// window, the batches ahead of it and its own run(s).
func (s *Scontrol) Update(ctx context.Context, names []string, u NodeUpdate) error {
	if err := validateUpdate(names, u); err != nil {
		return fmt.Errorf("scontrol %w", err)
	}
	if emptyUpdate(u) {
		return nil
	}
	names = dedupe(names)
	if s.batch != nil && len(names) == 1 && u.State == SetNone && u.Reason == "" && u.Addr != "" && u.Hostname != "" {
		return s.batch.update(ctx, names[0], u.Addr, u.Hostname)
	}
	var errs []error
	for _, chunk := range chunkNames(names, maxListArg) {
		if err := s.update(ctx, chunk, u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Scontrol) update(ctx context.Context, names []string, u NodeUpdate) error {
	args := []string{"update", "NodeName=" + strings.Join(names, ",")}
	if u.State != SetNone {
		args = append(args, "State="+string(u.State))
	}
	if u.Reason != "" {
		args = append(args, "Reason="+u.Reason)
	}
	if u.Addr != "" {
		args = append(args, "NodeAddr="+repeat(u.Addr, len(names)))
	}
	if u.Hostname != "" {
		args = append(args, "NodeHostName="+repeat(u.Hostname, len(names)))
	}
	_, err := s.run(ctx, args...)
	if err == nil {
		return nil
	}
	var se *scontrolError
	if errors.As(err, &se) && strings.Contains(se.stderr, "Invalid node name") {
		// Name the missing nodes when a lookup can tell which. Nodes
		// listed before a missing one may have been updated: slurmctld
		// applies a list in order and stops at the first unknown name.
		missing := names
		if found, lerr := s.Nodes(ctx, names...); errors.Is(lerr, ErrNodeNotFound) {
			missing = absent(names, found)
		}
		return fmt.Errorf("scontrol update NodeName=%s: %w: %s", shortArgs(names), notFound(missing), se.stderr)
	}
	return err
}

// absent returns the names not among nodes.
func absent(names []string, nodes []Node) []string {
	var out []string
	for _, name := range names {
		if !slices.ContainsFunc(nodes, func(n Node) bool { return n.Name == name }) {
			out = append(out, name)
		}
	}
	return out
}

// repeat returns v repeated n times, comma-separated: Slurm wants one
// NodeAddr/NodeHostName per node named.
func repeat(v string, n int) string {
	return strings.TrimSuffix(strings.Repeat(v+",", n), ",")
}

// chunkNames splits names into groups whose comma-joined length stays
// within max bytes.
func chunkNames(names []string, max int) [][]string {
	var out [][]string
	var cur []string
	size := 0
	for _, n := range names {
		if len(cur) > 0 && size+1+len(n) > max {
			out = append(out, cur)
			cur, size = nil, 0
		}
		if len(cur) > 0 {
			size++
		}
		cur = append(cur, n)
		size += len(n)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Reboot runs `scontrol reboot [ASAP] [nextstate=X] [reason=R] NODES`
// (argv, no shell). Names are validated; Reason must be one line. Slurm
// answers with an error for nodes it skips (already rebooting, powered
// down), which is returned. Blocks for one scontrol run per 32 KiB of
// names; idempotent while the reboot is pending (Slurm skips the node).
func (s *Scontrol) Reboot(ctx context.Context, names []string, o RebootOptions) error {
	if err := validateReboot(names, o); err != nil {
		return fmt.Errorf("scontrol %w", err)
	}
	var errs []error
	for _, chunk := range chunkNames(dedupe(names), maxListArg) {
		args := []string{"reboot"}
		if o.ASAP {
			args = append(args, "ASAP")
		}
		if o.NextState != "" {
			args = append(args, "nextstate="+o.NextState)
		}
		if o.Reason != "" {
			args = append(args, "reason="+o.Reason)
		}
		if _, err := s.run(ctx, append(args, strings.Join(chunk, ","))...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Ping runs `scontrol ping` and succeeds when a controller reports UP.
// Blocks for one scontrol run; read-only.
func (s *Scontrol) Ping(ctx context.Context) error {
	out, err := s.run(ctx, "ping")
	var status []string // "Slurmctld(primary) at head is UP" lines
	up := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Slurmctld(") {
			status = append(status, line)
			up = up || strings.HasSuffix(line, " is UP")
		}
	}
	switch {
	case err != nil && len(status) > 0:
		return fmt.Errorf("%w (%s)", err, strings.Join(status, "; "))
	case err != nil:
		return err
	case !up:
		return fmt.Errorf("scontrol ping: no controller is UP: %q", strings.TrimSpace(out))
	}
	return nil
}
