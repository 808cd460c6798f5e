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
	"strconv"
	"strings"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/fileperm"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/logging"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

var (
	clusterRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	featureRe = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	// imageNameRe is a changeable feature name slurmd's
	// node_features/helpers plugin accepts (_is_feature_valid: a letter
	// or '_', then letters, digits, '_', '.'; '=' left out).
	imageNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]{0,62}$`)
	envKeyRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// hostRe is a DNS host name: dot-separated labels of letters, digits
	// and inner hyphens.
	hostRe     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
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
// every group's hostlist and builds the config's Inventory.
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
	c.validateKubernetes(p)
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
	c.validateBreaker(p)
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
	} else {
		checkRESTURL(p, "slurm.rest_url", s.RESTURL)
	}
	if s.TokenFile == "" {
		if s.Backend == BackendREST {
			p.add("slurm.token_file", "required with backend rest: the file holding slurmrestd's JWT")
		}
	} else {
		checkSecretFile(p, "slurm.token_file", s.TokenFile)
		checkTokenTransport(p, s)
	}
	if s.Scontrol == "" {
		p.add("slurm.scontrol", "must not be empty (default \"scontrol\")")
	}
	positive(p, "slurm.timeout", s.Timeout)
	if s.ConfServer == "" {
		if len(c.Groups) > 0 {
			p.add("slurm.conf_server", "required: slurmctld as node containers reach it, host or host:port (every node container gets it as %s for configless slurmd)", runtime.EnvConfServer)
		}
	} else if err := checkConfServer(s.ConfServer); err != nil {
		p.add("slurm.conf_server", "%q: %v", s.ConfServer, err)
	}
}

// checkConfServer checks a slurmd --conf-server value: a host name or an
// IPv4 address, with an optional port 1-65535. slurmd splits the value at
// its first ':', so an IPv6 literal cannot be given.
func checkConfServer(v string) error {
	if strings.Contains(v, "://") {
		return errors.New("not a URL: write host or host:port")
	}
	if strings.Count(v, ":") > 1 || strings.HasPrefix(v, "[") {
		return errors.New("an IPv6 address cannot be given (slurmd splits host:port at the first ':'): use a host name")
	}
	host, port, hasPort := strings.Cut(v, ":")
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
			return fmt.Errorf("port %q: want a number 1-65535", port)
		}
	}
	if host == "" {
		return errors.New("no host: write host or host:port")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if !hostRe.MatchString(host) || len(host) > 253 {
		return fmt.Errorf("host %q: not a host name or IPv4 address", host)
	}
	return nil
}

// geteuid is os.Geteuid; tests replace it.
var geteuid = os.Geteuid

// checkSecretFile reports a file that is missing, not a regular file,
// group- or world-writable, world-readable, or owned by someone other than
// the process's user or root (a root process accepts any owner: admin
// commands run by root read the token the service user owns). Group read
// is allowed (0640 with the SlurmUser's group).
func checkSecretFile(p *problems, key, path string) {
	if !filepath.IsAbs(path) {
		p.add(key, "%q: must be an absolute path", path)
		return
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		p.add(key, "%v", err)
		return
	case !fi.Mode().IsRegular():
		p.add(key, "%s: not a regular file", path)
		return
	}
	for _, m := range fileperm.Problems(path, fi, fileperm.Rule{
		EUID: geteuid(), AnyOwnerIfRoot: true, Private: true, What: "the secret",
		ModeFix:  "chmod 0600 (or 0640 with the SlurmUser's group)",
		OwnerFix: "chown it to the user running slurm-elastic (or root)",
	}) {
		p.add(key, "%s", m)
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
			if h.KnownHosts != "" && !filepath.IsAbs(h.KnownHosts) {
				p.add(key+".known_hosts", "%q: must be an absolute path", h.KnownHosts)
			}
			switch h.HostKeyChecking {
			case "", "strict", "accept-new", "off":
			default:
				p.add(key+".host_key_checking", "%q: want strict (default), accept-new (trust on first use) or off", h.HostKeyChecking)
			}
		} else {
			if h.Identity != "" {
				p.add(key+".identity", "only used with ssh:// URIs; remove it or fix uri")
			}
			if h.KnownHosts != "" || h.HostKeyChecking != "" {
				p.add(key+".known_hosts", "known_hosts and host_key_checking are only used with ssh:// URIs; remove them or fix uri")
			}
		}
		seenGPU := map[string]bool{}
		for j, d := range h.GPUs {
			switch {
			case !cdiRe.MatchString(d):
				p.add(fmt.Sprintf("%s.gpus[%d]", key, j), "%q: not a CDI device name vendor.com/class=name, e.g. nvidia.com/gpu=0", d)
			case seenGPU[d]:
				p.add(fmt.Sprintf("%s.gpus[%d]", key, j), "%q: listed twice", d)
			case strings.HasSuffix(d, "=all"):
				p.add(fmt.Sprintf("%s.gpus[%d]", key, j), "%q: list each device: one given to a node is given to it alone", d)
			}
			seenGPU[d] = true
		}
		if h.ImagePullPolicy != "" && !slices.Contains(podmanPullPolicies, h.ImagePullPolicy) {
			p.add(key+".image_pull_policy", "%q: want never or missing (or leave it unset: podman.image_pull_policy)", h.ImagePullPolicy)
		}
		nonNegative(p, key+".max_nodes", float64(h.MaxNodes))
		nonNegative(p, key+".cpus", h.CPUs)
		nonNegative(p, key+".memory_mb", float64(h.MemoryMB))
	}
	positive(p, "podman.timeout", c.Podman.Timeout)
	if !slices.Contains(podmanPullPolicies, c.Podman.ImagePullPolicy) {
		p.add("podman.image_pull_policy", "%q: want never (the default: a host without the image is skipped for it) or missing (pull it there)", c.Podman.ImagePullPolicy)
	}
	positive(p, "podman.pull_timeout", c.Podman.PullTimeout)
	if c.Podman.HostCooldown < 0 {
		p.add("podman.host_cooldown", "%s: must not be negative (0: no cooldown)", c.Podman.HostCooldown)
	}
	most := 0
	for _, h := range c.Podman.Hosts {
		most = max(most, len(h.GPUs))
	}
	for i, g := range c.Groups {
		if n := g.Template.GPUCount; n > most && len(c.Podman.Hosts) > 0 && (g.Runtime == RuntimePodman || g.Runtime == "") {
			p.add(fmt.Sprintf("groups[%d].template.gpu_count", i), "%d: no podman host lists that many GPUs in podman.hosts[].gpus (most: %d)", n, most)
		}
	}
	// The key lives on the Podman hosts, which may be other machines: only
	// its form is checked here.
	if k := c.Podman.MungeKey; !filepath.IsAbs(k) {
		p.add("podman.munge_key", "%q: must be the absolute path of the cluster's munge key on each Podman host (default %s)", k, DefaultMungeKey)
	}
}

// maxListed caps the node names quoted in one message.
const maxListed = 10

func (c *Config) validateGroups(p *problems) {
	c.inventory = NewInventory(c.Groups)
	ix := c.inventory

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
		case RuntimePodman, RuntimeKubernetes:
		case "":
			p.add(key+".runtime", "empty: call ApplyDefaults or set \"podman\"")
		default:
			p.add(key+".runtime", "%q: unknown runtime (known: podman, kubernetes)", g.Runtime)
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
		validateImages(p, key, g)
		validateGroupKubernetes(p, key, g, ix.nodes[i])
	}
	// An image name is a changeable feature for slurmctld (one helpers.conf
	// for all groups): no group may have it as a static feature.
	static := map[string]int{}
	for i := range c.Groups {
		for _, f := range c.Groups[i].Template.Features {
			if _, ok := static[f]; !ok {
				static[f] = i
			}
		}
	}
	for i := range c.Groups {
		for j, im := range c.Groups[i].Images {
			if k, ok := static[im.Name]; ok && k != i {
				p.add(fmt.Sprintf("groups[%d].images[%d].name", i, j), "%q: a static feature of groups[%d] (%s) (template.features): an image name is a changeable feature in every group; rename one of them", im.Name, k, c.Groups[k].Name)
			}
		}
	}
}

// validateImages checks groups[i].images: each a valid, unique Slurm
// feature name that is none of the group's template.features, with an
// image reference.
func validateImages(p *problems, key string, g *Group) {
	seen := map[string]int{}
	for j, im := range g.Images {
		ik := fmt.Sprintf("%s.images[%d]", key, j)
		switch {
		case im.Name == "":
			p.add(ik+".name", "required: the feature users ask for with sbatch -C")
		case !imageNameRe.MatchString(im.Name):
			p.add(ik+".name", "%q: a changeable Slurm feature is a letter or '_', then letters, digits, '_' or '.', at most 63 characters", im.Name)
		case slices.Contains(g.Template.Features, im.Name):
			p.add(ik+".name", "%q: also in %s.template.features: an image name must not be a static feature of the group", im.Name, key)
		default:
			if k, dup := seen[im.Name]; dup {
				p.add(ik+".name", "%q: already used by %s.images[%d]", im.Name, key, k)
			} else {
				seen[im.Name] = j
			}
		}
		switch ref := strings.TrimSpace(im.Image); {
		case ref == "":
			p.add(ik+".image", "required: the image reference its nodes boot")
		case ref != im.Image || strings.ContainsAny(ref, " \t\n"):
			p.add(ik+".image", "%q: an image reference has no spaces", im.Image)
		}
	}
}

func validateTemplate(p *problems, key string, g *Group) {
	t := g.Template
	if strings.TrimSpace(t.Image) == "" {
		p.add(key+".image", "required")
	}
	nonNegative(p, key+".cpus", t.CPUs)
	nonNegative(p, key+".memory_mb", float64(t.MemoryMB))
	if strings.TrimSpace(t.Network) == "" && g.Runtime != RuntimeKubernetes {
		p.add(key+".network", "required: the Podman network node containers join")
	}
	for j, m := range t.Mounts {
		mk := fmt.Sprintf("%s.mounts[%d]", key, j)
		if !filepath.IsAbs(m.Source) {
			p.add(mk+".source", "%q: must be an absolute path", m.Source)
		}
		if !filepath.IsAbs(m.Destination) {
			p.add(mk+".destination", "%q: must be an absolute path", m.Destination)
		} else if filepath.Clean(m.Destination) == runtime.MungeKeyPath {
			p.add(mk+".destination", "%s: the runtime mounts the munge key there itself: remove this mount and set podman.munge_key to the key's path on the Podman hosts", runtime.MungeKeyPath)
		}
	}
	nonNegative(p, key+".gpu_count", float64(t.GPUCount))
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
		ek := fmt.Sprintf("%s.env[%q]", key, k)
		switch {
		case !envKeyRe.MatchString(k):
			p.add(ek, "not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
		case k == runtime.EnvConfServer:
			p.add(ek, "the runtime sets it from slurm.conf_server: remove it here and set slurm.conf_server")
		case k == runtime.EnvNode:
			p.add(ek, "the runtime sets it to each node's name (from nodes): remove it")
		case k == runtime.EnvImage:
			p.add(ek, "the runtime sets it to the name of the image a node boots (from images): remove it")
		}
	}
}

func (c *Config) validateLog(p *problems) {
	switch f := c.Log.File; {
	case f == logging.Stderr, f == logging.Journald:
	case f == "" || !filepath.IsAbs(f):
		p.add("log.file", "%q: must be stderr, journald or an absolute path", f)
	}
	if !slices.Contains(logLevels, c.Log.Level) {
		p.add("log.level", "%q: must be one of %s", c.Log.Level, strings.Join(logLevels, ", "))
	}
}

// validateHook checks one hook section; its timeout against the matching
// power_save timeout is checked by validatePowerSave.
func validateHook(p *problems, key string, h HookConf) {
	if h.Timeout < 0 {
		p.add(key+".timeout", "%s: must be greater than 0 (or left unset to follow power_save)", h.Timeout)
	}
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
	if sp := ps.SiteProlog; sp != "" {
		switch {
		case !filepath.IsAbs(sp) || strings.ContainsAny(sp, " \t\n"):
			p.add("power_save.site_prolog", "%q: must be an absolute path of a program (no arguments)", sp)
		case !ps.Prolog:
			p.add("power_save.site_prolog", "%q: is run by slurm-elastic-prolog, which power_save.prolog: false turns off: set PrologSlurmctld=%s in slurm.conf yourself and remove power_save.site_prolog", sp, sp)
		case filepath.Base(sp) == PrologProgram:
			p.add("power_save.site_prolog", "%q: is slurm-elastic-prolog itself, which would run itself for ever: name the site's own PrologSlurmctld, or remove the key", sp)
		}
	}
	if rp := ps.RebootProgram; rp != "" && (!filepath.IsAbs(rp) || strings.ContainsAny(rp, " \t\n\"'")) {
		p.add("power_save.reboot_program", "%q: must be an absolute path of a program on the nodes (no arguments), or \"\" to leave RebootProgram out", rp)
	}
	nonNegative(p, "power_save.resume_rate", float64(ps.ResumeRate))
	nonNegative(p, "power_save.suspend_rate", float64(ps.SuspendRate))
	// Slurm kills the hooks after ResumeTimeout/SuspendTimeout: each hook
	// must finish (and mark failures) before that.
	hookBelow(p, "resume", c.Resume.Timeout, "power_save.resume_timeout", ps.ResumeTimeout, "3/4", DerivedResumeTimeout(ps.ResumeTimeout))
	hookBelow(p, "suspend", c.Suspend.Timeout, "power_save.suspend_timeout", ps.SuspendTimeout, "5/6", DerivedSuspendTimeout(ps.SuspendTimeout))
}

// hookBelow reports hook+".timeout" (d) when it is not below the
// power_save timeout psKey (ps) it must stay under, naming both keys and
// the fix; derived is the value it takes when unset (share of ps). A zero
// d is reported only when ps is valid (else ps's own error says it all).
func hookBelow(p *problems, hook string, d time.Duration, psKey string, ps time.Duration, share string, derived time.Duration) {
	key := hook + ".timeout"
	switch {
	case ps <= 0 || d < 0:
	case d == 0:
		p.add(key, "0: not derived: call ApplyDefaults, or set it greater than 0 and less than %s (%s)", psKey, ps)
	case d >= ps:
		p.add(key, "%s: must be less than %s (%s), after which Slurm kills the hook: lower %s, raise %s, or remove %s to use %s of %s (%s)",
			d, psKey, ps, key, psKey, key, share, psKey, derived)
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

// podmanPullPolicies are the values of podman.image_pull_policy (Podman's
// own --pull names; "always" is left out: it would pull at every node
// start).
var podmanPullPolicies = []string{"never", "missing"}
