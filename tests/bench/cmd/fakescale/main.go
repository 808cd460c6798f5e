// Command fakescale is benchmark 1 of docs/benchmarks.md: it resumes and then
// suspends N nodes (default 10,000) through the real resume.Resume and
// suspend.Suspend code against the in-memory fake runtime (per-call latency
// and a server-side rate limit, like a cloud API) and the fake slurmctld
// (internal/slurm/slurmfake, small latency per call), and reports each phase's wall
// time beside the rate-limited minimum (N / API rate + latency), the API
// calls and throttled calls, the process's CPU time and its peak RSS
// (VmHWM from /proc/self/status, reset between phases, and getrusage
// Maxrss for the whole process).
//
// It exits 1 only when the run is broken (a node not launched, addressed or
// removed), never because a target is missed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/logging"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/power"
	"github.com/slurm-elastic/slurm-elastic/resume"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
	"github.com/slurm-elastic/slurm-elastic/suspend"
)

// Phase is the result of one phase (resume or suspend).
type Phase struct {
	Phase       string  `json:"phase"`
	Nodes       int     `json:"nodes"`
	WallS       float64 `json:"wall_s"`
	MinS        float64 `json:"min_s"` // N / API rate + runtime latency
	Ratio       float64 `json:"ratio"` // WallS / MinS
	CPUS        float64 `json:"cpu_s"` // user+sys of this process during the phase
	APICalls    int64   `json:"api_calls"`
	Throttled   int64   `json:"throttled"`
	SlurmCalls  int     `json:"slurm_updates"`
	PeakRSSMB   float64 `json:"peak_rss_mb"`    // VmHWM during the phase (reset at its start)
	MaxrssMB    float64 `json:"maxrss_mb"`      // getrusage Maxrss of the process so far
	Failed      int     `json:"failed"`         // nodes the phase reported as failed
	HeapAllocMB float64 `json:"heap_alloc_mb"`  // live heap at the end of the phase
	LogBytes    int64   `json:"log_bytes"`      // hook log written during the phase
	Concurrency int     `json:"concurrency"`    // client concurrency
	ClientRate  float64 `json:"client_rate"`    // client calls/s
	APIRate     float64 `json:"api_rate"`       // server calls/s
	LatencyMS   float64 `json:"api_latency_ms"` // per runtime call
	SlurmLatMS  float64 `json:"slurm_latency_ms"`
}

func main() {
	nodes := flag.Int("nodes", 10000, "nodes to resume and suspend")
	latency := flag.Duration("latency", 200*time.Millisecond, "fake runtime latency per call")
	apiRate := flag.Float64("api-rate", 1000, "fake runtime server-side rate limit, calls/s")
	clientRate := flag.Float64("client-rate", 1000, "client rate (resume.rate / suspend.rate), calls/s")
	concurrency := flag.Int("concurrency", 256, "client concurrency (resume/suspend.concurrency)")
	slurmLat := flag.Duration("slurm-latency", 2*time.Millisecond, "fake slurmctld latency per call")
	logLevel := flag.String("log-level", "info", "hook log level (the log goes to a temp file, as a hook's would)")
	jsonOut := flag.String("json", "", "also write the phases as JSON to this file")
	flag.Parse()

	if err := run(*nodes, *latency, *apiRate, *clientRate, *concurrency, *slurmLat, *logLevel, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "fakescale:", err)
		os.Exit(1)
	}
}

func run(n int, latency time.Duration, apiRate, clientRate float64, concurrency int, slurmLat time.Duration, level, jsonOut string) error {
	dir, err := os.MkdirTemp("", "se-bench-fakescale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logFile := filepath.Join(dir, "hook.log")
	log, closer, err := logging.Open(logFile, level, "fakescale")
	if err != nil {
		return err
	}
	defer closer.Close()

	expr := fmt.Sprintf("cloud[1-%d]", n)
	cfg := conf.Default()
	cfg.Cluster = "se-bench"
	cfg.Resume.Concurrency, cfg.Resume.Rate = concurrency, clientRate
	cfg.Suspend.Concurrency, cfg.Suspend.Rate = concurrency, clientRate
	cfg.Groups = []conf.Group{{
		Name: "cloud", Nodes: expr, Runtime: "fake", CPUs: 1, RealMemoryMB: 500,
		Template: conf.Template{Image: "localhost/node:1", CPUs: 1, MemoryMB: 768, Network: "se-bench-net"},
	}}
	cfg.Slurm.ConfServer = "10.222.0.2"
	cfg.ApplyDefaults()

	names := make([]string, n)
	for i := range names {
		names[i] = "cloud" + strconv.Itoa(i+1)
	}
	rt := runtimefake.New(runtimefake.Options{Cluster: "se-bench", Latency: latency, RateLimit: apiRate})
	sc := slurmfake.New(names...)
	sc.SetLatency(slurmLat)
	d := power.Deps{Config: &cfg, Runtimes: map[string]runtime.Runtime{"fake": rt}, Slurm: sc, Log: log}
	min := float64(n)/apiRate + latency.Seconds()
	if apiRate <= 0 {
		min = latency.Seconds()
	}

	phase := func(name string, f func(ctx context.Context) error) (Phase, error) {
		resetHWM()
		before := rt.Stats()
		beforeSlurm := sc.Calls("update")
		cpu0 := cpuTime()
		log0 := fileSize(logFile)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		t0 := time.Now()
		err := f(ctx)
		wall := time.Since(t0)
		after := rt.Stats()
		p := Phase{
			Phase: name, Nodes: n, WallS: wall.Seconds(), MinS: min, Ratio: wall.Seconds() / min,
			CPUS: (cpuTime() - cpu0).Seconds(), APICalls: after.Calls - before.Calls,
			Throttled: after.Throttled - before.Throttled, SlurmCalls: sc.Calls("update") - beforeSlurm,
			PeakRSSMB: vmHWM(), MaxrssMB: maxrss(), Failed: countJoined(err), HeapAllocMB: heapMB(),
			LogBytes: fileSize(logFile) - log0, Concurrency: concurrency, ClientRate: clientRate,
			APIRate: apiRate, LatencyMS: ms(latency), SlurmLatMS: ms(slurmLat),
		}
		return p, err
	}

	var broken []error
	res, err := phase("resume", func(ctx context.Context) error { return resume.Resume(ctx, d, names, nil) })
	if err != nil {
		broken = append(broken, fmt.Errorf("resume: %d node(s) failed: %.300v", res.Failed, err))
	}
	if got := rt.Len(); got != n {
		broken = append(broken, fmt.Errorf("resume: %d instances, want %d", got, n))
	}
	for _, name := range names {
		if nd, _ := sc.Node(name); nd.Addr != "fake-"+name {
			broken = append(broken, fmt.Errorf("resume: node %s has NodeAddr %q, want %q", name, nd.Addr, "fake-"+name))
			break
		}
	}
	emit(res)

	sus, err := phase("suspend", func(ctx context.Context) error { return suspend.Suspend(ctx, d, names) })
	if err != nil {
		broken = append(broken, fmt.Errorf("suspend: %d node(s) failed: %.300v", sus.Failed, err))
	}
	if got := rt.Len(); got != 0 {
		broken = append(broken, fmt.Errorf("suspend: %d instances left, want 0", got))
	}
	for _, name := range names {
		if nd, _ := sc.Node(name); nd.Addr != name {
			broken = append(broken, fmt.Errorf("suspend: node %s has NodeAddr %q, want %q", name, nd.Addr, name))
			break
		}
	}
	emit(sus)
	if jsonOut != "" {
		b, _ := json.MarshalIndent([]Phase{res, sus}, "", "  ")
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			broken = append(broken, err)
		}
	}
	return errors.Join(broken...)
}

func emit(p Phase) {
	fmt.Printf("%-8s nodes=%d wall=%.2fs min=%.2fs ratio=%.3f cpu=%.2fs api_calls=%d throttled=%d slurm_updates=%d peak_rss=%.1fMB maxrss=%.1fMB heap=%.1fMB log=%dB failed=%d\n",
		p.Phase, p.Nodes, p.WallS, p.MinS, p.Ratio, p.CPUS, p.APICalls, p.Throttled, p.SlurmCalls, p.PeakRSSMB, p.MaxrssMB, p.HeapAllocMB, p.LogBytes, p.Failed)
	fmt.Printf("%-8s target wall <= 1.2x min: %s (%.3fx); target peak RSS < 150 MB: %s (%.1f MB)\n",
		p.Phase, met(p.Ratio <= 1.2), p.Ratio, met(max(p.PeakRSSMB, p.MaxrssMB) < 150), max(p.PeakRSSMB, p.MaxrssMB))
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// countJoined counts the errors errors.Join put together (one per node).
func countJoined(err error) int {
	if err == nil {
		return 0
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxrss is getrusage's Maxrss (KiB on Linux) in MB.
func maxrss() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// resetHWM resets VmHWM to the current RSS (Linux: "5" > clear_refs).
func resetHWM() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// vmHWM is VmHWM of /proc/self/status in MB.
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func heapMB() float64 {
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}
