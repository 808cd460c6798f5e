package conf

// HealthConf configures slurm-elastic-health, the node health daemon (the
// `health:` section).
type HealthConf struct{}

// defaultHealth returns the health section's defaults.
func defaultHealth() HealthConf { return HealthConf{} }

// validateHealth adds the health section's problems to p.
func (c *Config) validateHealth(p *problems) {}
