package conf

import "time"

// Values of SlurmConf.Backend.
const (
	// BackendAuto uses slurmrestd when slurm.rest_url is set and answers,
	// else scontrol.
	BackendAuto = "auto"
	// BackendREST uses slurmrestd only.
	BackendREST = "rest"
	// BackendScontrol uses the scontrol binary only.
	BackendScontrol = "scontrol"
)

// RuntimePodman is the Podman runtime, the default of Group.Runtime.
const RuntimePodman = "podman"

// Values of LogConf.File that are not paths.
const (
	LogStderr   = "stderr"
	LogJournald = "journald"
)

// Default returns the configuration used for every key the file and the
// environment leave unset. Groups and Podman hosts have no defaults as a
// whole; per-group defaults are filled by ApplyDefaults. Never blocks;
// every call returns a fresh value.
func Default() Config {
	return Config{
		Slurm: SlurmConf{
			Backend:  BackendAuto,
			Scontrol: "scontrol",
			Timeout:  10 * time.Second,
		},
		Podman: PodmanConf{Timeout: 30 * time.Second},
		Log: LogConf{
			File:  "/var/log/slurm-elastic/slurm-elastic.log",
			Level: "info",
		},
		StateDir: "/var/lib/slurm-elastic",
		Resume:   HookConf{Timeout: 90 * time.Second, Concurrency: 32},
		Suspend:  HookConf{Timeout: 50 * time.Second, Concurrency: 32},
		PowerSave: PowerSaveConf{
			BinDir:         "/usr/libexec/slurm-elastic",
			ResumeTimeout:  120 * time.Second,
			SuspendTimeout: 60 * time.Second,
			SuspendTime:    300 * time.Second,
			ResumeRate:     300,
			SuspendRate:    60,
		},
		Health: defaultHealth(),
		Daemon: defaultDaemon(),
	}
}

// ApplyDefaults fills the per-group defaults that Default cannot hold:
// an empty Runtime becomes "podman" and an empty Partition the group's
// name. Load calls it; call it yourself on a Config built in code. Never
// blocks; idempotent.
func (c *Config) ApplyDefaults() {
	for i := range c.Groups {
		g := &c.Groups[i]
		if g.Runtime == "" {
			g.Runtime = RuntimePodman
		}
		if g.Partition == "" {
			g.Partition = g.Name
		}
	}
}
