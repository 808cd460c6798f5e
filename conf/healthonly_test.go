package conf_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
	yaml "go.yaml.in/yaml/v3"
)

const healthExamplePath = "../packaging/health.yaml"

// nodeOnlyHealthKey: a health key only the node daemon reads, shown in
// packaging/health.yaml, not in the head's config.yaml (which keeps
// health.check_program for `conf slurm`).
func nodeOnlyHealthKey(k string) bool {
	return strings.HasPrefix(k, "health.") && !strings.HasPrefix(k, "health.check_program.")
}

// loadHealthExample loads and validates the shipped node-side file as the
// daemon does.
func loadHealthExample(t *testing.T) *conf.Config {
	t.Helper()
	clearEnv(t)
	cfg, err := conf.LoadHealth(healthExamplePath)
	if err != nil {
		t.Fatalf("health example does not load: %v", err)
	}
	if err := cfg.ValidateHealth(); err != nil {
		t.Fatalf("health example does not validate: %v", err)
	}
	return cfg
}

func TestHealthExample(t *testing.T) {
	cfg := loadHealthExample(t)
	if cfg.Slurm.Backend != conf.BackendScontrol || cfg.Slurm.TokenFile != "" || cfg.Slurm.RESTURL != "" {
		t.Errorf("the node file should drain through scontrol, with no token: %+v", cfg.Slurm)
	}
	if cfg.Log.File != conf.DefaultHealthLog {
		t.Errorf("log.file %q, want %q", cfg.Log.File, conf.DefaultHealthLog)
	}
	if k := cfg.HeadKeys(); len(k) != 0 {
		t.Errorf("the node file sets head keys %v", k)
	}
	// Nothing but slurm, log and health.
	data, err := os.ReadFile(healthExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for k := range raw {
		if !slices.Contains([]string{"slurm", "log", "health"}, k) {
			t.Errorf("%s: section %s is not read by the health daemon", healthExamplePath, k)
		}
	}
	if _, ok := raw["health"].(map[string]any)["check_program"]; ok {
		t.Errorf("%s: health.check_program is rendered on the head: it belongs in config.yaml", healthExamplePath)
	}
}

// TestHealthExampleCoversEveryKey: every key the daemon reads is shown in
// packaging/health.yaml (the node's checks, log, the slurm client), set or
// as a commented example.
func TestHealthExampleCoversEveryKey(t *testing.T) {
	data, err := os.ReadFile(healthExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	all := keyPaths(reflect.TypeFor[conf.Config](), "")
	var want []string
	for _, k := range all {
		if nodeOnlyHealthKey(k) || strings.HasPrefix(k, "log.") ||
			slices.Contains([]string{"slurm.backend", "slurm.rest_url", "slurm.token_file", "slurm.user", "slurm.scontrol", "slurm.timeout"}, k) {
			want = append(want, k)
		}
	}
	if len(want) < 30 {
		t.Fatalf("only %d key paths; keyPaths is broken", len(want))
	}
	have := map[string]bool{}
	yamlPaths(raw, "", want, have)
	commented := map[string]string{
		"slurm.rest_url": "# rest_url:", "slurm.token_file": "# token_file:", "slurm.user": "# user:",
		"health.mounts[].path": "#     - path: /home", "health.mounts[].read_write": "#       read_write:",
		"health.custom[].name": "#     - name:", "health.custom[].command": "#       command:",
		"health.custom[].timeout": "#       timeout:", "health.custom[].drain_after": "#       drain_after:",
	}
	for _, k := range want {
		if have[k] {
			continue
		}
		if c, ok := commented[k]; ok && strings.Contains(string(data), c) {
			continue
		}
		t.Errorf("%s: key %s is not shown", healthExamplePath, k)
	}
}

// TestValidateHealth: only slurm (as a client), log and health are
// checked; the head's sections and secrets are not needed.
func TestValidateHealth(t *testing.T) {
	tok := secretFile(t, 0o600)
	open := secretFile(t, 0o644)
	absent := t.TempDir() + "/absent"
	nodeOnly := func() *conf.Config {
		c := conf.Default()
		c.File = "/etc/slurm-elastic/health.yaml"
		c.Slurm.Backend = conf.BackendScontrol
		return &c
	}
	cases := []struct {
		name string
		mut  func(*conf.Config)
		keys []string // sorted; nil: valid
		msg  string   // part of the first message
	}{
		{"node only, scontrol", func(*conf.Config) {}, nil, ""},
		{"head secrets absent, scontrol", func(c *conf.Config) {
			c.Slurm.RESTURL, c.Slurm.TokenFile = "http://head:6820", absent
			c.Podman.Hosts = []conf.PodmanHost{{Name: "far", URI: "ssh://slurm@far/run/podman/podman.sock", Identity: absent}}
		}, nil, ""},
		{"head sections broken: not checked", func(c *conf.Config) {
			c.Cluster = "Not Valid"
			c.Groups = []conf.Group{{Name: "x"}}
			c.Resume.Timeout = 1e12
			c.StateDir = "relative"
			c.Daemon.Events = 0
		}, nil, ""},
		{"auto without rest_url", func(c *conf.Config) { c.Slurm.Backend = conf.BackendAuto }, nil, ""},
		{"auto with an absent token: falls back to scontrol", func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = conf.BackendAuto, "http://head:6820", absent
		}, nil, ""},
		{"auto with a token others can read", func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = conf.BackendAuto, "https://head:6820", open
		}, []string{"slurm.token_file"}, "lets other users read it"},
		{"rest sends its token over http to another host", func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = conf.BackendREST, "http://head:6820", tok
		}, []string{"slurm.rest_url"}, "slurm.allow_insecure_http: true"},
		{"rest with its token", func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = conf.BackendREST, "https://head:6820", tok
		}, nil, ""},
		{"rest on a unix socket needs no token", func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL = conf.BackendREST, "unix:///run/slurmrestd.sock"
		}, nil, ""},
		{"rest with an absent token", func(c *conf.Config) {
			c.Slurm.Backend, c.Slurm.RESTURL, c.Slurm.TokenFile = conf.BackendREST, "https://head:6820", absent
		}, []string{"slurm.token_file"}, "no such file"},
		{"rest without url and token", func(c *conf.Config) { c.Slurm.Backend = conf.BackendREST },
			[]string{"slurm.rest_url", "slurm.token_file"}, "required with backend rest"},
		{"bad backend", func(c *conf.Config) { c.Slurm.Backend = "grpc" }, []string{"slurm.backend"}, "auto, rest, scontrol"},
		{"bad rest url with auto", func(c *conf.Config) { c.Slurm.Backend, c.Slurm.RESTURL = conf.BackendAuto, "ftp://head" },
			[]string{"slurm.rest_url"}, "scheme"},
		{"bad rest url ignored with scontrol", func(c *conf.Config) { c.Slurm.RESTURL = "ftp://head" }, nil, ""},
		{"no scontrol", func(c *conf.Config) { c.Slurm.Scontrol = "" }, []string{"slurm.scontrol"}, "must not be empty"},
		{"slurm timeout", func(c *conf.Config) { c.Slurm.Timeout = 0 }, []string{"slurm.timeout"}, "greater than 0"},
		{"log", func(c *conf.Config) { c.Log.File, c.Log.Level = "rel.log", "loud" }, []string{"log.file", "log.level"}, "absolute"},
		{"health", func(c *conf.Config) { c.Health.Interval, c.Health.UndrainAfter = 0, 0 },
			[]string{"health.interval", "health.undrain_after"}, "greater than 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := nodeOnly()
			tc.mut(c)
			err := c.ValidateHealth()
			fes := fieldErrors(t, err)
			if got := keysOf(fes); !slices.Equal(got, tc.keys) {
				t.Fatalf("keys %v, want %v\n%v", got, tc.keys, err)
			}
			for _, fe := range fes {
				if !strings.HasPrefix(fe.Error(), c.File+": "+fe.Key+": ") {
					t.Errorf("%q does not name the file and key", fe.Error())
				}
			}
			if len(fes) > 0 && !strings.Contains(fes[0].Msg, tc.msg) {
				t.Errorf("message %q lacks %q", fes[0].Msg, tc.msg)
			}
		})
	}
}

func TestLoadHealth(t *testing.T) {
	clearEnv(t)
	if got := conf.HealthPath(""); got != conf.DefaultHealthPath {
		t.Errorf("HealthPath(\"\") = %q, want %q", got, conf.DefaultHealthPath)
	}
	t.Setenv(conf.EnvConfig, "/head/config.yaml") // not the health daemon's variable
	if got := conf.HealthPath(""); got != conf.DefaultHealthPath {
		t.Errorf("HealthPath(\"\") with %s = %q, want %q", conf.EnvConfig, got, conf.DefaultHealthPath)
	}
	p := writeFile(t, "health.yaml", "slurm: {backend: scontrol}\nhealth: {interval: 3s}\n")
	t.Setenv(conf.EnvHealthConfig, p)
	if got := conf.HealthPath(""); got != p {
		t.Errorf("HealthPath(\"\") with %s = %q, want %q", conf.EnvHealthConfig, got, p)
	}
	if got := conf.HealthPath("/flag.yaml"); got != "/flag.yaml" {
		t.Errorf("HealthPath(flag) = %q, want the flag", got)
	}
	t.Setenv("SLURM_ELASTIC_HEALTH_DRAIN_AFTER", "7")
	c, err := conf.LoadHealth("")
	if err != nil {
		t.Fatal(err)
	}
	if c.File != p || c.Health.Interval.String() != "3s" || c.Health.DrainAfter != 7 || c.Log.File != conf.DefaultHealthLog {
		t.Errorf("LoadHealth: file %q interval %v drain_after %d log %q", c.File, c.Health.Interval, c.Health.DrainAfter, c.Log.File)
	}
	if err := c.ValidateHealth(); err != nil {
		t.Error(err)
	}
	// The head's config.yaml works too: its log.file is kept.
	t.Setenv("SLURM_ELASTIC_SLURM_TOKEN_FILE", secretFile(t, 0o600))
	h, err := conf.LoadHealth(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if h.Log.File != conf.Default().Log.File || len(h.HeadKeys()) != 3 {
		t.Errorf("config.yaml as the health config: log %q head keys %v", h.Log.File, h.HeadKeys())
	}
	if err := h.ValidateHealth(); err != nil {
		t.Error(err)
	}
	// Typos are errors in every section, used or not.
	bad := writeFile(t, "bad.yaml", "slurm: {backend: scontrol}\ngroupz: []\n")
	if _, err := conf.LoadHealth(bad); err == nil {
		t.Fatal("unknown section accepted")
	} else if keys := keysOf(fieldErrors(t, err)); !slices.Equal(keys, []string{"groupz"}) {
		t.Fatalf("keys %v", keys)
	}
	if _, err := conf.LoadHealth(t.TempDir() + "/absent.yaml"); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}
