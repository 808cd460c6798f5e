// Command realbench is benchmark 3 of docs/benchmarks.md: resume wall time on
// the real elastic cluster (Slurm 24.11 head + private Podman service, from
// tests/elastic) for 1, 8 and 32 nodes, until every node's container runs
// and its address is in Slurm, three ways, each run inside the head
// container (where slurmctld runs its ResumeProgram) as SlurmUser under
// timeit, which reports wall time and the CPU time of the process and of
// everything it waited for:
//
//   - ours: /usr/libexec/slurm-elastic/slurm-elastic-resume cloud[1-N], with
//     the Slurm backend set to rest and to scontrol;
//   - shell: tests/bench/shell-resume.sh, a sequential podman run + podman
//     inspect + scontrol update loop with a static podman-remote;
//   - bare: bareapi, parallel create + start + inspect through the Go
//     bindings and nothing else (no Slurm update: the machine's limit);
//   - bare-idle (investigation, not in the default set): bare with the
//     containers running `sleep infinity` instead of munged + slurmd.
//
// Runs are interleaved (ours, shell, bare, ours, ...) so that load from
// other work hits each method alike; before each run every node container
// is removed and the machine gets a moment to settle. After each run the
// containers (and, for ours and shell, the NodeAddr of every node in
// Slurm) are checked; a failed check is breakage (exit 1), a missed target
// is not. The cluster is stopped at the end, also on failure or signal.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

const binInHead = harness.BinDirInHead

// Run is one timed run.
type Run struct {
	Method string  `json:"method"`
	Nodes  int     `json:"nodes"`
	Rep    int     `json:"rep"`
	WallMS float64 `json:"wall_ms"`
	CPUMS  float64 `json:"cpu_ms"` // user+sys of the process and its waited-for children
	RSSKB  int64   `json:"maxrss_kb"`
}

// Summary is the median over the runs of one method and size.
type Summary struct {
	Method       string  `json:"method"`
	Nodes        int     `json:"nodes"`
	Runs         int     `json:"runs"`
	WallMedianMS float64 `json:"wall_median_ms"`
	WallMinMS    float64 `json:"wall_min_ms"`
	WallMaxMS    float64 `json:"wall_max_ms"`
	CPUPerNodeMS float64 `json:"cpu_per_node_ms"` // median
	MaxRSSMB     float64 `json:"maxrss_mb"`
}

type timeitResult struct {
	RC       int     `json:"rc"`
	WallMS   float64 `json:"wall_ms"`
	UserMS   float64 `json:"user_ms"`
	SysMS    float64 `json:"sys_ms"`
	MaxRSSKB int64   `json:"maxrss_kb"`
	Output   string  `json:"output_tail"`
}

type bench struct {
	c       *elastic.Cluster
	logw    io.Writer
	methods []string
	cfg     string // backend the config in head is set to now
	settle  time.Duration
	trace   bool
}

func main() {
	binDir := flag.String("bin", os.Getenv("SE_BIN_DIR"), "dir with the built slurm-elastic binaries (make build)")
	tools := flag.String("tools", "", "dir with the static timeit and bareapi binaries")
	podmanRemote := flag.String("podman-remote", "", "static podman-remote binary for the shell baseline ('' = skip it)")
	name := flag.String("name", "se-bench", "cluster name (keep it se-bench*)")
	sizes := flag.String("sizes", "1,8,32", "node counts")
	runs := flag.Int("runs", 3, "runs per method and size")
	methods := flag.String("methods", "ours-rest,ours-scontrol,shell,bare", "methods to run")
	jsonOut := flag.String("json", "", "write runs and summaries as JSON here")
	settle := flag.Duration("settle", 2*time.Second, "pause after cleaning up, before each run")
	verbose := flag.Bool("v", false, "cluster progress lines on stderr")
	logs := flag.String("logs", "", "copy the hook and slurmctld logs here before the cluster is stopped")
	trace := flag.Bool("trace", false, "investigation: per-step times of the shell loop and bareapi on stderr (not for timed runs)")
	flag.Parse()
	if !strings.HasPrefix(*name, "se-bench") {
		fail(fmt.Errorf("cluster name %q must start with se-bench", *name))
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("bad size %q", s))
		}
		ns = append(ns, n)
	}
	ms := strings.Split(*methods, ",")
	if *podmanRemote == "" {
		ms = slices.DeleteFunc(ms, func(m string) bool { return m == "shell" })
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logw := io.Discard
	if *verbose {
		logw = os.Stderr
	}
	if err := run(ctx, *binDir, *tools, *podmanRemote, *name, ns, *runs, ms, *jsonOut, *logs, *settle, *trace, logw); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "realbench:", err)
	os.Exit(1)
}

func run(ctx context.Context, binDir, tools, podmanRemote, name string, sizes []int, runs int, methods []string, jsonOut, logs string, settle time.Duration, trace bool, logw io.Writer) (err error) {
	if binDir == "" || tools == "" {
		return errors.New("-bin (or SE_BIN_DIR) and -tools are required")
	}
	maxN := slices.Max(sizes)
	dir, err := os.MkdirTemp("", "se-bench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{}
	for _, b := range []string{"slurm-elastic", "slurm-elastic-resume", "slurm-elastic-suspend", "slurm-elastic-resume-fail", "slurm-elastic-prolog"} {
		files[b] = filepath.Join(binDir, b)
	}
	files["se-bench-timeit"] = filepath.Join(tools, "timeit")
	files["se-bench-bareapi"] = filepath.Join(tools, "bareapi")
	if podmanRemote != "" {
		files["podman"] = podmanRemote
		self, _ := os.Executable()
		script := filepath.Join(filepath.Dir(self), "shell-resume.sh")
		if _, err := os.Stat(script); err != nil {
			script = filepath.Join(tools, "shell-resume.sh")
		}
		files["shell-resume.sh"] = script
	}
	for dst, src := range files {
		if err := copyFile(src, filepath.Join(dir, dst)); err != nil {
			return err
		}
	}

	s := elastic.Settings{Name: name, Backend: "rest", CloudNodes: maxN, Concurrency: max(32, maxN), SuspendTime: time.Hour}
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	c, err := elastic.Start(sctx, s, dir, logw)
	cancel()
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	fmt.Fprintf(os.Stderr, "realbench: cluster %s up in %s (head %s, network %s)\n", name, time.Since(t0).Round(time.Second), c.HeadIP, c.Network)
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "realbench: diagnostics:\n%s\n", c.Diagnostics(sctx))
		}
		if logs != "" {
			if lerr := copyLogs(logs, c.LogDir, c.SlurmLogDir); lerr != nil {
				fmt.Fprintf(os.Stderr, "realbench: copy logs: %v\n", lerr)
			}
		}
		if serr := c.Stop(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop cluster: %w", serr))
		}
	}()
	b := &bench{c: c, logw: logw, methods: methods, cfg: "rest", settle: settle, trace: trace}

	var all []Run
	for _, n := range sizes {
		for rep := 1; rep <= runs; rep++ {
			for _, m := range methods {
				if err := ctx.Err(); err != nil {
					return err
				}
				r, err := b.once(ctx, m, n)
				if err != nil {
					return fmt.Errorf("%s, %d nodes, run %d: %w", m, n, rep, err)
				}
				r.Rep = rep
				all = append(all, r)
				fmt.Fprintf(os.Stderr, "realbench: %-14s %2d nodes run %d: %7.0f ms wall, %6.1f ms CPU/node\n", m, n, rep, r.WallMS, r.CPUMS/float64(n))
			}
		}
	}
	if err := b.cleanup(ctx); err != nil {
		return err
	}
	sums := summarize(all, sizes, methods)
	printTable(os.Stdout, sums, sizes)
	if jsonOut != "" {
		out, _ := json.MarshalIndent(map[string]any{"runs": all, "summary": sums}, "", "  ")
		if err := os.WriteFile(jsonOut, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyLogs copies the regular files of dirs into dst.
func copyLogs(dst string, dirs ...string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				b, err := os.ReadFile(filepath.Join(d, e.Name()))
				if err == nil {
					err = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
				}
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func hostlist(n int) string {
	if n == 1 {
		return "cloud1"
	}
	return fmt.Sprintf("cloud[1-%d]", n)
}

// once cleans up, runs method m for n nodes under timeit in head, and
// checks the outcome.
func (b *bench) once(ctx context.Context, m string, n int) (Run, error) {
	if err := b.cleanup(ctx); err != nil {
		return Run{}, err
	}
	if backend, ok := strings.CutPrefix(m, "ours-"); ok && backend != b.cfg {
		s := b.c.Settings
		s.Backend = backend
		if err := b.c.Configure(ctx, s); err != nil {
			return Run{}, err
		}
		b.cfg = backend
	}
	select {
	case <-ctx.Done():
		return Run{}, ctx.Err()
	case <-time.After(b.settle):
	}
	c := b.c
	argv := []string{binInHead + "/se-bench-timeit"}
	switch {
	case strings.HasPrefix(m, "ours"):
		argv = append(argv, "--", binInHead+"/slurm-elastic-resume", hostlist(n))
	case m == "shell":
		for _, kv := range []string{"SE_CLUSTER=" + c.Name, "SE_NETWORK=" + c.Network, "SE_IMAGE=" + c.Image,
			"SE_HEAD_IP=" + c.HeadIP, "SE_MUNGE_KEY=" + c.MungeKey, "SE_SHARED=" + c.SharedDir} {
			argv = append(argv, "-env", kv)
		}
		if b.trace {
			argv = append(argv, "-env", "SE_TRACE=1")
		}
		argv = append(argv, "--", "/bin/sh", binInHead+"/shell-resume.sh", hostlist(n))
	case m == "bare" || m == "bare-idle":
		argv = append(argv, "--", binInHead+"/se-bench-bareapi", "-url", "unix://"+harness.PodmanSocketInHead,
			"-cluster", c.Name, "-network", c.Network, "-image", c.Image,
			"-env", "SLURM_CONF_SERVER="+c.HeadIP,
			"-mount", c.MungeKey+":"+harness.MungeKeyInNode+":ro", "-mount", c.SharedDir+":"+elastic.SharedInNodes)
		if m == "bare-idle" {
			// Investigation: the same containers running `sleep infinity`
			// instead of munged + slurmd, to separate Podman's cost from the
			// node's own boot.
			argv = append(argv, "-command", "sleep infinity")
		}
		for i := 1; i <= n; i++ {
			argv = append(argv, "cloud"+strconv.Itoa(i))
		}
	default:
		return Run{}, fmt.Errorf("unknown method %q", m)
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := c.ExecAs(rctx, "slurm", argv...)
	if err != nil {
		return Run{}, fmt.Errorf("timeit in head: %w", err)
	}
	var tr timeitResult
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &tr); err != nil {
		return Run{}, fmt.Errorf("timeit output %q: %w", out, err)
	}
	if tr.RC != 0 {
		return Run{}, fmt.Errorf("exit code %d: %s", tr.RC, tr.Output)
	}
	if b.trace && (strings.HasPrefix(m, "bare") || m == "shell") {
		fmt.Fprintf(os.Stderr, "%s\n", strings.TrimSpace(tr.Output))
	}
	if err := b.check(ctx, m, n); err != nil {
		return Run{}, err
	}
	return Run{Method: m, Nodes: n, WallMS: tr.WallMS, CPUMS: tr.UserMS + tr.SysMS, RSSKB: tr.MaxRSSKB}, nil
}

// check verifies that cloud1..cloudN run (and, but for bare, that Slurm has
// each container's address as NodeAddr).
func (b *bench) check(ctx context.Context, m string, n int) error {
	c := b.c
	ids, err := b.containers(ctx, true)
	if err != nil {
		return err
	}
	if len(ids) != n {
		return fmt.Errorf("check: %d running node containers, want %d", len(ids), n)
	}
	if strings.HasPrefix(m, "bare") {
		return nil
	}
	out, err := c.Podman(ctx, append([]string{"inspect", "--format",
		"{{.Config.Hostname}} {{(index .NetworkSettings.Networks \"" + c.Network + "\").IPAddress}}"}, ids...)...)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	ips := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			ips[f[0]] = f[1]
		}
	}
	out, err = c.Exec(ctx, "scontrol", "show", "node", "-o", hostlist(n))
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	addr := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var node, a string
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "NodeName="); ok {
				node = v
			}
			if v, ok := strings.CutPrefix(f, "NodeAddr="); ok {
				a = v
			}
		}
		addr[node] = a
	}
	for i := 1; i <= n; i++ {
		node := "cloud" + strconv.Itoa(i)
		if ips[node] == "" || addr[node] != ips[node] {
			return fmt.Errorf("check: node %s: NodeAddr %q in Slurm, container address %q", node, addr[node], ips[node])
		}
	}
	return nil
}

// containers returns the IDs of the cluster's node containers (running only
// when running is set).
func (b *bench) containers(ctx context.Context, running bool) ([]string, error) {
	args := []string{"ps", "-a", "--format", "{{.ID}}", "--filter", "label=slurm-elastic.cluster=" + b.c.Name}
	if running {
		args = append(args, "--filter", "status=running")
	}
	out, err := b.c.Podman(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("list node containers: %w", err)
	}
	return strings.Fields(out), nil
}

// cleanup removes every node container (the head carries no cluster label).
func (b *bench) cleanup(ctx context.Context) error {
	for try := 0; try < 5; try++ {
		ids, err := b.containers(ctx, false)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := b.c.Podman(ctx, append([]string{"rm", "--force", "--time", "0"}, ids...)...); err != nil {
			fmt.Fprintf(b.logw, "realbench: cleanup: %v\n", err)
		}
	}
	return errors.New("cleanup: node containers are left after 5 tries")
}

func summarize(all []Run, sizes []int, methods []string) []Summary {
	var out []Summary
	for _, n := range sizes {
		for _, m := range methods {
			var walls, cpus []float64
			var rss int64
			for _, r := range all {
				if r.Method == m && r.Nodes == n {
					walls = append(walls, r.WallMS)
					cpus = append(cpus, r.CPUMS/float64(n))
					rss = max(rss, r.RSSKB)
				}
			}
			if len(walls) == 0 {
				continue
			}
			slices.Sort(walls)
			slices.Sort(cpus)
			out = append(out, Summary{Method: m, Nodes: n, Runs: len(walls), WallMedianMS: median(walls),
				WallMinMS: walls[0], WallMaxMS: walls[len(walls)-1], CPUPerNodeMS: median(cpus), MaxRSSMB: float64(rss) / 1024})
		}
	}
	return out
}

func median(s []float64) float64 {
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, sums []Summary, sizes []int) {
	fmt.Fprintln(w, "| nodes | method | wall median (min-max) | CPU per node | max RSS | vs shell | vs bare |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|")
	find := func(m string, n int) *Summary {
		for i := range sums {
			if sums[i].Method == m && sums[i].Nodes == n {
				return &sums[i]
			}
		}
		return nil
	}
	for _, n := range sizes {
		shell, bare := find("shell", n), find("bare", n)
		for _, s := range sums {
			if s.Nodes != n {
				continue
			}
			vsShell, vsBare := "", ""
			if shell != nil && s.Method != "shell" {
				vsShell = fmt.Sprintf("%.2fx faster", shell.WallMedianMS/s.WallMedianMS)
			}
			if bare != nil && s.Method != "bare" {
				vsBare = fmt.Sprintf("%.2fx", s.WallMedianMS/bare.WallMedianMS)
			}
			fmt.Fprintf(w, "| %d | %s | %.0f ms (%.0f-%.0f) | %.1f ms | %.0f MB | %s | %s |\n", n, s.Method,
				s.WallMedianMS, s.WallMinMS, s.WallMaxMS, s.CPUPerNodeMS, s.MaxRSSMB, vsShell, vsBare)
		}
	}
	n := slices.Max(sizes)
	shell, bare := find("shell", n), find("bare", n)
	for _, s := range sums {
		if s.Nodes != n || !strings.HasPrefix(s.Method, "ours") {
			continue
		}
		line := fmt.Sprintf("targets at %d nodes, %s:", n, s.Method)
		if shell != nil {
			x := shell.WallMedianMS / s.WallMedianMS
			line += fmt.Sprintf(" >= 2.5x faster than shell: %s (%.2fx);", met(x >= 2.5), x)
		}
		if bare != nil {
			x := s.WallMedianMS / bare.WallMedianMS
			line += fmt.Sprintf(" within 1.15x of bare: %s (%.2fx);", met(x <= 1.15), x)
		}
		line += fmt.Sprintf(" CPU per node < 20 ms: %s (%.1f ms)", met(s.CPUPerNodeMS < 20), s.CPUPerNodeMS)
		fmt.Fprintln(w, line)
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
