package conf

import (
	"fmt"
	"net"
	"strings"
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
	// BreakerThreshold: after this many consecutive bootstrap failures in
	// a group (launch failures other than Capacity, resume timeouts), its
	// circuit breaker opens: the resume hook launches nothing for the group
	// until it is re-armed. 0 = off. Default 5.
	BreakerThreshold int `mapstructure:"breaker_threshold"`
	// BreakerReset: an open breaker is re-armed (half-open: one more
	// failure opens it again) after this long. 0 = only by
	// `slurm-elastic breaker reset`. Default 30m.
	BreakerReset time.Duration `mapstructure:"breaker_reset"`
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
		BreakerThreshold: 5,
		BreakerReset:     30 * time.Minute,
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
	if d.BreakerThreshold < 0 {
		p.add("daemon.breaker_threshold", "%d: must not be negative (0 = off)", d.BreakerThreshold)
	}
	if d.BreakerReset < 0 {
		p.add("daemon.breaker_reset", "%v: must not be negative (0 = only by command)", d.BreakerReset)
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
	for i := range c.Groups {
		c.validateWarm(p, i)
	}
	if d.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(d.MetricsListen); err != nil || port == "" {
			p.add("daemon.metrics_listen", "%q: write host:port, e.g. 127.0.0.1:9464", d.MetricsListen)
		}
	}
}

// validateWarm adds the problems of group i's warm pool to p.
func (c *Config) validateWarm(p *problems, i int) {
	g := &c.Groups[i]
	w := g.Warm
	key := fmt.Sprintf("groups[%d].warm", i)
	if w.Idle < 0 || w.Max < 0 {
		p.add(key, "idle %d, max %d: must not be negative (0 = off / the group's size)", w.Idle, w.Max)
		return
	}
	if w.Idle == 0 {
		return
	}
	names, err := hostlist.Expand(g.Nodes)
	if err != nil {
		return // reported with groups[i].nodes
	}
	if strings.Contains(topLevel(hostlist.Compress(names)), ",") {
		p.add(key+".idle", "group %s: a warm pool needs the group's nodes as one range, e.g. cpu[01-16] (slurm.conf SuspendExcNodes=<range>:<count>), not %q", g.Name, hostlist.Compress(names))
	}
	if w.Idle > len(names) {
		p.add(key+".idle", "%d: group %s has only %d nodes", w.Idle, g.Name, len(names))
	}
	if w.Max != 0 && w.Max < w.Idle {
		p.add(key+".max", "%d: must be at least warm.idle (%d), or 0 for the group's size", w.Max, w.Idle)
	}
}

// topLevel returns s without its bracketed parts.
func topLevel(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}
