package conf

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// The node-side config of slurm-elastic-health. A compute node needs none
// of the head's settings (cluster, groups, Podman hosts and their SSH keys,
// the slurmrestd token): it reads its own file, /etc/slurm-elastic/health.yaml
// (packaging/health.yaml), with the same schema as config.yaml, and
// ValidateHealth checks only the sections the daemon uses.

// DefaultHealthPath is the health daemon's config file unless --config or
// SLURM_ELASTIC_HEALTH_CONFIG says otherwise.
const DefaultHealthPath = "/etc/slurm-elastic/health.yaml"

// EnvHealthConfig names the health daemon's config file when the caller
// passes no path. It is separate from EnvConfig so that a head's setting
// never points the node daemon at the head's file.
const EnvHealthConfig = "SLURM_ELASTIC_HEALTH_CONFIG"

// DefaultHealthLog is the health daemon's log.file when its config leaves
// it unset.
const DefaultHealthLog = "/var/log/slurm-elastic/slurm-elastic-health.log"

// HealthPath returns the health daemon's config file: flag when it is not
// empty, else $SLURM_ELASTIC_HEALTH_CONFIG when set, else
// DefaultHealthPath. Never blocks; idempotent.
func HealthPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv(EnvHealthConfig); p != "" {
		return p
	}
	return DefaultHealthPath
}

// LoadHealth reads the health daemon's config file at HealthPath(path) as
// Load does (same schema, environment overrides and defaults, except that
// log.file defaults to DefaultHealthLog). Sections the daemon does not use
// may be present: they are parsed (an unknown key or a wrong type anywhere
// is still an error naming key and file, so a typo is never ignored) but
// not validated by ValidateHealth. It blocks on reading one file and is
// idempotent.
func LoadHealth(path string) (*Config, error) {
	path = HealthPath(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	def := baseDefault()
	def.Log.File = DefaultHealthLog
	return loadWith(path, data, def)
}

// ValidateHealth checks what slurm-elastic-health uses and nothing else:
// slurm (how to drain: the backend, scontrol, the timeout; rest_url and
// token_file only when the backend may use REST, and the token file must
// exist only with backend rest), log and health. Every problem is returned
// at once as *FieldError naming c.File and the key. Cluster, groups, Podman
// hosts and the hook, power_save and daemon sections are not checked. It
// stats the token file with backend rest; idempotent.
func (c *Config) ValidateHealth() error {
	p := &problems{file: c.File}
	c.validateSlurmClient(p)
	c.validateLog(p)
	c.validateHealth(p)
	return errors.Join(p.errs...)
}

// HeadKeys lists the head-only keys set in c (cluster, podman.hosts,
// groups): the health daemon ignores them, and says so when it starts.
// Never blocks.
func (c *Config) HeadKeys() []string {
	var out []string
	if c.Cluster != "" {
		out = append(out, "cluster")
	}
	if len(c.Podman.Hosts) > 0 {
		out = append(out, "podman.hosts")
	}
	if len(c.Groups) > 0 {
		out = append(out, "groups")
	}
	return out
}

// validateSlurmClient checks the slurm section as a client on a compute
// node uses it: with backend scontrol the REST keys are not used and not
// checked; with auto a token file that is missing is no error (auto falls
// back to scontrol), one readable by others is.
func (c *Config) validateSlurmClient(p *problems) {
	s := c.Slurm
	switch s.Backend {
	case BackendAuto, BackendREST, BackendScontrol:
	default:
		p.add("slurm.backend", "%q: must be one of auto, rest, scontrol (scontrol on compute nodes)", s.Backend)
	}
	if s.Backend != BackendScontrol {
		if s.RESTURL == "" {
			if s.Backend == BackendREST {
				p.add("slurm.rest_url", "required with backend rest: http://host:6820 or unix:///path/to/slurmrestd.sock (or use backend scontrol)")
			}
		} else {
			checkRESTURL(p, "slurm.rest_url", s.RESTURL)
		}
		switch {
		case s.Backend == BackendREST && s.TokenFile == "":
			if u, err := url.Parse(s.RESTURL); err != nil || u.Scheme != "unix" {
				p.add("slurm.token_file", "required with backend rest: the file holding slurmrestd's JWT (or use backend scontrol, which needs no token)")
			}
		case s.Backend == BackendREST:
			checkSecretFile(p, "slurm.token_file", s.TokenFile)
			checkTokenTransport(p, s)
		case s.TokenFile != "" && s.RESTURL != "":
			if _, err := os.Stat(s.TokenFile); err == nil || !filepath.IsAbs(s.TokenFile) {
				checkSecretFile(p, "slurm.token_file", s.TokenFile)
				checkTokenTransport(p, s)
			}
		}
	}
	if s.Backend != BackendREST && s.Scontrol == "" {
		p.add("slurm.scontrol", "must not be empty (default \"scontrol\")")
	}
	positive(p, "slurm.timeout", s.Timeout)
}

// checkRESTURL reports a slurmrestd URL that is not http(s)://host[:port]
// or unix:///absolute/path.
// checkTokenTransport refuses sending the JWT over http:// to a host that
// is not loopback unless slurm.allow_insecure_http is set: anyone on the
// path could read and replay it. https:// and unix:// are fine.
func checkTokenTransport(p *problems, s SlurmConf) {
	if s.TokenFile == "" || s.RESTURL == "" || s.AllowInsecureHTTP {
		return
	}
	u, err := url.Parse(s.RESTURL)
	if err != nil || u.Scheme != "http" || u.Host == "" || isLoopbackHost(u.Hostname()) {
		return
	}
	p.add("slurm.rest_url", "%q: the JWT from slurm.token_file would cross the network unencrypted: use https://%s (or a unix:// socket, or a loopback address), or set slurm.allow_insecure_http: true to accept the risk",
		s.RESTURL, u.Host)
}

// isLoopbackHost reports whether host (no port) is "localhost" or a
// loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkRESTURL(p *problems, key, raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		p.add(key, "%q: %v", raw, err)
		return
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			p.add(key, "%q: no host: write %s://host:port", raw, u.Scheme)
		}
	case "unix":
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			p.add(key, "%q: write unix:///absolute/path/to/slurmrestd.sock", raw)
		}
	default:
		p.add(key, "%q: scheme must be http, https or unix", raw)
	}
}
