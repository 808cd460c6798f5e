package conf_test

import (
	"bytes"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	yaml "go.yaml.in/yaml/v3"
)

const examplePath = "../packaging/config.yaml"

// loadExample loads the shipped example with a real token file supplied
// through the environment (the example's path does not exist here).
func loadExample(t *testing.T) *conf.Config {
	t.Helper()
	clearEnv(t)
	t.Setenv("SLURM_ELASTIC_SLURM_TOKEN_FILE", secretFile(t, 0o600))
	cfg, err := conf.Load(examplePath)
	if err != nil {
		t.Fatalf("example config does not load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("example config does not validate: %v", err)
	}
	return cfg
}

func TestExampleConfig(t *testing.T) {
	cfg := loadExample(t)
	if len(cfg.Podman.Hosts) != 1 || !strings.HasPrefix(cfg.Podman.Hosts[0].URI, "unix:///") {
		t.Errorf("example should have one local Podman host over a unix socket: %+v", cfg.Podman.Hosts)
	}
	var cpu, gpu bool
	for _, g := range cfg.Groups {
		if g.Template.GPUCount > 0 && g.Gres != "" {
			gpu = true
		} else if g.Template.GPUCount == 0 {
			cpu = true
		}
	}
	if !cpu || !gpu {
		t.Errorf("example should have a CPU group and a GPU group with CDI devices")
	}
	// The example spells out the defaults; keep it in step with Default().
	d := conf.Default()
	if cfg.Log != d.Log || cfg.StateDir != d.StateDir || cfg.Resume.Timeout != d.Resume.Timeout ||
		cfg.Suspend.Timeout != d.Suspend.Timeout || cfg.PowerSave != d.PowerSave ||
		cfg.Slurm.Timeout != d.Slurm.Timeout || cfg.Podman.Timeout != d.Podman.Timeout {
		t.Errorf("example values differ from Default():\n%+v\n%+v", *cfg, d)
	}
	// The example boots packaging/node as shipped: its command (munged,
	// then configless slurmd) and the node contract from the runtime, so no
	// group overrides the command or mounts Slurm's config or a munge key.
	if cfg.Slurm.ConfServer == "" || cfg.Podman.MungeKey != conf.DefaultMungeKey {
		t.Errorf("example: slurm.conf_server %q, podman.munge_key %q", cfg.Slurm.ConfServer, cfg.Podman.MungeKey)
	}
	for _, g := range cfg.Groups {
		if len(g.Template.Command) > 0 {
			t.Errorf("example group %s: command %q skips the node image's entrypoint", g.Name, g.Template.Command)
		}
		for _, m := range g.Template.Mounts {
			if strings.HasPrefix(m.Destination, "/etc/slurm") || strings.HasPrefix(m.Destination, "/etc/munge") {
				t.Errorf("example group %s mounts %s: configless nodes need neither", g.Name, m.Destination)
			}
		}
	}
	if cfg.Groups[1].Template.Env["NVIDIA_DRIVER_CAPABILITIES"] == "" {
		t.Errorf("env key case lost: %v", cfg.Groups[1].Template.Env)
	}
	var buf bytes.Buffer
	if err := conf.RenderSlurm(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	golden(t, "example.slurm.conf.golden", buf.Bytes())
}

// keyPaths lists the key paths of t, "[]" standing for any list index.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		p := prefix + name
		ft := f.Type
		switch {
		case ft == reflect.TypeFor[time.Duration]():
			out = append(out, p)
		case ft.Kind() == reflect.Struct:
			out = append(out, keyPaths(ft, p+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), p+"[].")...)
		default:
			out = append(out, p)
		}
	}
	return out
}

// yamlPaths lists the key paths present in a parsed YAML document, stopping
// at keys whose value is not a mapping or a list of mappings, or at leaves.
func yamlPaths(v any, prefix string, leaves []string, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, val := range v {
			p := prefix + k
			out[p] = true
			if !slices.Contains(leaves, p) {
				yamlPaths(val, p+".", leaves, out)
			}
		}
	case []any:
		for _, item := range v {
			yamlPaths(item, strings.TrimSuffix(prefix, ".")+"[].", leaves, out)
		}
	}
}

func TestExampleCoversEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	want := keyPaths(reflect.TypeFor[conf.Config](), "")
	if len(want) < 40 {
		t.Fatalf("only %d key paths found; keyPaths is broken", len(want))
	}
	have := map[string]bool{}
	yamlPaths(raw, "", want, have)
	// Keys that only make sense in another setup are shown commented out.
	commented := map[string]string{"podman.hosts[].identity": "# identity:", "power_save.site_prolog": "  # site_prolog: ",
		"podman.hosts[].known_hosts": "# known_hosts:",
		// Images need helpers.conf on the head: shown, not enabled.
		"groups[].images[].name": "    #   - name: rocky9", "groups[].images[].image": "    #     image: ", "podman.hosts[].host_key_checking": "# host_key_checking:",
		"groups[].warm.images": "      # images:",
		// Derived defaults: left unset so that they follow power_save.
		// The Kubernetes group is an example left commented out.
		"groups[].kubernetes.node_selector": "#     node_selector: {", "groups[].kubernetes.tolerations[].key": "#       - {key: slurm,",
		"groups[].kubernetes.tolerations[].operator": "operator: Equal,", "groups[].kubernetes.tolerations[].value": `value: "true",`,
		"groups[].kubernetes.tolerations[].effect": "effect: NoSchedule}", "groups[].kubernetes.node_affinity[].key": "{key: topology.kubernetes.io/zone,",
		"groups[].kubernetes.node_affinity[].operator": "operator: In,", "groups[].kubernetes.node_affinity[].values": "values: [zone-a]}",
		"groups[].kubernetes.volumes[].name": "- {name: home,", "groups[].kubernetes.volumes[].destination": "destination: /apps,",
		"groups[].kubernetes.volumes[].read_only": "read_only: true,", "groups[].kubernetes.volumes[].host_path": "host_path: /srv/scratch}",
		"groups[].kubernetes.volumes[].pvc": "pvc: homes}", "groups[].kubernetes.volumes[].nfs.server": "nfs: {server: nfs1,",
		"groups[].kubernetes.volumes[].nfs.path": "path: /export/apps}}",
		"resume.timeout":                         "  # timeout: 90s", "suspend.timeout": "  # timeout: 50s", "daemon.power_up_limit": "  # power_up_limit: 180s"}
	for _, k := range want {
		if nodeOnlyHealthKey(k) {
			if have[k] {
				t.Errorf("%s: node-side key %s belongs in %s", examplePath, k, healthExamplePath)
			}
			continue // TestHealthExampleCoversEveryKey
		}
		if have[k] {
			continue
		}
		if c, ok := commented[k]; ok && strings.Contains(string(data), c) {
			continue
		}
		t.Errorf("%s: key %s is not shown", examplePath, k)
	}
}
