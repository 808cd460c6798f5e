// Command proctime times whole processes, the careful-loop alternative to
// hyperfine used by tests/bench/run.sh: it runs each case of a group in turn
// (A, B, A, B, ... so that load from other work on a shared machine hits
// every case alike), after a few warm-up rounds, and reports the median,
// quartiles and minimum wall time and the median user+sys CPU and max RSS of
// each case. Processes are exec'ed directly (no shell); stdout goes to
// /dev/null, stdin comes from a file when given.
//
// Usage: proctime [-runs 30] [-warmup 3] [-json FILE] SPEC.json
//
// SPEC is {"groups":[{"name":"...","cases":[{"name":"...","argv":[...],
// "stdin":"FILE","env":["K=V"]}]}]}. An argv element "@FILE" stands for the
// content of FILE without its trailing newline (for long name lists).
// Every case is run once first with its output captured and must exit 0;
// otherwise proctime exits 1 (breakage).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

type Case struct {
	Name  string   `json:"name"`
	Argv  []string `json:"argv"`
	Stdin string   `json:"stdin,omitempty"`
	Env   []string `json:"env,omitempty"`

	argv []string
}

type Group struct {
	Name  string  `json:"name"`
	Cases []*Case `json:"cases"`
}

type Spec struct {
	Groups []Group `json:"groups"`
}

// Result of one case.
type Result struct {
	Group    string  `json:"group"`
	Case     string  `json:"case"`
	Runs     int     `json:"runs"`
	MedianMS float64 `json:"median_ms"`
	P25MS    float64 `json:"p25_ms"`
	P75MS    float64 `json:"p75_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`
	CPUMS    float64 `json:"cpu_median_ms"` // user+sys of the process
	MaxRSSMB float64 `json:"maxrss_mb"`     // largest over the runs
	OutBytes int     `json:"out_bytes"`     // stdout of the checked run
	VsLast   float64 `json:"vs_last"`       // median / median of the group's last case
	Command  string  `json:"command"`
}

func main() {
	runs := flag.Int("runs", 30, "timed runs per case")
	warmup := flag.Int("warmup", 3, "untimed warm-up rounds")
	jsonOut := flag.String("json", "", "write the results as JSON to this file")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: proctime [-runs N] [-warmup N] [-json FILE] SPEC.json")
		os.Exit(2)
	}
	b, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	var spec Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		fail(fmt.Errorf("spec %s: %w", flag.Arg(0), err))
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		fail(err)
	}
	var all []Result
	for _, g := range spec.Groups {
		for _, c := range g.Cases {
			if err := c.resolve(); err != nil {
				fail(fmt.Errorf("%s / %s: %w", g.Name, c.Name, err))
			}
		}
		res := make([]Result, len(g.Cases))
		walls := make([][]float64, len(g.Cases))
		cpus := make([][]float64, len(g.Cases))
		for i, c := range g.Cases {
			out, err := c.check()
			if err != nil {
				fail(fmt.Errorf("%s / %s: %w", g.Name, c.Name, err))
			}
			res[i] = Result{Group: g.Name, Case: c.Name, Runs: *runs, OutBytes: len(out), Command: c.command()}
		}
		for round := -*warmup; round < *runs; round++ {
			for i, c := range g.Cases {
				wall, cpu, rss, err := c.once(devnull)
				if err != nil {
					fail(fmt.Errorf("%s / %s: %w", g.Name, c.Name, err))
				}
				if round < 0 {
					continue
				}
				walls[i] = append(walls[i], wall)
				cpus[i] = append(cpus[i], cpu)
				res[i].MaxRSSMB = max(res[i].MaxRSSMB, rss)
			}
		}
		for i := range res {
			w := walls[i]
			slices.Sort(w)
			res[i].MedianMS, res[i].P25MS, res[i].P75MS = q(w, 0.5), q(w, 0.25), q(w, 0.75)
			res[i].MinMS, res[i].MaxMS = w[0], w[len(w)-1]
			slices.Sort(cpus[i])
			res[i].CPUMS = q(cpus[i], 0.5)
		}
		last := res[len(res)-1]
		fmt.Printf("%s (%d runs each, interleaved)\n", g.Name, *runs)
		for i := range res {
			res[i].VsLast = res[i].MedianMS / last.MedianMS
			r := res[i]
			fmt.Printf("  %-22s median %8.2f ms  [p25 %.2f, p75 %.2f, min %.2f]  cpu %6.2f ms  rss %5.1f MB  x%.2f of %s\n",
				r.Case, r.MedianMS, r.P25MS, r.P75MS, r.MinMS, r.CPUMS, r.MaxRSSMB, r.VsLast, last.Case)
		}
		all = append(all, res...)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(all, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "proctime:", err)
	os.Exit(1)
}

// q is the quantile p of sorted s (linear interpolation).
func q(s []float64, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	x := p * float64(len(s)-1)
	i := int(x)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (x-float64(i))*(s[i+1]-s[i])
}

func (c *Case) resolve() error {
	if len(c.Argv) == 0 {
		return fmt.Errorf("empty argv")
	}
	c.argv = make([]string, len(c.Argv))
	for i, a := range c.Argv {
		if f, ok := strings.CutPrefix(a, "@"); ok && i > 0 {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			a = strings.TrimRight(string(b), "\n")
		}
		c.argv[i] = a
	}
	p, err := exec.LookPath(c.argv[0])
	if err != nil {
		return err
	}
	c.argv[0] = p
	return nil
}

// command is the case as a shell command line (for the docs).
func (c *Case) command() string {
	s := strings.Join(c.Argv, " ")
	if len(c.Env) > 0 {
		s = strings.Join(c.Env, " ") + " " + s
	}
	if c.Stdin != "" {
		s += " < " + c.Stdin
	}
	return s
}

func (c *Case) cmd() (*exec.Cmd, func(), error) {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	done := func() {}
	if c.Stdin != "" {
		f, err := os.Open(c.Stdin)
		if err != nil {
			return nil, nil, err
		}
		cmd.Stdin = f
		done = func() { f.Close() }
	}
	return cmd, done, nil
}

// check runs the case once, capturing its output; it must exit 0.
func (c *Case) check() ([]byte, error) {
	cmd, done, err := c.cmd()
	if err != nil {
		return nil, err
	}
	defer done()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", c.command()[:min(len(c.command()), 200)], err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// once times one run: wall ms, user+sys ms, max RSS MB.
func (c *Case) once(devnull *os.File) (float64, float64, float64, error) {
	cmd, done, err := c.cmd()
	if err != nil {
		return 0, 0, 0, err
	}
	defer done()
	cmd.Stdout, cmd.Stderr = devnull, devnull
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, 0, err
	}
	wall := time.Since(t0)
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var cpu, rss float64
	if ru != nil {
		cpu = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
		rss = float64(ru.Maxrss) / 1024
	}
	return float64(wall) / 1e6, cpu, rss, nil
}
