package conf_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
)

// minimalYAML is the smallest file that validates (with backend scontrol).
const minimalYAML = `
cluster: test
slurm:
  backend: scontrol
  conf_server: head
podman:
  hosts:
    - name: local
      uri: unix:///run/podman/podman.sock
groups:
  - name: cpu
    nodes: cpu[1-4]
    template:
      image: localhost/node:1
      network: slurm
`

// writeFile writes content to a fresh file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// clearEnv unsets every SLURM_ELASTIC_* variable for the test, so that the
// caller's environment cannot change the outcome.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, conf.EnvPrefix) {
			t.Setenv(k, "") // restores the old value after the test
			os.Unsetenv(k)
		}
	}
}

// fieldErrors returns the *conf.FieldError leaves of err.
func fieldErrors(t *testing.T, err error) []*conf.FieldError {
	t.Helper()
	var out []*conf.FieldError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *conf.FieldError
		if !errors.As(e, &fe) {
			t.Errorf("error is not a *conf.FieldError: %v", e)
			return
		}
		out = append(out, fe)
	}
	if err != nil {
		walk(err)
	}
	return out
}

func keysOf(fes []*conf.FieldError) []string {
	var keys []string
	for _, fe := range fes {
		if !slices.Contains(keys, fe.Key) {
			keys = append(keys, fe.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestDefault(t *testing.T) {
	d := conf.Default()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"slurm.backend", d.Slurm.Backend, "auto"},
		{"slurm.timeout", d.Slurm.Timeout, 10 * time.Second},
		{"slurm.scontrol", d.Slurm.Scontrol, "scontrol"},
		{"podman.timeout", d.Podman.Timeout, 30 * time.Second},
		{"podman.munge_key", d.Podman.MungeKey, "/etc/munge/munge.key"},
		{"slurm.conf_server", d.Slurm.ConfServer, ""},
		{"log.file", d.Log.File, "/var/log/slurm-elastic/slurm-elastic.log"},
		{"log.level", d.Log.Level, "info"},
		{"state_dir", d.StateDir, "/var/lib/slurm-elastic"},
		{"resume.timeout", d.Resume.Timeout, 90 * time.Second},
		{"resume.concurrency", d.Resume.Concurrency, 32},
		{"resume.rate", d.Resume.Rate, 0.0},
		{"suspend.timeout", d.Suspend.Timeout, 50 * time.Second},
		{"suspend.concurrency", d.Suspend.Concurrency, 32},
		{"power_save.bin_dir", d.PowerSave.BinDir, "/usr/libexec/slurm-elastic"},
		{"power_save.resume_timeout", d.PowerSave.ResumeTimeout, 120 * time.Second},
		{"power_save.suspend_timeout", d.PowerSave.SuspendTimeout, 60 * time.Second},
		{"power_save.suspend_time", d.PowerSave.SuspendTime, 300 * time.Second},
		{"power_save.resume_rate", d.PowerSave.ResumeRate, 300},
		{"power_save.suspend_rate", d.PowerSave.SuspendRate, 60},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("Default() %s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadAppliesDefaults(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "config.yaml", minimalYAML)
	cfg, err := conf.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != p {
		t.Errorf("File = %q, want %q", cfg.File, p)
	}
	want := conf.Default()
	want.Cluster = "test"
	want.Slurm.Backend = "scontrol"
	want.Slurm.ConfServer = "head"
	if !reflect.DeepEqual(cfg.Slurm, want.Slurm) || cfg.Log != want.Log || cfg.StateDir != want.StateDir ||
		cfg.Resume != want.Resume || cfg.Suspend != want.Suspend || cfg.PowerSave != want.PowerSave ||
		cfg.Podman.Timeout != want.Podman.Timeout || cfg.Podman.MungeKey != want.Podman.MungeKey {
		t.Errorf("defaults not applied:\n got %+v\nwant %+v", *cfg, want)
	}
	g := cfg.Groups[0]
	if g.Runtime != "podman" || g.Partition != "cpu" {
		t.Errorf("group defaults: runtime %q partition %q, want podman cpu", g.Runtime, g.Partition)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("minimal config does not validate: %v", err)
	}
}

func TestLoadExplicitZeroIsKept(t *testing.T) {
	// An explicit 0 must not be replaced by the default: rate 0 means
	// unlimited, and concurrency 0 must be reported, not hidden.
	clearEnv(t)
	p := writeFile(t, "config.yaml", minimalYAML+`
resume:
  concurrency: 0
power_save:
  resume_rate: 0
`)
	cfg, err := conf.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Resume.Concurrency != 0 || cfg.PowerSave.ResumeRate != 0 {
		t.Errorf("concurrency %d resume_rate %d, want 0 0", cfg.Resume.Concurrency, cfg.PowerSave.ResumeRate)
	}
	if cfg.Resume.Timeout != 90*time.Second {
		t.Errorf("resume.timeout = %v, want the default 90s", cfg.Resume.Timeout)
	}
	if keys := keysOf(fieldErrors(t, cfg.Validate())); !slices.Equal(keys, []string{"resume.concurrency"}) {
		t.Errorf("Validate keys = %v, want [resume.concurrency]", keys)
	}
}

func TestEnvOverride(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "config.yaml", minimalYAML+`
log:
  level: debug
resume:
  timeout: 80s
`)
	t.Setenv("SLURM_ELASTIC_LOG_LEVEL", "warn")                             // overrides the file
	t.Setenv("SLURM_ELASTIC_SLURM_REST_URL", "unix:///run/slurmrestd.sock") // absent from the file
	t.Setenv("SLURM_ELASTIC_RESUME_TIMEOUT", "45s")
	t.Setenv("SLURM_ELASTIC_RESUME_CONCURRENCY", "8")
	t.Setenv("SLURM_ELASTIC_SUSPEND_RATE", "2.5")
	t.Setenv("SLURM_ELASTIC_POWER_SAVE_SUSPEND_TIME", "10m")
	t.Setenv("SLURM_ELASTIC_CLUSTER", "other")
	cfg, err := conf.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"log.level", cfg.Log.Level, "warn"},
		{"slurm.rest_url", cfg.Slurm.RESTURL, "unix:///run/slurmrestd.sock"},
		{"slurm.backend", cfg.Slurm.Backend, "scontrol"}, // from the file
		{"resume.timeout", cfg.Resume.Timeout, 45 * time.Second},
		{"resume.concurrency", cfg.Resume.Concurrency, 8},
		{"suspend.rate", cfg.Suspend.Rate, 2.5},
		{"power_save.suspend_time", cfg.PowerSave.SuspendTime, 10 * time.Minute},
		{"cluster", cfg.Cluster, "other"},
		{"log.file", cfg.Log.File, conf.Default().Log.File}, // untouched
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"slurm.rest_url":            "SLURM_ELASTIC_SLURM_REST_URL",
		"log.level":                 "SLURM_ELASTIC_LOG_LEVEL",
		"power_save.resume_timeout": "SLURM_ELASTIC_POWER_SAVE_RESUME_TIMEOUT",
		"state_dir":                 "SLURM_ELASTIC_STATE_DIR",
	} {
		if got := conf.EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestEnvOverrideBadValue(t *testing.T) {
	for _, c := range []struct{ env, val, key string }{
		{"SLURM_ELASTIC_RESUME_CONCURRENCY", "many", "resume.concurrency"},
		{"SLURM_ELASTIC_RESUME_TIMEOUT", "90", "resume.timeout"},
		{"SLURM_ELASTIC_SUSPEND_RATE", "fast", "suspend.rate"},
	} {
		t.Run(c.env, func(t *testing.T) {
			clearEnv(t)
			p := writeFile(t, "config.yaml", minimalYAML)
			t.Setenv(c.env, c.val)
			_, err := conf.Load(p)
			fes := fieldErrors(t, err)
			if len(fes) != 1 || fes[0].Key != c.key || fes[0].File != p {
				t.Fatalf("Load with %s=%s: %v, want one error on %s in %s", c.env, c.val, err, c.key, p)
			}
		})
	}
}

func TestPathPrecedence(t *testing.T) {
	clearEnv(t)
	if got := conf.Path(""); got != conf.DefaultPath {
		t.Errorf("Path(\"\") = %q, want %q", got, conf.DefaultPath)
	}
	envFile := writeFile(t, "env.yaml", minimalYAML)
	t.Setenv(conf.EnvConfig, envFile)
	if got := conf.Path(""); got != envFile {
		t.Errorf("Path(\"\") with %s = %q, want %q", conf.EnvConfig, got, envFile)
	}
	if got := conf.Path("/flag.yaml"); got != "/flag.yaml" {
		t.Errorf("Path(flag) = %q, want the flag", got)
	}
	cfg, err := conf.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != envFile {
		t.Errorf("Load(\"\").File = %q, want %q from %s", cfg.File, envFile, conf.EnvConfig)
	}
	flagFile := writeFile(t, "flag.yaml", strings.Replace(minimalYAML, "cluster: test", "cluster: flagged", 1))
	cfg, err = conf.Load(flagFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != flagFile || cfg.Cluster != "flagged" {
		t.Errorf("Load(flag): File %q cluster %q, want %q flagged", cfg.File, cfg.Cluster, flagFile)
	}
}

func TestLoadMissingFile(t *testing.T) {
	clearEnv(t)
	p := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := conf.Load(p)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("Load(absent) = %v, want a not-exist error naming %s", err, p)
	}
}

func TestLoadBadYAML(t *testing.T) {
	clearEnv(t)
	for name, body := range map[string]string{
		"syntax":        "cluster: [unclosed\n",
		"duplicate key": "cluster: a\ncluster: b\n",
		"not a mapping": "- a\n- b\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, "config.yaml", body)
			_, err := conf.Load(p)
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("Load(%q) = %v, want an error naming %s", body, err, p)
			}
		})
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	clearEnv(t)
	for _, c := range []struct {
		name, yaml string
		keys       []string
		hint       string
	}{
		{"top level", "clustr: x\n", []string{"clustr"}, `did you mean "cluster"`},
		{"moved breaker key", "daemon:\n  breaker_threshold: 5\n  breaker_reset: 0s\n", []string{"daemon.breaker_reset", "daemon.breaker_threshold"}, `moved: write breaker.`},
		{"nested", "slurm:\n  rest_ulr: http://x\n", []string{"slurm.rest_ulr"}, `"rest_url"`},
		{"moved template gpus", "groups:\n  - name: a\n    template:\n      gpus: [nvidia.com/gpu=0]\n", []string{"groups[0].template.gpus"}, `moved: write groups[].template.gpu_count`},
		{"File is not a key", "file: /x\n", []string{"file"}, ""},
		{"host", "podman:\n  hosts:\n    - name: b\n      uir: unix:///x\n", []string{"podman.hosts[0].uir"}, `"uri"`},
		{"template", "groups:\n  - name: a\n    nodes: a1\n    template:\n      imag: x\n", []string{"groups[0].template.imag"}, `"image"`},
		{"mount", "groups:\n  - name: a\n    template:\n      mounts:\n        - src: /a\n", []string{"groups[0].template.mounts[0].src"}, ""},
		{"several at once", "clustr: x\nlog:\n  levl: info\n  fil: /x\n", []string{"clustr", "log.fil", "log.levl"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "config.yaml", c.yaml)
			_, err := conf.Load(p)
			fes := fieldErrors(t, err)
			if got := keysOf(fes); !slices.Equal(got, c.keys) {
				t.Fatalf("unknown keys %v, want %v (err %v)", got, c.keys, err)
			}
			for _, fe := range fes {
				if fe.File != p || !strings.Contains(fe.Error(), p+": "+fe.Key+": unknown key") {
					t.Errorf("message %q does not name file and key", fe.Error())
				}
			}
			if c.hint != "" && !strings.Contains(err.Error(), c.hint) {
				t.Errorf("message %q lacks hint %s", err, c.hint)
			}
		})
	}
}

func TestLoadTypeErrors(t *testing.T) {
	clearEnv(t)
	for _, c := range []struct{ name, yaml, key string }{
		{"bare number duration", "slurm:\n  timeout: 90\n", "slurm.timeout"},
		{"bad duration", "resume:\n  timeout: 90 seconds\n", "resume.timeout"},
		{"string for int", "groups:\n  - name: a\n    cpus: four\n", "groups[0].cpus"},
		{"string for list", "groups:\n  - name: a\n    template:\n      command: sleep infinity\n", "groups[0].template.command"},
		{"list for string", "cluster: [a, b]\n", "cluster"},
		{"map for list", "groups:\n  name: a\n", "groups"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "config.yaml", c.yaml)
			_, err := conf.Load(p)
			fes := fieldErrors(t, err)
			if got := keysOf(fes); !slices.Equal(got, []string{c.key}) {
				t.Fatalf("errors on %v, want [%s]: %v", got, c.key, err)
			}
			if fes[0].File != p {
				t.Errorf("error %q does not name %s", fes[0], p)
			}
		})
	}
}

func TestLoadKeepsEnvCase(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "config.yaml", `
groups:
  - Name: a
    template:
      Image: img
      env:
        OMP_NUM_THREADS: 4
        lower_case: x
        Mixed: "true"
        FLAG: true
`)
	cfg, err := conf.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"OMP_NUM_THREADS": "4", "lower_case": "x", "Mixed": "true", "FLAG": "true"}
	if got := cfg.Groups[0].Template.Env; !reflect.DeepEqual(got, want) {
		t.Errorf("env = %v, want %v", got, want)
	}
	if cfg.Groups[0].Name != "a" || cfg.Groups[0].Template.Image != "img" {
		t.Errorf("keys are not case-insensitive: %+v", cfg.Groups[0])
	}
}

func TestLoadYAMLAnchors(t *testing.T) {
	// Admins share one template between groups with anchors and merge keys.
	clearEnv(t)
	p := writeFile(t, "config.yaml", minimalYAML+`
  - name: big
    nodes: big[1-2]
    cpus: 16
    template:
      <<: &tpl
        image: localhost/node:1
        network: slurm
        env: {Mixed_Case: "1"}
      cpus: 16
  - name: small
    nodes: small1
    template: *tpl
`)
	cfg, err := conf.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	big, small := cfg.Groups[1].Template, cfg.Groups[2].Template
	if big.Image != "localhost/node:1" || big.CPUs != 16 || small.Network != "slurm" || small.Env["Mixed_Case"] != "1" {
		t.Errorf("anchors not resolved: big %+v small %+v", big, small)
	}
}

func TestLoadEmptyFile(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "config.yaml", "# nothing yet\n")
	cfg, err := conf.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log != conf.Default().Log || cfg.Groups != nil {
		t.Errorf("empty file: %+v, want the defaults", *cfg)
	}
	if got := keysOf(fieldErrors(t, cfg.Validate())); !slices.Equal(got, []string{"cluster", "groups"}) {
		t.Errorf("Validate(empty) keys = %v, want [cluster groups]", got)
	}
}
