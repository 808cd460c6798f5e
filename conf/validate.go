package conf

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

var (
	clusterRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	nameRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	featureRe  = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	envKeyRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	gresItemRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(:[A-Za-z0-9_.-]+)*$`)
	// CDI fully qualified device name: vendor.com/class=name.
	cdiRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+/[A-Za-z0-9][A-Za-z0-9_.-]*=[A-Za-z0-9][A-Za-z0-9_.:-]*$`)
)

var logLevels = []string{"debug", "info", "warn", "error"}

// problems collects FieldErrors for one file.
type problems struct {
	file string
	errs []error
}

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{File: p.file, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// uniqueName checks the name of list[i] (at key): required, valid, and not
// already used by an earlier entry (seen maps names to their index).
func (p *problems) uniqueName(key, list, name string, i int, seen map[string]int, rule string) {
	switch {
	case name == "":
		p.add(key+".name", "required")
	case !nameRe.MatchString(name):
		p.add(key+".name", "%q: "+rule, name)
	default:
		if j, dup := seen[name]; dup {
			p.add(key+".name", "%q: already used by %s[%d]", name, list, j)
		} else {
			seen[name] = i
		}
	}
}

// Validate checks the whole configuration and returns every problem at
// once (errors.Join of *FieldError, each naming c.File and the key path,
// e.g. "/etc/slurm-elastic/config.yaml: groups[1].template.image:
// required"), or nil. It stats the token and SSH identity files, expands
// every group's hostlist and (re)builds the node index used by GroupOf.
// Blocks only on those stats; idempotent.
func (c *Config) Validate() error {
	p := &problems{file: c.File}
	if c.Cluster == "" {
		p.add("cluster", "required: a name of [a-z0-9-], at most 40 characters, put on every instance as its owner label")
	} else if !clusterRe.MatchString(c.Cluster) {
		p.add("cluster", "%q: use [a-z0-9-] only, starting with a letter or digit, at most 40 characters", c.Cluster)
	}
	c.validateSlurm(p)
	c.validatePodman(p)
	c.validateGroups(p)
	c.validateLog(p)
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		p.add("state_dir", "%q: must be an absolute path", c.StateDir)
	}
	validateHook(p, "resume", c.Resume)
	validateHook(p, "suspend", c.Suspend)
	c.validatePowerSave(p)
	c.validateHealth(p)
	c.validateDaemon(p)
	return errors.Join(p.errs...)
}

func (c *Config) validateSlurm(p *problems) {
	s := c.Slurm
	switch s.Backend {
	case BackendAuto, BackendREST, BackendScontrol:
	default:
		p.add("slurm.backend", "%q: must be one of auto, rest, scontrol", s.Backend)
	}
	if s.RESTURL == "" {
		if s.Backend == BackendREST {
			p.add("slurm.rest_url", "required with backend rest: http://host:6820 or unix:///path/to/slurmrestd.sock")
		}
	} else if u, err := url.Parse(s.RESTURL); err != nil {
		p.add("slurm.rest_url", "%q: %v", s.RESTURL, err)
	} else {
		switch u.Scheme {
		case "http", "https":
			if u.Host == "" {
				p.add("slurm.rest_url", "%q: no host: write %s://host:port", s.RESTURL, u.Scheme)
			}
		case "unix":
			if u.Host != "" || !filepath.IsAbs(u.Path) {
				p.add("slurm.rest_url", "%q: write unix:///absolute/path/to/slurmrestd.sock", s.RESTURL)
			}
		default:
			p.add("slurm.rest_url", "%q: scheme must be http, https or unix", s.RESTURL)
		}
	}
	if s.TokenFile == "" {
		if s.Backend == BackendREST {
			p.add("slurm.token_file", "required with backend rest: the file holding slurmrestd's JWT")
		}
	} else {
		checkSecretFile(p, "slurm.token_file", s.TokenFile)
	}
	if s.Scontrol == "" {
		p.add("slurm.scontrol", "must not be empty (default \"scontrol\")")
	}
	positive(p, "slurm.timeout", s.Timeout)
}

// checkSecretFile reports a file that is missing, not a regular file, or
// readable or writable by other users.
func checkSecretFile(p *problems, key, path string) {
	if !filepath.IsAbs(path) {
		p.add(key, "%q: must be an absolute path", path)
		return
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		p.add(key, "%v", err)
	case !fi.Mode().IsRegular():
		p.add(key, "%s: not a regular file", path)
	case fi.Mode().Perm()&0o007 != 0:
		p.add(key, "%s: mode %04o lets other users read it: chmod 0600 (or 0640 with the SlurmUser's group)", path, fi.Mode().Perm())
	}
}

func (c *Config) validatePodman(p *problems) {
	var users []string
	for i, g := range c.Groups {
		if g.Runtime == RuntimePodman || g.Runtime == "" {
			users = append(users, fmt.Sprintf("groups[%d] (%s)", i, g.Name))
		}
	}
	if len(c.Podman.Hosts) == 0 && len(users) > 0 {
		p.add("podman.hosts", "at least one host required by the groups using runtime podman: %s",
			strings.Join(users, ", "))
	}
	seen := map[string]int{}
	for i, h := range c.Podman.Hosts {
		key := fmt.Sprintf("podman.hosts[%d]", i)
		p.uniqueName(key, "podman.hosts", h.Name, i, seen, "use letters, digits, '_', '.', '-', at most 63 characters")
		ssh := false
		if h.URI == "" {
			p.add(key+".uri", "required: unix:///run/podman/podman.sock, tcp://host:port or ssh://user@host/run/podman/podman.sock")
		} else if u, err := url.Parse(h.URI); err != nil {
			p.add(key+".uri", "%q: %v", h.URI, err)
		} else {
			switch u.Scheme {
			case "unix":
				if u.Host != "" || !filepath.IsAbs(u.Path) {
					p.add(key+".uri", "%q: write unix:///absolute/path/to/podman.sock", h.URI)
				}
			case "tcp":
				if u.Hostname() == "" || u.Port() == "" {
					p.add(key+".uri", "%q: write tcp://host:port", h.URI)
				}
			case "ssh":
				ssh = true
				if u.Hostname() == "" || !filepath.IsAbs(u.Path) || u.Path == "/" {
					p.add(key+".uri", "%q: write ssh://user@host[:port]/path/to/podman.sock", h.URI)
				}
			default:
				p.add(key+".uri", "%q: scheme must be unix, tcp or ssh", h.URI)
			}
		}
		if ssh {
			// Hooks run from slurmscriptd with an empty environment: no
			// SSH agent, so the key must be given.
			if h.Identity == "" {
				p.add(key+".identity", "required for ssh:// URIs: the SSH private key (hooks run without an SSH agent)")
			} else {
				checkSecretFile(p, key+".identity", h.Identity)
			}
		} else if h.Identity != "" {
			p.add(key+".identity", "only used with ssh:// URIs; remove it or fix uri")
		}
		nonNegative(p, key+".max_nodes", float64(h.MaxNodes))
		nonNegative(p, key+".cpus", h.CPUs)
		nonNegative(p, key+".memory_mb", float64(h.MemoryMB))
	}
	positive(p, "podman.timeout", c.Podman.Timeout)
}

// maxListed caps the node names quoted in one message.
const maxListed = 10

func (c *Config) validateGroups(p *problems) {
	indexMu.Lock()
	c.index = buildIndex(c.Groups)
	ix := c.index
	indexMu.Unlock()

	if len(c.Groups) == 0 {
		p.add("groups", "at least one node group required")
	}
	names := map[string]int{}
	owner := map[string]int{} // node -> first group listing it
	for i := range c.Groups {
		g := &c.Groups[i]
		key := fmt.Sprintf("groups[%d]", i)
		p.uniqueName(key, "groups", g.Name, i, names, "use letters, digits, '_', '.', '-', starting with a letter or digit, at most 63 characters")

		switch {
		case g.Nodes == "":
			p.add(key+".nodes", "required: a hostlist expression such as cloud[1-16]")
		case ix.errs[i] != nil:
			p.add(key+".nodes", "%v", ix.errs[i])
		default:
			var bad []string
			var badErr error
			local := make(map[string]struct{}, len(ix.nodes[i]))
			var twice []string
			clash := map[int][]string{}
			for _, n := range ix.nodes[i] {
				if err := hostlist.ValidName(n); err != nil {
					if badErr == nil {
						badErr = err
					}
					bad = append(bad, n)
					continue
				}
				if _, dup := local[n]; dup {
					twice = append(twice, n)
					continue
				}
				local[n] = struct{}{}
				if j, dup := owner[n]; dup {
					clash[j] = append(clash[j], n)
				} else {
					owner[n] = i
				}
			}
			if len(bad) > 0 {
				p.add(key+".nodes", "%d invalid node name(s) (%s): %v", len(bad), listNames(bad), badErr)
			}
			if len(twice) > 0 {
				p.add(key+".nodes", "listed more than once: %s", listNames(twice))
			}
			for _, j := range slices.Sorted(maps.Keys(clash)) {
				p.add(key+".nodes", "%d node(s) already in groups[%d] (%s): %s; a node belongs to one group",
					len(clash[j]), j, c.Groups[j].Name, hostlist.Compress(clash[j]))
			}
			if len(ix.nodes[i]) == 0 {
				p.add(key+".nodes", "%q: expands to no node", g.Nodes)
			}
		}

		switch g.Runtime {
		case RuntimePodman:
		case "":
			p.add(key+".runtime", "empty: call ApplyDefaults or set \"podman\"")
		default:
			p.add(key+".runtime", "%q: unknown runtime (known: podman)", g.Runtime)
		}
		if g.Partition == "" {
			if g.Name != "" {
				p.add(key+".partition", "empty: call ApplyDefaults or name the partition")
			}
		} else if !nameRe.MatchString(g.Partition) {
			p.add(key+".partition", "%q: use letters, digits, '_', '.', '-', starting with a letter or digit", g.Partition)
		}
		nonNegative(p, key+".cpus", float64(g.CPUs))
		nonNegative(p, key+".real_memory_mb", float64(g.RealMemoryMB))
		nonNegative(p, key+".weight", float64(g.Weight))
		if g.Gres != "" {
			for item := range strings.SplitSeq(g.Gres, ",") {
				if !gresItemRe.MatchString(item) {
					p.add(key+".gres", "%q: item %q is not name[:type][:count], e.g. gpu:2 or gpu:a100:4", g.Gres, item)
				}
			}
		}
		validateTemplate(p, key+".template", g)
	}
}

func validateTemplate(p *problems, key string, g *Group) {
	t := g.Template
	if strings.TrimSpace(t.Image) == "" {
		p.add(key+".image", "required")
	}
	nonNegative(p, key+".cpus", t.CPUs)
	nonNegative(p, key+".memory_mb", float64(t.MemoryMB))
	if strings.TrimSpace(t.Network) == "" {
		p.add(key+".network", "required: the Podman network node containers join")
	}
	for j, m := range t.Mounts {
		mk := fmt.Sprintf("%s.mounts[%d]", key, j)
		if !filepath.IsAbs(m.Source) {
			p.add(mk+".source", "%q: must be an absolute path", m.Source)
		}
		if !filepath.IsAbs(m.Destination) {
			p.add(mk+".destination", "%q: must be an absolute path", m.Destination)
		}
	}
	for j, d := range t.GPUs {
		if !cdiRe.MatchString(d) {
			p.add(fmt.Sprintf("%s.gpus[%d]", key, j), "%q: not a CDI device name vendor.com/class=name, e.g. nvidia.com/gpu=0", d)
		}
	}
	for j, d := range t.DNS {
		if d != runtime.DNSNone && net.ParseIP(d) == nil {
			p.add(fmt.Sprintf("%s.dns[%d]", key, j), "%q: want an IP address, or %q for no name server", d, runtime.DNSNone)
		} else if d == runtime.DNSNone && len(t.DNS) > 1 {
			p.add(fmt.Sprintf("%s.dns[%d]", key, j), "%q cannot be combined with name servers", d)
		}
	}
	for j, f := range t.Features {
		if !featureRe.MatchString(f) {
			p.add(fmt.Sprintf("%s.features[%d]", key, j), "%q: a Slurm feature is letters, digits, '_', '.', ':', '-'", f)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		if !envKeyRe.MatchString(k) {
			p.add(fmt.Sprintf("%s.env[%q]", key, k), "not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
		}
	}
}

func (c *Config) validateLog(p *problems) {
	switch f := c.Log.File; {
	case f == LogStderr, f == LogJournald:
	case f == "" || !filepath.IsAbs(f):
		p.add("log.file", "%q: must be stderr, journald or an absolute path", f)
	}
	if !slices.Contains(logLevels, c.Log.Level) {
		p.add("log.level", "%q: must be one of %s", c.Log.Level, strings.Join(logLevels, ", "))
	}
}

func validateHook(p *problems, key string, h HookConf) {
	positive(p, key+".timeout", h.Timeout)
	if h.Concurrency < 1 {
		p.add(key+".concurrency", "%d: must be at least 1", h.Concurrency)
	}
	nonNegative(p, key+".rate", h.Rate)
}

func (c *Config) validatePowerSave(p *problems) {
	ps := c.PowerSave
	if ps.BinDir == "" || !filepath.IsAbs(ps.BinDir) {
		p.add("power_save.bin_dir", "%q: must be an absolute path", ps.BinDir)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"power_save.resume_timeout", ps.ResumeTimeout},
		{"power_save.suspend_timeout", ps.SuspendTimeout},
		{"power_save.suspend_time", ps.SuspendTime},
	} {
		if positive(p, d.key, d.v) && d.v%time.Second != 0 {
			p.add(d.key, "%s: slurm.conf takes whole seconds", d.v)
		}
	}
	nonNegative(p, "power_save.resume_rate", float64(ps.ResumeRate))
	nonNegative(p, "power_save.suspend_rate", float64(ps.SuspendRate))
	// Slurm kills the hooks after ResumeTimeout/SuspendTimeout: each hook
	// must finish (and mark failures) before that.
	if c.Resume.Timeout > 0 && ps.ResumeTimeout > 0 && c.Resume.Timeout >= ps.ResumeTimeout {
		p.add("resume.timeout", "%s: must be less than power_save.resume_timeout (%s), after which Slurm kills the hook", c.Resume.Timeout, ps.ResumeTimeout)
	}
	if c.Suspend.Timeout > 0 && ps.SuspendTimeout > 0 && c.Suspend.Timeout >= ps.SuspendTimeout {
		p.add("suspend.timeout", "%s: must be less than power_save.suspend_timeout (%s), after which Slurm kills the hook", c.Suspend.Timeout, ps.SuspendTimeout)
	}
}

// positive reports d <= 0 and says whether d is positive.
func positive(p *problems, key string, d time.Duration) bool {
	if d <= 0 {
		p.add(key, "%s: must be greater than 0", d)
		return false
	}
	return true
}

func nonNegative(p *problems, key string, v float64) {
	if v < 0 {
		p.add(key, "%v: must not be negative", v)
	}
}

// listNames quotes at most maxListed names.
func listNames(names []string) string {
	if len(names) <= maxListed {
		return strings.Join(names, ",")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxListed], ","), len(names)-maxListed)
}
