package conf

// DaemonConf configures `slurm-elastic daemon`, the head-node reconciler
// (the `daemon:` section).
type DaemonConf struct{}

// defaultDaemon returns the daemon section's defaults.
func defaultDaemon() DaemonConf { return DaemonConf{} }

// validateDaemon adds the daemon section's problems to p.
func (c *Config) validateDaemon(p *problems) {}
