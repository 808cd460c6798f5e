package conf

import (
	"fmt"
	"net"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
)

// DaemonConf configures `slurm-elastic daemon`, the head-node reconciler
// (the `daemon:` section). See docs/reconciler.md.
type DaemonConf struct {
	// Interval between reconcile rounds. Default 10s.
	Interval time.Duration `mapstructure:"interval"`
	// OrphanGrace: an instance whose node Slurm has powered down (or does
	// not know) is removed only once it is older than this, so a launch in
	// flight is never mistaken for a leak. Default 60s.
	OrphanGrace time.Duration `mapstructure:"orphan_grace"`
	// PowerUpLimit: a node POWERING_UP this long with no instance is reset
	// (set DOWN, then powered down). Keep it above
	// power_save.resume_timeout so Slurm's own handling comes first.
	// Default 180s.
	PowerUpLimit time.Duration `mapstructure:"power_up_limit"`
	// CapacityCooldown: after a Capacity-class launch failure in a group
	// (a node DOWN with reason Code:Capacity), the group's idle powered-down
	// nodes are drained this long so Slurm places jobs elsewhere, then
	// re-enabled. 0 = off. Default 5m.
	CapacityCooldown time.Duration `mapstructure:"capacity_cooldown"`
	// HoldPrefix: a drained node whose reason contains this text anywhere
	// is held for debugging and never replaced. Default "hold:".
	HoldPrefix string `mapstructure:"hold_prefix"`
	// Hold lists hostlist expressions of nodes never replaced when
	// unhealthy. Default none.
	Hold []string `mapstructure:"hold"`
	// Events is how many decisions are kept for `slurm-elastic events`.
	// Default 1000.
	Events int `mapstructure:"events"`
	// MetricsListen: host:port of the Prometheus endpoint (/metrics);
	// "" = off. Default off.
	MetricsListen string `mapstructure:"metrics_listen"`
}

// defaultDaemon returns the daemon section's defaults.
func defaultDaemon() DaemonConf {
	return DaemonConf{
		Interval:         10 * time.Second,
		OrphanGrace:      60 * time.Second,
		PowerUpLimit:     180 * time.Second,
		CapacityCooldown: 5 * time.Minute,
		HoldPrefix:       "hold:",
		Events:           1000,
	}
}

// validateDaemon adds the daemon section's problems to p.
func (c *Config) validateDaemon(p *problems) {
	d := c.Daemon
	positive(p, "daemon.interval", d.Interval)
	if d.OrphanGrace < 0 {
		p.add("daemon.orphan_grace", "%v: must not be negative", d.OrphanGrace)
	}
	positive(p, "daemon.power_up_limit", d.PowerUpLimit)
	if d.CapacityCooldown < 0 {
		p.add("daemon.capacity_cooldown", "%v: must not be negative (0 = off)", d.CapacityCooldown)
	}
	if d.HoldPrefix == "" {
		p.add("daemon.hold_prefix", "must not be empty (default \"hold:\")")
	}
	for i, h := range d.Hold {
		if _, err := hostlist.Expand(h); err != nil {
			p.add(fmt.Sprintf("daemon.hold[%d]", i), "%q: %v", h, err)
		}
	}
	if d.Events < 1 || d.Events > 100000 {
		p.add("daemon.events", "%d: must be between 1 and 100000", d.Events)
	}
	if d.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(d.MetricsListen); err != nil || port == "" {
			p.add("daemon.metrics_listen", "%q: write host:port, e.g. 127.0.0.1:9464", d.MetricsListen)
		}
	}
}
