package healthcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procStat is one look at a process in /proc.
type procStat struct {
	at               time.Time
	cpuTicks         int64 // utime+stime
	childTicks       int64 // cutime+cstime (reaped custom checks)
	rssKB, rssPeakKB int64 // VmRSS, VmHWM
	anonKB, fileKB   int64 // RssAnon (heap, stacks), RssFile (the binary's pages, shared and reclaimable)
}

func readProc(pid int) (procStat, error) {
	s := procStat{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// After "(comm)": state is field 3; utime, stime, cutime, cstime are 14-17.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 15 {
		return s, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	num := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	s.cpuTicks, s.childTicks = num(f[11])+num(f[12]), num(f[13])+num(f[14])
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(l, ":")
		var kb int64
		_, _ = fmt.Sscan(v, &kb)
		switch k {
		case "VmRSS":
			s.rssKB = kb
		case "VmHWM":
			s.rssPeakKB = kb
		case "RssAnon":
			s.anonKB = kb
		case "RssFile":
			s.fileKB = kb
		}
	}
	return s, nil
}

// TestFootprint is benchmark 4c of docs/benchmarks.md, run by `make
// bench-health`: it starts the built daemon (SE_HEALTH_BIN, e.g. the cgo
// binary of `make build-health`) with every host check and one custom
// check (/bin/true) every 10 s, --no-slurm, and reads its CPU time and RSS
// from /proc over SE_HEALTH_FOOTPRINT (default 5m; the first 15 s, start-up,
// are left out of the CPU figure). Skipped without SE_HEALTH_BIN (a
// measurement, not a check); fails only when the daemon dies or /proc
// cannot be read, never on a missed target.
func TestFootprint(t *testing.T) {
	bin := os.Getenv("SE_HEALTH_BIN")
	if bin == "" {
		t.Skip("a benchmark: set SE_HEALTH_BIN to the built slurm-elastic-health (make bench-health)")
	}
	dur := 5 * time.Minute
	if v := os.Getenv("SE_HEALTH_FOOTPRINT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 20*time.Second {
			t.Fatalf("SE_HEALTH_FOOTPRINT=%q: want a duration of at least 20s", v)
		}
		dur = d
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	body := fmt.Sprintf(`cluster: test
slurm: {backend: scontrol}
log: {file: %s/health.log, level: info}
podman: {hosts: [{name: local, uri: "unix:///run/podman/podman.sock"}]}
groups: [{name: cpu, nodes: "n[1-2]", cpus: 1, template: {image: "localhost/node:1", network: slurm}}]
health:
  node: n1
  interval: 10s
  memory: {min_total_percent: 95, real_memory_mb: 1, min_available_percent: 2, max_swap_used_percent: 90}
  disks: [{path: /, min_free_percent: 1, min_free_inodes_percent: 1}, {path: %s, min_free_percent: 1, min_free_inodes_percent: 1}]
  mounts: [{path: /}]
  cpus: {expected: %d}
  processes: [slurm-elastic-health]
  custom:
    - name: true
      command: [/bin/true]
`, dir, os.TempDir(), runtime.NumCPU())
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := osexec.CommandContext(ctx, bin, "--config", cfg, "--no-slurm")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	sample := func() procStat {
		s, err := readProc(pid)
		if err != nil {
			t.Fatalf("the daemon (pid %d) is gone: %v", pid, err)
		}
		return s
	}
	wait := func(d time.Duration) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "health.log"))
			t.Fatalf("the daemon exited: %v\n%s", err, log)
		case <-time.After(d):
		}
	}
	wait(15 * time.Second)
	first := sample()
	var rssMax int64
	for time.Since(first.at) < dur-15*time.Second {
		wait(5 * time.Second)
		rssMax = max(rssMax, sample().rssKB)
	}
	last := sample()
	cancel()
	<-exited
	log, _ := os.ReadFile(filepath.Join(dir, "health.log"))
	if n := strings.Count(string(log), `"msg":"health finding changed"`); n > 0 {
		t.Logf("note: %d findings were not OK on this host (the figures still hold):\n%s", n, log)
	}
	wall := last.at.Sub(first.at).Seconds()
	const hz = 100 // USER_HZ
	own := float64(last.cpuTicks-first.cpuTicks) / hz
	kids := float64(last.childTicks-first.childTicks) / hz
	t.Logf("BENCH health daemon footprint over %.0f s (interval 10s, %s): CPU %.3f%% of a core (%.2f s) + %.3f%% in the custom check's processes (%.2f s); RSS max %d KiB, peak (VmHWM) %d KiB, at the end %d KiB anonymous + %d KiB file-backed; load average %s",
		wall, bin, 100*own/wall, own, 100*kids/wall, kids, rssMax, last.rssPeakKB, last.anonKB, last.fileKB, loadavg())
	if out := os.Getenv("SE_BENCH_OUT"); out != "" {
		js, err := json.MarshalIndent(map[string]any{"wall_s": wall, "cpu_own_s": own, "cpu_children_s": kids,
			"rss_max_kib": rssMax, "rss_peak_kib": last.rssPeakKB, "rss_anon_kib": last.anonKB, "rss_file_kib": last.fileKB, "loadavg": loadavg()}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "health-footprint.json"), js, 0o644); err != nil {
			t.Error(err)
		}
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
