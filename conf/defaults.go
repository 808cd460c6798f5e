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

// RuntimeKubernetes is the Kubernetes runtime (runtime/kubernetes).
const RuntimeKubernetes = "kubernetes"

// DefaultMungeKey is the default of podman.munge_key: munge's own key path
// on each Podman host.
const DefaultMungeKey = "/etc/munge/munge.key"

// Default returns the configuration used for every key the file and the
// environment leave unset, with the derived defaults (see ApplyDefaults)
// worked out from the other defaults: resume.timeout 90s, suspend.timeout
// 50s, daemon.power_up_limit 180s. Groups and Podman hosts have no
// defaults as a whole; per-group defaults are filled by ApplyDefaults.
// Never blocks; every call returns a fresh value.
func Default() Config {
	c := baseDefault()
	c.ApplyDefaults()
	return c
}

// baseDefault is Default with the derived keys left 0 (unset): Load gives
// it to viper, so that a file or environment that sets only
// power_save.resume_timeout still gets a resume.timeout below it.
func baseDefault() Config {
	return Config{
		Slurm: SlurmConf{
			Backend:  BackendAuto,
			Scontrol: "scontrol",
			Timeout:  10 * time.Second,
		},
		Podman: PodmanConf{Timeout: 30 * time.Second, HostCooldown: 5 * time.Minute, MungeKey: DefaultMungeKey,
			ImagePullPolicy: "never", PullTimeout: 5 * time.Minute},
		Kubernetes: KubernetesConf{
			Namespace: "slurm-elastic", MungeSecret: "slurm-elastic-munge", MungeSecretKey: "munge.key",
			GPUResource: "nvidia.com/gpu", ImagePullGrace: 30 * time.Second, Timeout: 30 * time.Second,
		},
		Log: LogConf{
			File:  "/var/log/slurm-elastic/slurm-elastic.log",
			Level: "info",
		},
		StateDir: "/var/lib/slurm-elastic",
		Resume:   HookConf{Concurrency: 32}, // Timeout: derived
		Suspend:  HookConf{Concurrency: 32}, // Timeout: derived
		PowerSave: PowerSaveConf{
			BinDir:         "/usr/libexec/slurm-elastic",
			ResumeTimeout:  120 * time.Second,
			SuspendTimeout: 60 * time.Second,
			SuspendTime:    300 * time.Second,
			ResumeRate:     300,
			SuspendRate:    60,
			Prolog:         true,
			RebootProgram:  DefaultRebootProgram,
		},
		Health:  defaultHealth(),
		Daemon:  defaultDaemon(),
		Breaker: defaultBreaker(),
	}
}

// Shares of the power_save timeouts that the derived defaults take; see
// ApplyDefaults. They keep today's figures for the default timeouts: 90s of
// 120s, 50s of 60s, and a power_up_limit of 180s.
const (
	// resume.timeout = 3/4 of power_save.resume_timeout: after its timeout
	// the resume hook still sets the nodes it could not start DOWN (a few
	// Slurm requests of up to slurm.timeout each) before Slurm kills it.
	resumeShareNum, resumeShareDen = 3, 4
	// suspend.timeout = 5/6 of power_save.suspend_timeout: the suspend
	// hook has little left to do after its timeout.
	suspendShareNum, suspendShareDen = 5, 6
	// daemon.power_up_limit = 3/2 of power_save.resume_timeout: Slurm's
	// own ResumeTimeout handling comes first.
	powerUpNum, powerUpDen = 3, 2
)

// DerivedResumeTimeout is the resume.timeout used when it is unset (0): 3/4
// of resumeTimeout (power_save.resume_timeout), whole seconds (rounded
// down) from 1s up. 0 when resumeTimeout is not positive. Pure.
func DerivedResumeTimeout(resumeTimeout time.Duration) time.Duration {
	return below(resumeTimeout, resumeShareNum, resumeShareDen)
}

// DerivedSuspendTimeout is the suspend.timeout used when it is unset (0):
// 5/6 of suspendTimeout (power_save.suspend_timeout), whole seconds
// (rounded down) from 1s up. 0 when suspendTimeout is not positive. Pure.
func DerivedSuspendTimeout(suspendTimeout time.Duration) time.Duration {
	return below(suspendTimeout, suspendShareNum, suspendShareDen)
}

// DerivedPowerUpLimit is the daemon.power_up_limit used when it is unset
// (0): 3/2 of resumeTimeout (power_save.resume_timeout), rounded up to
// whole seconds. 0 when resumeTimeout is not positive. Pure.
func DerivedPowerUpLimit(resumeTimeout time.Duration) time.Duration {
	if resumeTimeout <= 0 {
		return 0
	}
	d := resumeTimeout * powerUpNum / powerUpDen
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}

// below returns num/den of d (num < den), rounded down to whole seconds
// when that leaves at least 1s, so it is always below d.
func below(d time.Duration, num, den time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	v := d * num / den
	if v >= time.Second {
		v = v.Truncate(time.Second)
	}
	return v
}

// derivedValues are the values ApplyDefaults last derived, so that a
// Config from Default() whose power_save timeouts are changed in code gets
// its derived keys worked out again, as a file would.
type derivedValues struct {
	resumeTimeout, suspendTimeout, powerUpLimit time.Duration
}

// derive sets *v to want when *v is unset (0) or still holds the value
// derived before (*last), and records it in *last.
func derive(v, last *time.Duration, want time.Duration) {
	if *v == 0 || (*last != 0 && *v == *last) {
		*v = want
		*last = want
	}
}

// ApplyDefaults fills the defaults that Default cannot hold as fixed
// values. Derived keys, when 0 (unset in the file and the environment),
// follow the key they must stay on the right side of:
//   - resume.timeout: 3/4 of power_save.resume_timeout (DerivedResumeTimeout);
//   - suspend.timeout: 5/6 of power_save.suspend_timeout (DerivedSuspendTimeout);
//   - daemon.power_up_limit: 3/2 of power_save.resume_timeout (DerivedPowerUpLimit).
//
// A derived key is left 0 when the key it follows is not positive
// (Validate reports that one). A derived key still holding the value an
// earlier call derived (as in a Config from Default()) is derived again, so
// changing power_save in code and calling ApplyDefaults moves it along; a
// value set in between is kept. For each group, an empty Runtime becomes
// "podman" and an empty Partition the group's name. Load calls it; call it
// yourself on a Config built in code, after changing power_save. Never
// blocks; idempotent.
func (c *Config) ApplyDefaults() {
	derive(&c.Resume.Timeout, &c.derived.resumeTimeout, DerivedResumeTimeout(c.PowerSave.ResumeTimeout))
	derive(&c.Suspend.Timeout, &c.derived.suspendTimeout, DerivedSuspendTimeout(c.PowerSave.SuspendTimeout))
	derive(&c.Daemon.PowerUpLimit, &c.derived.powerUpLimit, DerivedPowerUpLimit(c.PowerSave.ResumeTimeout))
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
