package conf

import "time"

// BreakerConf configures the per-group circuit breaker (the `breaker:`
// section), read by the resume hooks, which open it, and by
// `slurm-elastic daemon`, which re-arms it and counts successes. See
// internal/breaker and docs/reconciler.md.
type BreakerConf struct {
	// Threshold: after this many consecutive bootstrap failures in a group
	// (launch failures other than Capacity, resume timeouts), its circuit
	// breaker opens: the resume hook launches nothing for the group until
	// it is re-armed. 0 = off. Default 5.
	Threshold int `mapstructure:"threshold"`
	// Reset: an open breaker is re-armed (half-open: one more failure
	// opens it again) after this long. 0 = only by `slurm-elastic breaker
	// reset`. Default 30m.
	Reset time.Duration `mapstructure:"reset"`
}

// defaultBreaker returns the breaker section's defaults.
func defaultBreaker() BreakerConf {
	return BreakerConf{Threshold: 5, Reset: 30 * time.Minute}
}

// validateBreaker adds the breaker section's problems to p.
func (c *Config) validateBreaker(p *problems) {
	if c.Breaker.Threshold < 0 {
		p.add("breaker.threshold", "%d: must not be negative (0 = off)", c.Breaker.Threshold)
	}
	if c.Breaker.Reset < 0 {
		p.add("breaker.reset", "%v: must not be negative (0 = only by command)", c.Breaker.Reset)
	}
}
