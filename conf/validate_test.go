package conf_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
)

const testFile = "/etc/slurm-elastic/config.yaml"

// validConfig returns a config that passes Validate; cases break one thing.
func validConfig() *conf.Config {
	c := conf.Default()
	c.File = testFile
	c.Cluster = "test"
	c.Slurm.Backend = conf.BackendScontrol
	c.Slurm.ConfServer = "head"
	c.Podman.Hosts = []conf.PodmanHost{{Name: "local", URI: "unix:///run/podman/podman.sock", GPUs: []string{"nvidia.com/gpu=0"}}}
	c.Groups = []conf.Group{
		{Name: "cpu", Nodes: "cpu[1-4]", CPUs: 2, RealMemoryMB: 1024, Template: conf.Template{
			Image: "localhost/node:1", Network: "slurm",
			Mounts: []conf.Mount{{Source: "/etc/slurm", Destination: "/etc/slurm", ReadOnly: true}},
			Env:    map[string]string{"TZ": "UTC"}, Features: []string{"cpu"},
		}},
		{Name: "gpu", Nodes: "gpu[1-2]", Gres: "gpu:1", Template: conf.Template{
			Image: "localhost/node:1", Network: "slurm", GPUCount: 1,
		}},
	}
	c.ApplyDefaults()
	return &c
}

// secretFile writes a file with mode perm and returns its path.
func secretFile(t *testing.T, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateOK(t *testing.T) {
	tok := secretFile(t, 0o640)
	key := secretFile(t, 0o600)
	for name, mut := range map[string]func(*conf.Config){
		"as built": func(*conf.Config) {},
		"images": func(c *conf.Config) {
			// The same names in two groups; '_' and '.' are feature characters.
			c.Groups[0].Images = []conf.Image{{Name: "rocky9", Image: "localhost/rocky:9"}, {Name: "cuda_12.4", Image: "localhost/cuda:12.4"}}
			c.Groups[1].Images = []conf.Image{{Name: "rocky9", Image: "localhost/rocky:9"}}
		},
		"rest 0640 token": func(c *conf.Config) {
			c.Slurm.Backend = "rest"
			c.Slurm.RESTURL = "https://h:6820"
			c.Slurm.TokenFile = tok
		},
		"rest https remote": func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = "rest", "https://head.example.org:6820", tok
		},
		"rest http loopback": func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = "rest", "http://127.0.0.1:6820", tok
		},
		"rest http localhost": func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = "rest", "http://localhost:6820", tok
		},
		"rest http ::1": func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = "rest", "http://[::1]:6820", tok
		},
		"rest http remote, explicitly allowed": func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = "rest", "http://head:6820", tok
			c.Slurm.AllowInsecureHTTP = true
		},
		"auto unix socket": func(c *conf.Config) { c.Slurm.Backend = "auto"; c.Slurm.RESTURL = "unix:///run/slurmrestd.sock" },
		"ssh host": func(c *conf.Config) {
			c.Podman.Hosts[0].URI = "ssh://slurm@n1:22/run/podman/podman.sock"
			c.Podman.Hosts[0].Identity = key
		},
		"tcp host":         func(c *conf.Config) { c.Podman.Hosts[0].URI = "tcp://127.0.0.1:8080" },
		"shared partition": func(c *conf.Config) { c.Groups[1].Partition = "cpu" },
		"log to journald":  func(c *conf.Config) { c.Log.File = "journald" },
		"log to stderr":    func(c *conf.Config) { c.Log.File = "stderr" },
		"gres with type":   func(c *conf.Config) { c.Groups[1].Gres = "gpu:a100:2,shard:8" },
		"host gpus": func(c *conf.Config) {
			c.Podman.Hosts[0].GPUs = []string{"nvidia.com/gpu=0", "amd.com/gpu=1", "nvidia.com/gpu=2"}
		},
		"ssh known hosts": func(c *conf.Config) {
			c.Podman.Hosts[0].URI, c.Podman.Hosts[0].Identity = "ssh://root@h1/run/podman/podman.sock", key
			c.Podman.Hosts[0].KnownHosts, c.Podman.Hosts[0].HostKeyChecking = "/etc/slurm-elastic/known_hosts", "accept-new"
		},
		"no host cooldown":     func(c *conf.Config) { c.Podman.HostCooldown = 0 },
		"conf server ip":       func(c *conf.Config) { c.Slurm.ConfServer = "10.0.0.2" },
		"conf server port":     func(c *conf.Config) { c.Slurm.ConfServer = "head-1.example.org:6817" },
		"conf server max port": func(c *conf.Config) { c.Slurm.ConfServer = "10.0.0.2:65535" },
		"munge key elsewhere":  func(c *conf.Config) { c.Podman.MungeKey = "/srv/keys/munge.key" },
		"mount below the key's dir": func(c *conf.Config) {
			c.Groups[0].Template.Mounts = append(c.Groups[0].Template.Mounts, conf.Mount{Source: "/srv/x", Destination: "/run/slurm-elastic/other"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := validConfig()
			mut(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// A secret file must be owned by the process's user or root; a root
// process accepts any owner (admin commands run by root read the token the
// service user owns), but never a group- or world-writable file.
func TestSecretFileOwner(t *testing.T) {
	p := secretFile(t, 0o600)
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Skipf("chown: %v (needs root)", err)
	}
	c := validConfig()
	c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = "rest", "https://h:6820", p
	for _, tc := range []struct {
		euid int
		want string // "" = valid
	}{
		{0, ""},
		{65534, ""},
		{1000, "owned by uid 65534"},
	} {
		restore := conf.SetEUID(tc.euid)
		err := c.Validate()
		restore()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("euid %d: %v", tc.euid, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "chown")):
			t.Errorf("euid %d: got %v, want an error naming %s, %q and the chown fix", tc.euid, err, p, tc.want)
		}
	}
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer conf.SetEUID(1000)()
	if err := c.Validate(); err != nil {
		t.Errorf("root-owned, euid 1000: %v", err)
	}
}

func TestValidateErrors(t *testing.T) {
	dir := t.TempDir()
	worldReadable := secretFile(t, 0o644)
	okKey := secretFile(t, 0o600)
	groupWritable := secretFile(t, 0o660)
	worldWritable := secretFile(t, 0o602)
	otherOwned := secretFile(t, 0o600)
	if err := os.Chown(otherOwned, 65534, 65534); err != nil {
		t.Skipf("chown: %v (needs root)", err)
	}
	absent := filepath.Join(dir, "absent")

	type tc struct {
		name string
		mut  func(*conf.Config)
		keys []string // every key reported, sorted
		msg  string   // a part of the first message
	}
	cases := []tc{
		{"cluster required", func(c *conf.Config) { c.Cluster = "" }, []string{"cluster"}, "required"},
		{"cluster chars", func(c *conf.Config) { c.Cluster = "My_Cluster" }, []string{"cluster"}, "[a-z0-9-]"},
		{"cluster length", func(c *conf.Config) { c.Cluster = strings.Repeat("a", 41) }, []string{"cluster"}, "40"},
		{"backend enum", func(c *conf.Config) { c.Slurm.Backend = "grpc" }, []string{"slurm.backend"}, "auto, rest, scontrol"},
		{"rest needs url and token", func(c *conf.Config) { c.Slurm.Backend = "rest" }, []string{"slurm.rest_url", "slurm.token_file"}, "required"},
		{"rest_url scheme", func(c *conf.Config) { c.Slurm.RESTURL = "ftp://h:1" }, []string{"slurm.rest_url"}, "http, https or unix"},
		{"rest_url host", func(c *conf.Config) { c.Slurm.RESTURL = "http://" }, []string{"slurm.rest_url"}, "no host"},
		{"rest_url unix relative", func(c *conf.Config) { c.Slurm.RESTURL = "unix://run/x.sock" }, []string{"slurm.rest_url"}, "unix:///"},
		{"token missing", func(c *conf.Config) { c.Slurm.TokenFile = absent }, []string{"slurm.token_file"}, "no such file"},
		{"token world-readable", func(c *conf.Config) { c.Slurm.TokenFile = worldReadable }, []string{"slurm.token_file"}, "0644"},
		{"token group-writable", func(c *conf.Config) { c.Slurm.TokenFile = groupWritable }, []string{"slurm.token_file"}, "0660"},
		{"token world-writable", func(c *conf.Config) { c.Slurm.TokenFile = worldWritable }, []string{"slurm.token_file"}, "chmod 0600"},
		{"identity group-writable", func(c *conf.Config) {
			c.Podman.Hosts[0].URI = "ssh://u@h/run/podman/podman.sock"
			c.Podman.Hosts[0].Identity = groupWritable
		}, []string{"podman.hosts[0].identity"}, "group- or world-writable"},
		{"jwt over http to a remote host", func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = "rest", "http://head:6820", okKey
		}, []string{"slurm.rest_url"}, "slurm.allow_insecure_http"},
		{"jwt over http to a remote address (auto)", func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = "auto", "http://10.0.0.2:6820", okKey
		}, []string{"slurm.rest_url"}, "https://"},
		{"token relative", func(c *conf.Config) { c.Slurm.TokenFile = "jwt" }, []string{"slurm.token_file"}, "absolute"},
		{"token is a directory", func(c *conf.Config) { c.Slurm.TokenFile = dir }, []string{"slurm.token_file"}, "regular file"},
		{"scontrol empty", func(c *conf.Config) { c.Slurm.Scontrol = "" }, []string{"slurm.scontrol"}, "empty"},
		{"slurm timeout", func(c *conf.Config) { c.Slurm.Timeout = 0 }, []string{"slurm.timeout"}, "greater than 0"},
		{"no podman host", func(c *conf.Config) { c.Podman.Hosts = nil }, []string{"podman.hosts"}, "groups[0] (cpu), groups[1] (gpu)"},
		{"host name required", func(c *conf.Config) { c.Podman.Hosts[0].Name = "" }, []string{"podman.hosts[0].name"}, "required"},
		{"host name chars", func(c *conf.Config) { c.Podman.Hosts[0].Name = "a b" }, []string{"podman.hosts[0].name"}, "letters"},
		{"host name unique", func(c *conf.Config) {
			c.Podman.Hosts = append(c.Podman.Hosts, conf.PodmanHost{Name: "local", URI: "tcp://h:1"})
		}, []string{"podman.hosts[1].name"}, "podman.hosts[0]"},
		{"host uri required", func(c *conf.Config) { c.Podman.Hosts[0].URI = "" }, []string{"podman.hosts[0].uri"}, "required"},
		{"host uri scheme", func(c *conf.Config) { c.Podman.Hosts[0].URI = "http://h:1" }, []string{"podman.hosts[0].uri"}, "unix, tcp or ssh"},
		{"host tcp port", func(c *conf.Config) { c.Podman.Hosts[0].URI = "tcp://h" }, []string{"podman.hosts[0].uri"}, "host:port"},
		{"host unix relative", func(c *conf.Config) { c.Podman.Hosts[0].URI = "unix://podman.sock" }, []string{"podman.hosts[0].uri"}, "unix:///"},
		{"host ssh path", func(c *conf.Config) {
			c.Podman.Hosts[0].URI = "ssh://u@h"
			c.Podman.Hosts[0].Identity = okKey
		}, []string{"podman.hosts[0].uri"}, "podman.sock"},
		{"ssh needs identity", func(c *conf.Config) { c.Podman.Hosts[0].URI = "ssh://u@h/run/podman/podman.sock" }, []string{"podman.hosts[0].identity"}, "required"},
		{"ssh identity missing", func(c *conf.Config) {
			c.Podman.Hosts[0].URI = "ssh://u@h/run/podman/podman.sock"
			c.Podman.Hosts[0].Identity = absent
		}, []string{"podman.hosts[0].identity"}, "no such file"},
		{"identity without ssh", func(c *conf.Config) { c.Podman.Hosts[0].Identity = okKey }, []string{"podman.hosts[0].identity"}, "ssh://"},
		{"host capacity negative", func(c *conf.Config) {
			c.Podman.Hosts[0].MaxNodes, c.Podman.Hosts[0].CPUs, c.Podman.Hosts[0].MemoryMB = -1, -1, -1
		}, []string{"podman.hosts[0].cpus", "podman.hosts[0].max_nodes", "podman.hosts[0].memory_mb"}, "negative"},
		{"podman timeout", func(c *conf.Config) { c.Podman.Timeout = -time.Second }, []string{"podman.timeout"}, "greater than 0"},
		{"conf server required", func(c *conf.Config) { c.Slurm.ConfServer = "" }, []string{"slurm.conf_server"}, "required: slurmctld as node containers reach it"},
		{"conf server port zero", func(c *conf.Config) { c.Slurm.ConfServer = "head:0" }, []string{"slurm.conf_server"}, `port "0"`},
		{"conf server port too big", func(c *conf.Config) { c.Slurm.ConfServer = "head:65536" }, []string{"slurm.conf_server"}, "1-65535"},
		{"conf server port empty", func(c *conf.Config) { c.Slurm.ConfServer = "head:" }, []string{"slurm.conf_server"}, "1-65535"},
		{"conf server port name", func(c *conf.Config) { c.Slurm.ConfServer = "head:slurmctld" }, []string{"slurm.conf_server"}, "1-65535"},
		{"conf server no host", func(c *conf.Config) { c.Slurm.ConfServer = ":6817" }, []string{"slurm.conf_server"}, "no host"},
		{"conf server url", func(c *conf.Config) { c.Slurm.ConfServer = "http://head" }, []string{"slurm.conf_server"}, "not a URL"},
		{"conf server host chars", func(c *conf.Config) { c.Slurm.ConfServer = "head_1 " }, []string{"slurm.conf_server"}, "not a host name"},
		{"conf server list", func(c *conf.Config) { c.Slurm.ConfServer = "head1,head2" }, []string{"slurm.conf_server"}, "not a host name"},
		{"conf server ipv6", func(c *conf.Config) { c.Slurm.ConfServer = "fd00::2" }, []string{"slurm.conf_server"}, "IPv6"},
		{"conf server ipv6 bracketed", func(c *conf.Config) { c.Slurm.ConfServer = "[fd00::2]:6817" }, []string{"slurm.conf_server"}, "IPv6"},
		{"munge key relative", func(c *conf.Config) { c.Podman.MungeKey = "munge.key" }, []string{"podman.munge_key"}, "absolute path"},
		{"munge key empty", func(c *conf.Config) { c.Podman.MungeKey = "" }, []string{"podman.munge_key"}, "/etc/munge/munge.key"},
		{"template sets conf server", func(c *conf.Config) { c.Groups[0].Template.Env["SLURM_CONF_SERVER"] = "head" },
			[]string{`groups[0].template.env["SLURM_CONF_SERVER"]`}, "set slurm.conf_server"},
		{"template sets node name", func(c *conf.Config) { c.Groups[1].Template.Env = map[string]string{"SLURM_ELASTIC_NODE": "x"} },
			[]string{`groups[1].template.env["SLURM_ELASTIC_NODE"]`}, "node's name"},
		{"template mounts the munge key", func(c *conf.Config) {
			c.Groups[0].Template.Mounts = append(c.Groups[0].Template.Mounts,
				conf.Mount{Source: "/etc/munge/munge.key", Destination: "/run/slurm-elastic//munge.key/", ReadOnly: true})
		}, []string{"groups[0].template.mounts[1].destination"}, "podman.munge_key"},
		{"no groups", func(c *conf.Config) { c.Groups = nil }, []string{"groups"}, "at least one"},
		{"no groups, no hosts", func(c *conf.Config) { c.Groups, c.Podman.Hosts = nil, nil }, []string{"groups"}, "at least one"},
		{"no groups, no conf server", func(c *conf.Config) { c.Groups, c.Slurm.ConfServer = nil, "" }, []string{"groups"}, "at least one"},
		{"group name required", func(c *conf.Config) { c.Groups[1].Name = "" }, []string{"groups[1].name"}, "required"},
		{"group name chars", func(c *conf.Config) { c.Groups[1].Name = "g/1"; c.Groups[1].Partition = "gpu" }, []string{"groups[1].name"}, "letters"},
		{"group name unique", func(c *conf.Config) { c.Groups[1].Name = "cpu" }, []string{"groups[1].name"}, "groups[0]"},
		{"nodes required", func(c *conf.Config) { c.Groups[0].Nodes = "" }, []string{"groups[0].nodes"}, "required"},
		{"nodes invalid", func(c *conf.Config) { c.Groups[0].Nodes = "cpu[1-" }, []string{"groups[0].nodes"}, "cpu[1-"},
		{"nodes too many", func(c *conf.Config) { c.Groups[0].Nodes = "n[0-70000]" }, []string{"groups[0].nodes"}, "n[0-70000]"},
		{"nodes overlap", func(c *conf.Config) { c.Groups[1].Nodes = "gpu1,cpu[3-5]" }, []string{"groups[1].nodes"}, "2 node(s) already in groups[0] (cpu): cpu[3-4]"},
		{"nodes twice", func(c *conf.Config) { c.Groups[0].Nodes = "cpu[1-2],cpu1" }, []string{"groups[0].nodes"}, "more than once: cpu1"},
		{"runtime unknown", func(c *conf.Config) { c.Groups[0].Runtime = "docker" }, []string{"groups[0].runtime"}, "docker"},
		{"runtime empty", func(c *conf.Config) { c.Groups[0].Runtime = "" }, []string{"groups[0].runtime"}, "ApplyDefaults"},
		{"partition chars", func(c *conf.Config) { c.Groups[0].Partition = "a=b" }, []string{"groups[0].partition"}, "a=b"},
		{"group numbers negative", func(c *conf.Config) {
			c.Groups[0].CPUs, c.Groups[0].RealMemoryMB, c.Groups[0].Weight = -1, -1, -1
		}, []string{"groups[0].cpus", "groups[0].real_memory_mb", "groups[0].weight"}, "negative"},
		{"reimage_after negative", func(c *conf.Config) { c.Daemon.ReimageAfter = -time.Second }, []string{"daemon.reimage_after"}, "must not be negative"},
		{"gres empty item", func(c *conf.Config) { c.Groups[1].Gres = "gpu:1," }, []string{"groups[1].gres"}, "name[:type][:count]"},
		{"gres space", func(c *conf.Config) { c.Groups[1].Gres = "gpu 1" }, []string{"groups[1].gres"}, "name[:type][:count]"},
		{"image required", func(c *conf.Config) { c.Groups[1].Template.Image = "" }, []string{"groups[1].template.image"}, "required"},
		{"template limits negative", func(c *conf.Config) {
			c.Groups[0].Template.CPUs, c.Groups[0].Template.MemoryMB = -0.5, -1
		}, []string{"groups[0].template.cpus", "groups[0].template.memory_mb"}, "negative"},
		{"network required", func(c *conf.Config) { c.Groups[0].Template.Network = " " }, []string{"groups[0].template.network"}, "required"},
		{"mount relative", func(c *conf.Config) {
			c.Groups[0].Template.Mounts = append(c.Groups[0].Template.Mounts, conf.Mount{Source: "data", Destination: "data"})
		}, []string{"groups[0].template.mounts[1].destination", "groups[0].template.mounts[1].source"}, "absolute"},
		{"gpu not CDI", func(c *conf.Config) { c.Podman.Hosts[0].GPUs = []string{"nvidia.com/gpu=0", "gpu0"} }, []string{"podman.hosts[0].gpus[1]"}, "vendor.com/class=name"},
		{"gpu without name", func(c *conf.Config) { c.Podman.Hosts[0].GPUs = []string{"nvidia.com/gpu"} }, []string{"podman.hosts[0].gpus[0]"}, "CDI"},
		{"gpu without vendor domain", func(c *conf.Config) { c.Podman.Hosts[0].GPUs = []string{"nvidia/gpu=0"} }, []string{"podman.hosts[0].gpus[0]"}, "CDI"},
		{"gpu twice", func(c *conf.Config) { c.Podman.Hosts[0].GPUs = []string{"nvidia.com/gpu=0", "nvidia.com/gpu=0"} }, []string{"podman.hosts[0].gpus[1]"}, "twice"},
		{"gpu all", func(c *conf.Config) { c.Podman.Hosts[0].GPUs = []string{"nvidia.com/gpu=all"} }, []string{"podman.hosts[0].gpus[0]"}, "each device"},
		{"more gpus than any host", func(c *conf.Config) { c.Groups[1].Template.GPUCount = 2 }, []string{"groups[1].template.gpu_count"}, "most: 1"},
		{"negative gpu count", func(c *conf.Config) { c.Groups[1].Template.GPUCount = -1 }, []string{"groups[1].template.gpu_count"}, ""},
		{"negative host cooldown", func(c *conf.Config) { c.Podman.HostCooldown = -time.Second }, []string{"podman.host_cooldown"}, "negative"},
		{"bad pull policy", func(c *conf.Config) { c.Podman.ImagePullPolicy = "always" }, []string{"podman.image_pull_policy"}, "never"},
		{"empty pull policy", func(c *conf.Config) { c.Podman.ImagePullPolicy = "" }, []string{"podman.image_pull_policy"}, "missing"},
		{"bad host pull policy", func(c *conf.Config) { c.Podman.Hosts[0].ImagePullPolicy = "IfNotPresent" }, []string{"podman.hosts[0].image_pull_policy"}, "never or missing"},
		{"zero pull timeout", func(c *conf.Config) { c.Podman.PullTimeout = 0 }, []string{"podman.pull_timeout"}, ""},
		{"bad host key checking", func(c *conf.Config) {
			c.Podman.Hosts[0].URI, c.Podman.Hosts[0].Identity, c.Podman.Hosts[0].HostKeyChecking = "ssh://root@h1/run/podman/podman.sock", okKey, "yes"
		}, []string{"podman.hosts[0].host_key_checking"}, "accept-new"},
		{"relative known hosts", func(c *conf.Config) {
			c.Podman.Hosts[0].URI, c.Podman.Hosts[0].Identity, c.Podman.Hosts[0].KnownHosts = "ssh://root@h1/run/podman/podman.sock", okKey, "known_hosts"
		}, []string{"podman.hosts[0].known_hosts"}, "absolute"},
		{"known hosts without ssh", func(c *conf.Config) { c.Podman.Hosts[0].KnownHosts = "/etc/ssh/ssh_known_hosts" }, []string{"podman.hosts[0].known_hosts"}, "ssh://"},
		{"feature chars", func(c *conf.Config) { c.Groups[0].Template.Features = []string{"a,b"} }, []string{"groups[0].template.features[0]"}, "feature"},
		{"env key", func(c *conf.Config) { c.Groups[0].Template.Env = map[string]string{"1BAD": "x", "A-B": "y", "OK": "z"} },
			[]string{`groups[0].template.env["1BAD"]`, `groups[0].template.env["A-B"]`}, "environment variable"},
		{"log level", func(c *conf.Config) { c.Log.Level = "verbose" }, []string{"log.level"}, "debug, info, warn, error"},
		{"log file relative", func(c *conf.Config) { c.Log.File = "x.log" }, []string{"log.file"}, "absolute"},
		{"state dir", func(c *conf.Config) { c.StateDir = "" }, []string{"state_dir"}, "absolute"},
		{"resume timeout zero", func(c *conf.Config) { c.Resume.Timeout = 0 }, []string{"resume.timeout"}, "greater than 0"},
		{"resume timeout vs slurm", func(c *conf.Config) { c.Resume.Timeout = 120 * time.Second }, []string{"resume.timeout"}, "less than power_save.resume_timeout (2m0s)"},
		{"suspend timeout vs slurm", func(c *conf.Config) { c.PowerSave.SuspendTimeout = 50 * time.Second }, []string{"suspend.timeout"}, "less than power_save.suspend_timeout"},
		{"concurrency", func(c *conf.Config) { c.Resume.Concurrency = 0; c.Suspend.Concurrency = -1 }, []string{"resume.concurrency", "suspend.concurrency"}, "at least 1"},
		{"rate", func(c *conf.Config) { c.Suspend.Rate = -1 }, []string{"suspend.rate"}, "negative"},
		{"bin dir", func(c *conf.Config) { c.PowerSave.BinDir = "bin" }, []string{"power_save.bin_dir"}, "absolute"},
		{"reboot program relative", func(c *conf.Config) { c.PowerSave.RebootProgram = "reboot" }, []string{"power_save.reboot_program"}, "absolute"},
		{"reboot program with arguments", func(c *conf.Config) { c.PowerSave.RebootProgram = "/sbin/reboot -f" }, []string{"power_save.reboot_program"}, "no arguments"},
		{"power save timeouts", func(c *conf.Config) {
			c.PowerSave.ResumeTimeout, c.PowerSave.SuspendTimeout, c.PowerSave.SuspendTime = 0, -1, 0
		}, []string{"power_save.resume_timeout", "power_save.suspend_time", "power_save.suspend_timeout"}, "greater than 0"},
		{"whole seconds", func(c *conf.Config) { c.PowerSave.SuspendTime = 1500 * time.Millisecond }, []string{"power_save.suspend_time"}, "whole seconds"},
		{"rates", func(c *conf.Config) { c.PowerSave.ResumeRate, c.PowerSave.SuspendRate = -1, -2 }, []string{"power_save.resume_rate", "power_save.suspend_rate"}, "negative"},
		{"image name required", func(c *conf.Config) { c.Groups[0].Images = []conf.Image{{Image: "r:1"}} }, []string{"groups[0].images[0].name"}, "required"},
		{"image name with a dash", func(c *conf.Config) { c.Groups[0].Images = []conf.Image{{Name: "rocky-9", Image: "r:1"}} }, []string{"groups[0].images[0].name"}, "letter or '_'"},
		{"image name starts with a digit", func(c *conf.Config) { c.Groups[0].Images = []conf.Image{{Name: "9rocky", Image: "r:1"}} }, []string{"groups[0].images[0].name"}, "letter or '_'"},
		{"image name an operator", func(c *conf.Config) { c.Groups[0].Images = []conf.Image{{Name: "a|b", Image: "r:1"}} }, []string{"groups[0].images[0].name"}, "letter or '_'"},
		{"image name twice", func(c *conf.Config) {
			c.Groups[0].Images = []conf.Image{{Name: "rocky9", Image: "r:1"}, {Name: "rocky9", Image: "r:2"}}
		}, []string{"groups[0].images[1].name"}, "already used by groups[0].images[0]"},
		{"image name is a feature of the group", func(c *conf.Config) { c.Groups[0].Images = []conf.Image{{Name: "cpu", Image: "r:1"}} }, []string{"groups[0].images[0].name"}, "template.features"},
		{"image name is a feature of another group", func(c *conf.Config) {
			c.Groups[1].Images = []conf.Image{{Name: "cpu", Image: "r:1"}}
		}, []string{"groups[1].images[0].name"}, "static feature of groups[0] (cpu)"},
		{"image reference required", func(c *conf.Config) { c.Groups[0].Images = []conf.Image{{Name: "rocky9", Image: " "}} }, []string{"groups[0].images[0].image"}, "required"},
		{"image reference with a space", func(c *conf.Config) { c.Groups[0].Images = []conf.Image{{Name: "rocky9", Image: "r:1 --privileged"}} }, []string{"groups[0].images[0].image"}, "no spaces"},
		{"image env is the runtime's", func(c *conf.Config) { c.Groups[0].Template.Env["SLURM_ELASTIC_IMAGE"] = "x" }, []string{`groups[0].template.env["SLURM_ELASTIC_IMAGE"]`}, "the runtime sets it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig()
			c.mut(cfg)
			err := cfg.Validate()
			fes := fieldErrors(t, err)
			if got := keysOf(fes); !slices.Equal(got, c.keys) {
				t.Fatalf("keys %v, want %v\n%v", got, c.keys, err)
			}
			for _, fe := range fes {
				prefix := testFile + ": " + fe.Key + ": "
				if !strings.HasPrefix(fe.Error(), prefix) {
					t.Errorf("message %q does not start with %q", fe.Error(), prefix)
				}
			}
			if !strings.Contains(fes[0].Msg, c.msg) {
				t.Errorf("message %q does not contain %q", fes[0].Error(), c.msg)
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := validConfig()
	c.Cluster = ""
	c.Log.Level = "loud"
	c.Groups[1].Template.Image = ""
	c.Groups[0].Template.Network = ""
	err := c.Validate()
	want := []string{"cluster", "groups[0].template.network", "groups[1].template.image", "log.level"}
	if got := keysOf(fieldErrors(t, err)); !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	if !strings.Contains(err.Error(), testFile+": groups[1].template.image: required") {
		t.Errorf("message lacks the documented form:\n%v", err)
	}
}

func TestFieldErrorWithoutFile(t *testing.T) {
	c := validConfig()
	c.File = ""
	c.Cluster = ""
	err := c.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "cluster: required") {
		t.Errorf("Validate without file = %v, want a message starting with the key", err)
	}
}
