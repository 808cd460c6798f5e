// Command timeit runs one command and prints, as one JSON line on stdout,
// its wall time and the CPU time and peak RSS that wait4 reports for it (the
// process and every descendant it waited for, e.g. the scontrol or podman
// processes a hook or a shell loop runs). The real-cluster benchmark runs it
// inside the head container, beside slurmctld, so that what is timed is what
// slurmctld would see of a ResumeProgram. The child's stdout and stderr go to
// timeit's stderr; their last 2 KB are also in the JSON. timeit exits 0
// whenever it could start the command; the command's status is "rc".
//
// Usage: timeit [-env K=V]... -- COMMAND [ARG...]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

type envFlag []string

func (e *envFlag) String() string     { return strings.Join(*e, ",") }
func (e *envFlag) Set(s string) error { *e = append(*e, s); return nil }

type result struct {
	Argv      []string `json:"argv"`
	RC        int      `json:"rc"`
	WallMS    float64  `json:"wall_ms"`
	UserMS    float64  `json:"user_ms"`
	SysMS     float64  `json:"sys_ms"`
	MaxRSSKB  int64    `json:"maxrss_kb"`
	OutputEnd string   `json:"output_tail,omitempty"`
}

// tail keeps the last n bytes written to it.
type tail struct {
	b []byte
	n int
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.n {
		t.b = t.b[len(t.b)-t.n:]
	}
	return len(p), nil
}

func main() {
	var env envFlag
	flag.Var(&env, "env", "K=V added to the command's environment (repeatable)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: timeit [-env K=V]... -- COMMAND [ARG...]")
		os.Exit(2)
	}
	t := &tail{n: 2048}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Env = append(os.Environ(), env...)
	w := io.MultiWriter(os.Stderr, t)
	cmd.Stdout, cmd.Stderr = w, w
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "timeit:", err)
		os.Exit(1)
	}
	err := cmd.Wait()
	wall := time.Since(t0)
	r := result{Argv: flag.Args(), WallMS: ms(wall)}
	if err != nil {
		r.RC = -1
		if ee, ok := err.(*exec.ExitError); ok {
			r.RC = ee.ExitCode()
		}
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.UserMS = float64(ru.Utime.Nano()) / 1e6
		r.SysMS = float64(ru.Stime.Nano()) / 1e6
		r.MaxRSSKB = ru.Maxrss
	}
	r.OutputEnd = string(bytes.ToValidUTF8(t.b, nil))
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
