package conf_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
)

// TestDerivedDefaults: resume.timeout, suspend.timeout and
// daemon.power_up_limit follow the power_save timeouts when unset, from the
// file or the environment; set ones are kept; a remaining conflict names
// both keys and the fix.
func TestDerivedDefaults(t *testing.T) {
	type want struct{ resume, suspend, powerUp time.Duration }
	cases := []struct {
		name string
		yaml string            // appended to minimalYAML
		env  map[string]string // SLURM_ELASTIC_* overrides
		want want
		// errs maps each key Validate reports to parts of its message;
		// nil: the config validates.
		errs map[string][]string
	}{
		{name: "nothing set: today's defaults",
			want: want{90 * time.Second, 50 * time.Second, 180 * time.Second}},
		{name: "only power_save.resume_timeout set (issue 9)",
			yaml: "power_save:\n  resume_timeout: 90s\n",
			want: want{67 * time.Second, 50 * time.Second, 135 * time.Second}},
		{name: "only power_save set, both timeouts lower",
			yaml: "power_save:\n  resume_timeout: 60s\n  suspend_timeout: 20s\n",
			want: want{45 * time.Second, 16 * time.Second, 90 * time.Second}},
		{name: "power_save set high",
			yaml: "power_save:\n  resume_timeout: 10m\n  suspend_timeout: 3m\n",
			want: want{450 * time.Second, 150 * time.Second, 15 * time.Minute}},
		{name: "tiny power_save timeouts stay below",
			yaml: "power_save:\n  resume_timeout: 1s\n  suspend_timeout: 1s\n",
			want: want{750 * time.Millisecond, 833333333 * time.Nanosecond, 2 * time.Second}},
		{name: "explicit 0 means derive",
			yaml: "resume:\n  timeout: 0s\ndaemon:\n  power_up_limit: 0s\npower_save:\n  resume_timeout: 100s\n",
			want: want{75 * time.Second, 50 * time.Second, 150 * time.Second}},
		{name: "only hook set, below the default power_save",
			yaml: "resume:\n  timeout: 100s\nsuspend:\n  timeout: 30s\n",
			want: want{100 * time.Second, 30 * time.Second, 180 * time.Second}},
		{name: "only hook set, above the default power_save",
			yaml: "resume:\n  timeout: 150s\n",
			want: want{150 * time.Second, 50 * time.Second, 180 * time.Second},
			errs: map[string][]string{"resume.timeout": {
				"2m30s: must be less than power_save.resume_timeout (2m0s)",
				"lower resume.timeout, raise power_save.resume_timeout, or remove resume.timeout to use 3/4 of power_save.resume_timeout (1m30s)"}}},
		{name: "both set and consistent",
			yaml: "resume:\n  timeout: 170s\nsuspend:\n  timeout: 25s\npower_save:\n  resume_timeout: 180s\n  suspend_timeout: 30s\ndaemon:\n  power_up_limit: 200s\n",
			want: want{170 * time.Second, 25 * time.Second, 200 * time.Second}},
		{name: "both set and conflicting",
			yaml: "resume:\n  timeout: 90s\nsuspend:\n  timeout: 40s\npower_save:\n  resume_timeout: 90s\n  suspend_timeout: 30s\n",
			want: want{90 * time.Second, 40 * time.Second, 135 * time.Second},
			errs: map[string][]string{
				"resume.timeout":  {"1m30s: must be less than power_save.resume_timeout (1m30s)", "remove resume.timeout to use 3/4 of power_save.resume_timeout (1m7s)"},
				"suspend.timeout": {"40s: must be less than power_save.suspend_timeout (30s)", "lower suspend.timeout, raise power_save.suspend_timeout", "5/6 of power_save.suspend_timeout (25s)"}}},
		{name: "power_up_limit set at or below resume_timeout",
			yaml: "daemon:\n  power_up_limit: 120s\n",
			want: want{90 * time.Second, 50 * time.Second, 120 * time.Second},
			errs: map[string][]string{"daemon.power_up_limit": {
				"2m0s: must be greater than power_save.resume_timeout (2m0s)",
				"raise daemon.power_up_limit, lower power_save.resume_timeout, or remove daemon.power_up_limit to use 3/2 of power_save.resume_timeout (3m0s)"}}},
		{name: "power_save raised past a set power_up_limit",
			yaml: "power_save:\n  resume_timeout: 5m\ndaemon:\n  power_up_limit: 180s\n",
			want: want{225 * time.Second, 50 * time.Second, 180 * time.Second},
			errs: map[string][]string{"daemon.power_up_limit": {"must be greater than power_save.resume_timeout (5m0s)"}}},
		{name: "negative hook timeout",
			yaml: "resume:\n  timeout: -1s\n",
			want: want{-time.Second, 50 * time.Second, 180 * time.Second},
			errs: map[string][]string{"resume.timeout": {"-1s: must be greater than 0"}}},
		{name: "invalid power_save timeout: only it is reported",
			yaml: "power_save:\n  resume_timeout: 0s\n",
			want: want{0, 50 * time.Second, 0},
			errs: map[string][]string{"power_save.resume_timeout": {"must be greater than 0"}}},
		{name: "env sets only power_save",
			env:  map[string]string{"SLURM_ELASTIC_POWER_SAVE_RESUME_TIMEOUT": "60s", "SLURM_ELASTIC_POWER_SAVE_SUSPEND_TIMEOUT": "30s"},
			want: want{45 * time.Second, 25 * time.Second, 90 * time.Second}},
		{name: "env power_save over a file that sets only power_save",
			yaml: "power_save:\n  resume_timeout: 300s\n",
			env:  map[string]string{"SLURM_ELASTIC_POWER_SAVE_RESUME_TIMEOUT": "40s"},
			want: want{30 * time.Second, 50 * time.Second, 60 * time.Second}},
		{name: "env sets the hook, file sets power_save",
			yaml: "power_save:\n  resume_timeout: 60s\n",
			env:  map[string]string{"SLURM_ELASTIC_RESUME_TIMEOUT": "55s", "SLURM_ELASTIC_DAEMON_POWER_UP_LIMIT": "61s"},
			want: want{55 * time.Second, 50 * time.Second, 61 * time.Second}},
		{name: "env 0 unsets a hook timeout the file set",
			yaml: "resume:\n  timeout: 100s\n",
			env:  map[string]string{"SLURM_ELASTIC_RESUME_TIMEOUT": "0s", "SLURM_ELASTIC_POWER_SAVE_RESUME_TIMEOUT": "80s"},
			want: want{60 * time.Second, 50 * time.Second, 120 * time.Second}},
		{name: "env hook conflicts with file power_save",
			yaml: "power_save:\n  resume_timeout: 60s\n",
			env:  map[string]string{"SLURM_ELASTIC_RESUME_TIMEOUT": "60s"},
			want: want{60 * time.Second, 50 * time.Second, 90 * time.Second},
			errs: map[string][]string{"resume.timeout": {"1m0s: must be less than power_save.resume_timeout (1m0s)", "(45s)"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			p := writeFile(t, "config.yaml", minimalYAML+tc.yaml)
			cfg, err := conf.Load(p)
			if err != nil {
				t.Fatal(err)
			}
			got := want{cfg.Resume.Timeout, cfg.Suspend.Timeout, cfg.Daemon.PowerUpLimit}
			if got != tc.want {
				t.Errorf("resume.timeout, suspend.timeout, daemon.power_up_limit = %v, %v, %v; want %v, %v, %v",
					got.resume, got.suspend, got.powerUp, tc.want.resume, tc.want.suspend, tc.want.powerUp)
			}
			err = cfg.Validate()
			fes := fieldErrors(t, err)
			var keys []string
			for k := range tc.errs {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if got := keysOf(fes); !slices.Equal(got, keys) {
				t.Fatalf("Validate keys %v, want %v\n%v", got, keys, err)
			}
			for _, fe := range fes {
				if fe.File != p {
					t.Errorf("%v: file %q, want %q", fe, fe.File, p)
				}
				for _, part := range tc.errs[fe.Key] {
					if !strings.Contains(fe.Msg, part) {
						t.Errorf("%s: message %q lacks %q", fe.Key, fe.Msg, part)
					}
				}
			}
		})
	}
}

// TestDerivedDefaultsInCode: a Config built from Default() follows a
// power_save change on ApplyDefaults, as a file does; values set in code
// are kept; ApplyDefaults is idempotent.
func TestDerivedDefaultsInCode(t *testing.T) {
	c := conf.Default()
	if c.Resume.Timeout != 90*time.Second || c.Suspend.Timeout != 50*time.Second || c.Daemon.PowerUpLimit != 180*time.Second {
		t.Fatalf("Default(): %v %v %v, want 1m30s 50s 3m0s", c.Resume.Timeout, c.Suspend.Timeout, c.Daemon.PowerUpLimit)
	}
	c.PowerSave.ResumeTimeout, c.PowerSave.SuspendTimeout = 4*time.Minute, 2*time.Minute
	c.Suspend.Timeout = 30 * time.Second // set: kept
	c.ApplyDefaults()
	c.ApplyDefaults()
	if c.Resume.Timeout != 3*time.Minute || c.Suspend.Timeout != 30*time.Second || c.Daemon.PowerUpLimit != 6*time.Minute {
		t.Fatalf("after ApplyDefaults: %v %v %v, want 3m0s 30s 6m0s", c.Resume.Timeout, c.Suspend.Timeout, c.Daemon.PowerUpLimit)
	}
	c.PowerSave.ResumeTimeout = 2 * time.Minute
	c.ApplyDefaults()
	if c.Resume.Timeout != 90*time.Second || c.Daemon.PowerUpLimit != 3*time.Minute {
		t.Fatalf("after a second change: %v %v, want 1m30s 3m0s", c.Resume.Timeout, c.Daemon.PowerUpLimit)
	}
}

func TestDerivedFunctions(t *testing.T) {
	for _, c := range []struct {
		ps                       time.Duration
		resume, suspend, powerUp time.Duration
	}{
		{120 * time.Second, 90 * time.Second, 100 * time.Second, 180 * time.Second},
		{60 * time.Second, 45 * time.Second, 50 * time.Second, 90 * time.Second},
		{61 * time.Second, 45 * time.Second, 50 * time.Second, 92 * time.Second},
		{2 * time.Second, time.Second, time.Second, 3 * time.Second},
		{0, 0, 0, 0},
		{-time.Second, 0, 0, 0},
	} {
		r, s, u := conf.DerivedResumeTimeout(c.ps), conf.DerivedSuspendTimeout(c.ps), conf.DerivedPowerUpLimit(c.ps)
		if r != c.resume || s != c.suspend || u != c.powerUp {
			t.Errorf("ps %v: resume %v suspend %v power_up %v, want %v %v %v", c.ps, r, s, u, c.resume, c.suspend, c.powerUp)
		}
		if c.ps > 0 && (r >= c.ps || s >= c.ps || u <= c.ps || r <= 0 || s <= 0) {
			t.Errorf("ps %v: derived values on the wrong side: %v %v %v", c.ps, r, s, u)
		}
	}
}
