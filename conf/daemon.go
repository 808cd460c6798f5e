package conf

import (
	"fmt"
	"maps"
	"net"
	"slices"
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
	// (set DOWN, then powered down). Must be above
	// power_save.resume_timeout so Slurm's own handling comes first.
	// Default (0 or unset): 3/2 of power_save.resume_timeout, 180s of the
	// default 120s (see ApplyDefaults).
	PowerUpLimit time.Duration `mapstructure:"power_up_limit"`
	// CapacityCooldown: after a Capacity-class launch failure in a group
	// (a node DOWN with reason Code:Capacity), the group's idle powered-down
	// nodes are drained this long so Slurm places jobs elsewhere, then
	// re-enabled. 0 = off. Default 5m.
	CapacityCooldown time.Duration `mapstructure:"capacity_cooldown"`
	// Reimage: a job pending (Resources) for an image of a group whose
	// nodes are all up in other images gets idle nodes rebooted into its
	// image (reconcile KindReimage; docs/operations.md "Images"). Default
	// true; false = off (such a job waits for a node to power down).
	Reimage bool `mapstructure:"reimage"`
	// ReimageAfter: a job must have been pending this long (since its
	// submit time) before idle nodes are re-imaged for it, so Slurm's own
	// scheduler (a powered-down node, a node finishing a job) comes first.
	// Default 10s; 0 = at once.
	ReimageAfter time.Duration `mapstructure:"reimage_after"`
	// Concurrency: the daemon's runtime calls (orphan removals) in flight
	// at once. Default 32.
	Concurrency int `mapstructure:"concurrency"`
	// Rate: the daemon's runtime calls started per second; 0 = unlimited
	// (default).
	Rate float64 `mapstructure:"rate"`
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
		Interval:    10 * time.Second,
		OrphanGrace: 60 * time.Second,
		// PowerUpLimit: derived from power_save.resume_timeout.
		CapacityCooldown: 5 * time.Minute,
		Reimage:          true,
		ReimageAfter:     10 * time.Second,
		Concurrency:      32,
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
	c.validatePowerUpLimit(p)
	if d.CapacityCooldown < 0 {
		p.add("daemon.capacity_cooldown", "%v: must not be negative (0 = off)", d.CapacityCooldown)
	}
	if d.ReimageAfter < 0 {
		p.add("daemon.reimage_after", "%v: must not be negative (0 = at once; daemon.reimage: false turns re-imaging off)", d.ReimageAfter)
	}
	if d.Concurrency < 1 {
		p.add("daemon.concurrency", "%d: must be at least 1", d.Concurrency)
	}
	nonNegative(p, "daemon.rate", d.Rate)
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

// validatePowerUpLimit checks daemon.power_up_limit against
// power_save.resume_timeout, which it must exceed.
func (c *Config) validatePowerUpLimit(p *problems) {
	const key = "daemon.power_up_limit"
	d, rt := c.Daemon.PowerUpLimit, c.PowerSave.ResumeTimeout
	switch {
	case d < 0:
		p.add(key, "%s: must be greater than 0 (or left unset: 3/2 of power_save.resume_timeout)", d)
	case d == 0:
		if rt > 0 {
			p.add(key, "0: not derived: call ApplyDefaults, or set it greater than 0 and above power_save.resume_timeout (%s)", rt)
		}
	case rt > 0 && d <= rt:
		p.add(key, "%s: must be greater than power_save.resume_timeout (%s), so Slurm's own ResumeTimeout handling comes first: raise daemon.power_up_limit, lower power_save.resume_timeout, or remove daemon.power_up_limit to use 3/2 of power_save.resume_timeout (%s)",
			d, rt, DerivedPowerUpLimit(rt))
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
		if len(w.Images) > 0 {
			p.add(key+".images", "group %s: images without a warm pool (%s.idle is 0): set %s.idle or remove %s.images", g.Name, key, key, key)
		}
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
		p.add(key+".idle", "%d: group %s has only %d nodes in groups[%d].nodes: lower %s.idle or add nodes", w.Idle, g.Name, len(names), i, key)
	}
	if w.Max != 0 && w.Max < w.Idle {
		p.add(key+".max", "%d: must be at least %s.idle (%d): raise %s.max, lower %s.idle, or set max 0 for the group's size", w.Max, key, w.Idle, key, key)
	}
	sum := 0
	for _, name := range slices.Sorted(maps.Keys(w.Images)) {
		n := w.Images[name]
		if _, ok := g.ImageRef(name); !ok || name == "" {
			p.add(key+".images."+name, "group %s has no image %q in groups[%d].images[].name", g.Name, name, i)
		}
		if n < 0 {
			p.add(key+".images."+name, "group %s: %d: must not be negative", g.Name, n)
		}
		sum += max(n, 0)
	}
	if sum > w.Idle {
		p.add(key+".images", "group %s: %d nodes in named images, more than %s.idle (%d): lower the counts or raise %s.idle", g.Name, sum, key, w.Idle, key)
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
