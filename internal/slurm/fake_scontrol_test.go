package slurm

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The test binary doubles as a fake scontrol for the exec units: started
// with SE_FAKE_SCONTROL=<prefix> it records its argv and some environment
// in $SE_FAKE_RECORD (JSON), optionally sleeps $SE_FAKE_SLEEP, then replays
// a captured answer: <prefix>.out to stdout, <prefix>.err to stderr, exit
// status from <prefix>.rc. The answers are the real ones in testdata/.
// With $SE_FAKE_LOG it also appends its argv to that file, one JSON line per
// run; with $SE_FAKE_FAIL_ON it replays $SE_FAKE_FAIL_REPLY instead when an
// argument contains that text.

// fakeRecord is what the fake scontrol saw.
type fakeRecord struct {
	Args []string          `json:"args"`
	Env  map[string]string `json:"env"`
}

// fakeKeys are the environment variables the fake records.
var fakeKeys = []string{"PATH", "SLURM_CONF", "SLURM_TIME_FORMAT", "SE_EXTRA"}

func fakeScontrol() int {
	prefix := os.Getenv("SE_FAKE_SCONTROL")
	if rec := os.Getenv("SE_FAKE_RECORD"); rec != "" {
		r := fakeRecord{Args: os.Args[1:], Env: map[string]string{}}
		for _, k := range fakeKeys {
			if v, ok := os.LookupEnv(k); ok {
				r.Env[k] = v
			}
		}
		b, _ := json.Marshal(r)
		if err := os.WriteFile(rec, b, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "fake scontrol:", err)
			return 99
		}
	}
	if log := os.Getenv("SE_FAKE_LOG"); log != "" {
		// One JSON line per run; O_APPEND keeps concurrent runs' lines whole.
		b, _ := json.Marshal(os.Args[1:])
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			_, err = f.Write(append(b, '\n'))
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake scontrol:", err)
			return 99
		}
	}
	if bad := os.Getenv("SE_FAKE_FAIL_ON"); bad != "" {
		for _, a := range os.Args[1:] {
			if strings.Contains(a, bad) {
				prefix = os.Getenv("SE_FAKE_FAIL_REPLY")
			}
		}
	}
	if d := os.Getenv("SE_FAKE_SLEEP"); d != "" {
		dur, _ := time.ParseDuration(d)
		time.Sleep(dur)
	}
	out, _ := os.ReadFile(prefix + ".out")
	errOut, _ := os.ReadFile(prefix + ".err")
	rcText, err := os.ReadFile(prefix + ".rc")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake scontrol: no reply", prefix)
		return 98
	}
	os.Stdout.Write(out)
	os.Stderr.Write(errOut)
	rc, _ := strconv.Atoi(strings.TrimSpace(string(rcText)))
	return rc
}
