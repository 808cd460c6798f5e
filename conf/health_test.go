package conf_test

import (
	"slices"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
)

func TestHealthDefaultsValidate(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	h := c.Health
	if h.Interval != 10*time.Second || h.CheckTimeout != 5*time.Second || h.DrainAfter != 2 || h.UndrainAfter != 3 ||
		h.Memory.MinTotalPercent != 95 || h.DryRun || h.MetricsListen != "" {
		t.Fatalf("defaults: %+v", h)
	}
}

func TestHealthValidate(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(h *conf.HealthConf)
		keys   []string
	}{
		{"zero interval", func(h *conf.HealthConf) { h.Interval = 0 }, []string{"health.interval"}},
		{"zero K and M", func(h *conf.HealthConf) { h.DrainAfter, h.UndrainAfter = 0, 0 }, []string{"health.drain_after", "health.undrain_after"}},
		{"bad listen", func(h *conf.HealthConf) { h.MetricsListen = "9817" }, []string{"health.metrics_listen"}},
		{"bad percents", func(h *conf.HealthConf) { h.Memory.MinTotalPercent = 120; h.Memory.MaxSwapUsedPercent = -1 },
			[]string{"health.memory.min_total_percent", "health.memory.max_swap_used_percent"}},
		{"relative disk", func(h *conf.HealthConf) { h.Disks = []conf.HealthDisk{{Path: "tmp"}} }, []string{"health.disks[0].path"}},
		{"relative mount", func(h *conf.HealthConf) { h.Mounts = []conf.HealthMount{{Path: "home"}} }, []string{"health.mounts[0].path"}},
		{"bad cpus", func(h *conf.HealthConf) { h.CPUs.Expected = -2 }, []string{"health.cpus.expected"}},
		{"path as process", func(h *conf.HealthConf) { h.Processes = []string{"/usr/sbin/slurmd"} }, []string{"health.processes[0]"}},
		{"bad reboot action", func(h *conf.HealthConf) { h.RebootActions = []string{"reboot", "power-cycle"} }, []string{"health.reboot_actions[1]"}},
		{"bad xid", func(h *conf.HealthConf) {
			h.GPU.XIDs = []conf.HealthXID{{Codes: []int{0}, Action: "explode"}, {Action: "drain"}}
		}, []string{"health.gpu.xids[0].codes[0]", "health.gpu.xids[0].action", "health.gpu.xids[1].codes"}},
		{"bad custom", func(h *conf.HealthConf) {
			h.Custom = []conf.HealthCustom{{Name: "ib", Command: []string{"ib.sh"}}, {Name: "ib", Command: []string{"/x"}}, {Name: "a b"}}
		}, []string{"health.custom[0].command", "health.custom[1].name", "health.custom[2].name", "health.custom[2].command"}},
		{"bad check program", func(h *conf.HealthConf) {
			h.CheckProgram = conf.HealthCheckProgram{Enabled: true, Path: "slurm-elastic-health --once", Interval: 500 * time.Millisecond, NodeState: "ANY,BUSY"}
		}, []string{"health.check_program.path", "health.check_program.interval", "health.check_program.node_state"}},
		{"bad pcie action", func(h *conf.HealthConf) { h.GPU.PCIeAction = "" }, []string{"health.gpu.pcie_action"}},
		{"CYCLE alone", func(h *conf.HealthConf) { h.CheckProgram.Enabled, h.CheckProgram.NodeState = true, "CYCLE" },
			[]string{"health.check_program.node_state"}},
		{"disabled check program is not validated", func(h *conf.HealthConf) { h.CheckProgram.Path = "relative" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.break_(&c.Health)
			got := keysOf(fieldErrors(t, c.Validate()))
			slices.Sort(got)
			want := slices.Clone(tc.keys)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("keys %v, want %v", got, want)
			}
		})
	}
}

func TestHealthLoad(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "config.yaml", `
cluster: test
slurm: {backend: scontrol}
health:
  interval: 3s
  disks: [{path: /scratch, min_free_percent: 10}]
  gpu:
    xids: [{codes: [13, 31], action: drain}]
  custom:
    - name: ib
      command: [/usr/libexec/ib-check, "--port", "1"]
      timeout: 2s
`)
	t.Setenv("SLURM_ELASTIC_HEALTH_DRAIN_AFTER", "4")
	c, err := conf.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Health
	if h.Interval != 3*time.Second || h.DrainAfter != 4 || h.UndrainAfter != 3 || len(h.Disks) != 1 || h.Disks[0].MinFreePercent != 10 ||
		!slices.Equal(h.GPU.XIDs[0].Codes, []int{13, 31}) || h.Custom[0].Timeout != 2*time.Second ||
		!slices.Equal(h.Custom[0].Command, []string{"/usr/libexec/ib-check", "--port", "1"}) {
		t.Fatalf("%+v", h)
	}
	bad := writeFile(t, "bad.yaml", "cluster: test\nhealth:\n  intervall: 3s\n")
	if _, err := conf.Load(bad); err == nil {
		t.Fatal("typo accepted")
	} else if keys := keysOf(fieldErrors(t, err)); !slices.Equal(keys, []string{"health.intervall"}) {
		t.Fatalf("keys %v", keys)
	}
}

func TestHealthExampleMatchesDefaults(t *testing.T) {
	cfg := loadHealthExample(t)
	d := conf.Default().Health
	h := cfg.Health
	if h.Interval != d.Interval || h.CheckTimeout != d.CheckTimeout || h.DrainAfter != d.DrainAfter ||
		h.UndrainAfter != d.UndrainAfter || h.RetryMax != d.RetryMax || h.Memory != d.Memory || h.DryRun != d.DryRun ||
		h.MetricsListen != d.MetricsListen || h.CPUs != d.CPUs || h.CheckProgram != d.CheckProgram ||
		h.GPU.PCIeAction != d.GPU.PCIeAction {
		t.Fatalf("example health section differs from Default():\n%+v\n%+v", h, d)
	}
}
