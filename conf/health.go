package conf

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// HealthConf configures slurm-elastic-health, the node health daemon (the
// `health:` section). It runs on every compute node, drains the node in
// Slurm when a check keeps failing and undrains it when the problem has
// cleared (docs/health.md).
type HealthConf struct {
	// Node is this node's Slurm NodeName. Default "": the short hostname.
	Node string `mapstructure:"node"`
	// Interval between two rounds of polled checks. Default 10s.
	Interval time.Duration `mapstructure:"interval"`
	// CheckTimeout bounds one check; a check that runs out reports Unknown.
	// Default 5s.
	CheckTimeout time.Duration `mapstructure:"check_timeout"`
	// DrainAfter: consecutive failing rounds of one check before the node
	// is drained (K). Default 2.
	DrainAfter int `mapstructure:"drain_after"`
	// UndrainAfter: consecutive rounds without a draining failure before a
	// node we drained is undrained (M). Default 3.
	UndrainAfter int `mapstructure:"undrain_after"`
	// DryRun logs the drains and undrains it would do and does none.
	DryRun bool `mapstructure:"dry_run"`
	// MetricsListen: Prometheus /metrics on host:port; "" = off (default).
	MetricsListen string `mapstructure:"metrics_listen"`
	// RetryMax caps the backoff between retries of a Slurm update that
	// failed (Slurm unreachable). Default 30s.
	RetryMax time.Duration `mapstructure:"retry_max"`
	// RebootActions: a failure whose action is listed (reset, reboot)
	// asks Slurm to reboot the node (`scontrol reboot ASAP`, reason
	// the drain reason) instead of only draining it; on slurm-elastic
	// nodes the reboot is a fresh container (docs/health.md). Default
	// none: drain only.
	RebootActions []string `mapstructure:"reboot_actions"`

	// CheckProgram: the one-shot mode as Slurm's HealthCheckProgram,
	// printed by `slurm-elastic conf slurm` when enabled.
	CheckProgram HealthCheckProgram `mapstructure:"check_program"`

	Memory    HealthMemory   `mapstructure:"memory"`
	Disks     []HealthDisk   `mapstructure:"disks"`
	Mounts    []HealthMount  `mapstructure:"mounts"`
	CPUs      HealthCPUs     `mapstructure:"cpus"`
	Processes []string       `mapstructure:"processes"`
	GPU       HealthGPU      `mapstructure:"gpu"`
	Custom    []HealthCustom `mapstructure:"custom"`
}

// HealthCheckProgram is the one-shot mode run by slurmd as Slurm's
// HealthCheckProgram (every HealthCheckInterval, as root, with no
// arguments): the binary runs once when it is invoked under the name
// HealthCheckProgramName. Use it instead of the daemon, not beside it: the
// daemon has K/M counts and Xid events, the one-shot mode has neither.
type HealthCheckProgram struct {
	// Enabled makes `slurm-elastic conf slurm` print HealthCheckProgram,
	// HealthCheckInterval and HealthCheckNodeState. Default false (the
	// systemd daemon is the default mode).
	Enabled bool `mapstructure:"enabled"`
	// Path of the program on the compute nodes: a link to
	// slurm-elastic-health named HealthCheckProgramName. Default
	// /usr/sbin/slurm-elastic-health-check.
	Path string `mapstructure:"path"`
	// Interval is HealthCheckInterval, in whole seconds. Default 60s.
	Interval time.Duration `mapstructure:"interval"`
	// NodeState is HealthCheckNodeState: a comma-separated subset of ANY,
	// ALLOC, MIXED, IDLE, NONDRAINED_IDLE, optionally with CYCLE.
	// Default ANY.
	NodeState string `mapstructure:"node_state"`
}

// RebootActions are the finding actions health.reboot_actions may list.
var RebootActions = []string{"reset", "reboot"}

// HealthCheckProgramName is the name under which slurm-elastic-health runs
// one round and exits (as --once): Slurm runs HealthCheckProgram without
// arguments.
const HealthCheckProgramName = "slurm-elastic-health-check"

// healthCheckNodeStates are the words of HealthCheckNodeState.
var healthCheckNodeStates = []string{"ANY", "ALLOC", "MIXED", "IDLE", "NONDRAINED_IDLE", "CYCLE"}

// HealthMemory configures the memory check.
type HealthMemory struct {
	// MinTotalPercent: total memory must be at least this percentage of
	// the node's RealMemory (a lost DIMM); 0 = not checked. Default 95.
	MinTotalPercent float64 `mapstructure:"min_total_percent"`
	// RealMemoryMB overrides the RealMemory Slurm reports for the node;
	// 0 = ask Slurm. Default 0.
	RealMemoryMB int64 `mapstructure:"real_memory_mb"`
	// MinAvailablePercent: available memory below this percentage of the
	// total fails; 0 = not checked. Default 2.
	MinAvailablePercent float64 `mapstructure:"min_available_percent"`
	// MaxSwapUsedPercent: swap use above this percentage fails; 0 = not
	// checked. Default 0.
	MaxSwapUsedPercent float64 `mapstructure:"max_swap_used_percent"`
}

// HealthDisk is one path whose file system must keep free space and inodes.
type HealthDisk struct {
	Path string `mapstructure:"path"`
	// MinFreePercent of the blocks; 0 = not checked.
	MinFreePercent float64 `mapstructure:"min_free_percent"`
	// MinFreeInodesPercent; 0 = not checked.
	MinFreeInodesPercent float64 `mapstructure:"min_free_inodes_percent"`
}

// HealthMount is one mount that must be present and answer.
type HealthMount struct {
	Path string `mapstructure:"path"`
	// ReadWrite: the mount must not be read-only.
	ReadWrite bool `mapstructure:"read_write"`
}

// HealthCPUs configures the online-CPU check.
type HealthCPUs struct {
	// Expected online logical CPUs; 0 = the node's CPUs in Slurm;
	// -1 = not checked. Default 0.
	Expected int `mapstructure:"expected"`
}

// HealthGPU configures the NVML checks (binary built with cgo only).
type HealthGPU struct {
	// Expected GPUs; 0 = the gpu count of the node's Gres in Slurm
	// (no gpu Gres: no GPUs expected). Default 0.
	Expected int `mapstructure:"expected"`
	// MaxTemperatureC fails a GPU at or above it; 0 = the GPU's own
	// slowdown threshold. Default 0.
	MaxTemperatureC int `mapstructure:"max_temperature_c"`
	// PCIeAction is the action of a degraded PCIe link (narrower than its
	// maximum, or a lower generation while busy): one of XIDActions.
	// Default watch (reported, never drains).
	PCIeAction string `mapstructure:"pcie_action"`
	// XIDs overrides entries of the built-in Xid -> action table
	// (docs/health.md); later entries win.
	XIDs []HealthXID `mapstructure:"xids"`
}

// HealthXID maps Xid error codes to an action.
type HealthXID struct {
	Codes []int `mapstructure:"codes"`
	// Action: none, watch, reset, drain, reboot or power-cycle; every
	// action from reset on drains the node.
	Action string `mapstructure:"action"`
}

// XIDActions are the values HealthXID.Action takes.
var XIDActions = []string{"none", "watch", "reset", "drain", "reboot", "power-cycle"}

// HealthCustom is an admin-supplied check program: exit 0 = OK,
// 1 = problem, 2 = unknown; its first output line is the message.
type HealthCustom struct {
	Name string `mapstructure:"name"`
	// Command is the argv; no shell. Command[0] is an absolute path.
	Command []string `mapstructure:"command"`
	// Timeout; default health.check_timeout.
	Timeout time.Duration `mapstructure:"timeout"`
	// DrainAfter overrides health.drain_after for this check; 0 = inherit.
	DrainAfter int `mapstructure:"drain_after"`
}

// defaultHealth returns the health section's defaults.
func defaultHealth() HealthConf {
	return HealthConf{
		Interval:     10 * time.Second,
		CheckTimeout: 5 * time.Second,
		DrainAfter:   2,
		UndrainAfter: 3,
		RetryMax:     30 * time.Second,
		Memory:       HealthMemory{MinTotalPercent: 95, MinAvailablePercent: 2},
		GPU:          HealthGPU{PCIeAction: "watch"},
		CheckProgram: HealthCheckProgram{Path: "/usr/sbin/" + HealthCheckProgramName, Interval: 60 * time.Second, NodeState: "ANY"},
	}
}

var checkNameRe = nameRe

// validateHealth adds the health section's problems to p.
func (c *Config) validateHealth(p *problems) {
	h := c.Health
	if h.Node != "" && !nameRe.MatchString(h.Node) {
		p.add("health.node", "%q: not a node name", h.Node)
	}
	positive(p, "health.interval", h.Interval)
	positive(p, "health.check_timeout", h.CheckTimeout)
	positive(p, "health.retry_max", h.RetryMax)
	if h.DrainAfter < 1 {
		p.add("health.drain_after", "%d: must be at least 1", h.DrainAfter)
	}
	if h.UndrainAfter < 1 {
		p.add("health.undrain_after", "%d: must be at least 1", h.UndrainAfter)
	}
	for i, a := range h.RebootActions {
		if !slices.Contains(RebootActions, a) {
			p.add(fmt.Sprintf("health.reboot_actions[%d]", i), "%q: want one of %s", a, strings.Join(RebootActions, ", "))
		}
	}
	if h.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(h.MetricsListen); err != nil || port == "" {
			p.add("health.metrics_listen", "%q: want host:port, e.g. 127.0.0.1:9817", h.MetricsListen)
		}
	}
	if cp := h.CheckProgram; cp.Enabled {
		if !filepath.IsAbs(cp.Path) || strings.ContainsAny(cp.Path, " \t\n") {
			p.add("health.check_program.path", "%q: want an absolute path without spaces (slurm.conf HealthCheckProgram)", cp.Path)
		}
		if cp.Interval < time.Second {
			p.add("health.check_program.interval", "%s: want at least 1s (slurm.conf HealthCheckInterval)", cp.Interval)
		}
		words := strings.Split(cp.NodeState, ",")
		for _, w := range words {
			if !slices.Contains(healthCheckNodeStates, w) {
				p.add("health.check_program.node_state", "%q: want a comma-separated subset of %s", cp.NodeState, strings.Join(healthCheckNodeStates, ", "))
				break
			}
		}
		if slices.Equal(words, []string{"CYCLE"}) {
			p.add("health.check_program.node_state", "%q: CYCLE goes with a node state, e.g. ANY,CYCLE", cp.NodeState)
		}
	}
	percent := func(key string, v float64) {
		if v < 0 || v > 100 {
			p.add(key, "%v: must be between 0 and 100", v)
		}
	}
	percent("health.memory.min_total_percent", h.Memory.MinTotalPercent)
	percent("health.memory.min_available_percent", h.Memory.MinAvailablePercent)
	percent("health.memory.max_swap_used_percent", h.Memory.MaxSwapUsedPercent)
	nonNegative(p, "health.memory.real_memory_mb", float64(h.Memory.RealMemoryMB))
	for i, d := range h.Disks {
		k := fmt.Sprintf("health.disks[%d]", i)
		if !filepath.IsAbs(d.Path) {
			p.add(k+".path", "%q: must be an absolute path", d.Path)
		}
		percent(k+".min_free_percent", d.MinFreePercent)
		percent(k+".min_free_inodes_percent", d.MinFreeInodesPercent)
	}
	for i, m := range h.Mounts {
		if !filepath.IsAbs(m.Path) {
			p.add(fmt.Sprintf("health.mounts[%d].path", i), "%q: must be an absolute path", m.Path)
		}
	}
	if h.CPUs.Expected < -1 {
		p.add("health.cpus.expected", "%d: want a count, 0 (from Slurm) or -1 (not checked)", h.CPUs.Expected)
	}
	for i, name := range h.Processes {
		if strings.TrimSpace(name) == "" || strings.Contains(name, "/") {
			p.add(fmt.Sprintf("health.processes[%d]", i), "%q: want a process name such as slurmd", name)
		}
	}
	nonNegative(p, "health.gpu.expected", float64(h.GPU.Expected))
	nonNegative(p, "health.gpu.max_temperature_c", float64(h.GPU.MaxTemperatureC))
	if !slices.Contains(XIDActions, h.GPU.PCIeAction) {
		p.add("health.gpu.pcie_action", "%q: must be one of %s", h.GPU.PCIeAction, strings.Join(XIDActions, ", "))
	}
	for i, x := range h.GPU.XIDs {
		k := fmt.Sprintf("health.gpu.xids[%d]", i)
		if len(x.Codes) == 0 {
			p.add(k+".codes", "required: at least one Xid")
		}
		for j, code := range x.Codes {
			if code <= 0 {
				p.add(fmt.Sprintf("%s.codes[%d]", k, j), "%d: an Xid is a positive number", code)
			}
		}
		if !slices.Contains(XIDActions, x.Action) {
			p.add(k+".action", "%q: must be one of %s", x.Action, strings.Join(XIDActions, ", "))
		}
	}
	seen := map[string]bool{}
	for i, cc := range h.Custom {
		k := fmt.Sprintf("health.custom[%d]", i)
		switch {
		case !checkNameRe.MatchString(cc.Name):
			p.add(k+".name", "%q: want letters, digits, '_', '.', '-'", cc.Name)
		case seen[cc.Name]:
			p.add(k+".name", "%q: used twice", cc.Name)
		}
		seen[cc.Name] = true
		if len(cc.Command) == 0 || !filepath.IsAbs(cc.Command[0]) {
			p.add(k+".command", "want an argv whose first element is an absolute path (no shell)")
		}
		nonNegative(p, k+".timeout", float64(cc.Timeout))
		nonNegative(p, k+".drain_after", float64(cc.DrainAfter))
	}
}
