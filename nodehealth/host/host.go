// Package host holds the node health checks that read the host through
// gopsutil: memory, disks, mounts, CPUs and required processes. Each check
// reads /proc and /sys (HOST_PROC, HOST_SYS or a context carrying a
// gopsutil common.EnvMap point them at fixture trees) and honours its
// context deadline.
package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
	"golang.org/x/sys/unix"

	"github.com/slurm-elastic/slurm-elastic/nodehealth"
)

// Env points gopsutil at other /proc and /sys trees (fixtures, or the
// host's from inside a container): common.HostProcEnvKey,
// common.HostSysEnvKey, common.HostProcMountinfo. nil = the live host.
type Env = common.EnvMap

// withEnv returns ctx carrying env for gopsutil when env is not nil.
func withEnv(ctx context.Context, env Env) context.Context {
	if env == nil {
		return ctx
	}
	return context.WithValue(ctx, common.EnvKey, env)
}

// Memory checks total memory against the node's RealMemory (a lost DIMM),
// available memory and swap use.
type Memory struct {
	// RealMemoryMB returns the expected memory in MB (0 = unknown: the
	// total is not checked).
	RealMemoryMB        func() int64
	MinTotalPercent     float64 // 0 = not checked
	MinAvailablePercent float64 // 0 = not checked
	MaxSwapUsedPercent  float64 // 0 = not checked
	Env                 Env     // fixture trees; nil = the live host
}

// Name implements nodehealth.Check.
func (*Memory) Name() string { return "memory" }

// Run implements nodehealth.Check. Blocks on reading /proc/meminfo.
func (m *Memory) Run(ctx context.Context) []nodehealth.Finding {
	ctx = withEnv(ctx, m.Env)
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return []nodehealth.Finding{nodehealth.Unknownf("mem", "read memory: %v", err)}
	}
	var out []nodehealth.Finding
	totalMB := int64(vm.Total >> 20)
	if want := expect(m.RealMemoryMB); want > 0 && m.MinTotalPercent > 0 {
		pct := 100 * float64(totalMB) / float64(want)
		if pct < m.MinTotalPercent {
			out = append(out, nodehealth.Failf("mem", nodehealth.ActionDrain,
				"total %d MB is %.1f%% of RealMemory %d MB, want >= %g%% (lost DIMM?)", totalMB, pct, want, m.MinTotalPercent))
		} else {
			out = append(out, nodehealth.OKf("mem", "total %d MB, RealMemory %d MB", totalMB, want))
		}
	}
	if m.MinAvailablePercent > 0 && vm.Total > 0 {
		pct := 100 * float64(vm.Available) / float64(vm.Total)
		if pct < m.MinAvailablePercent {
			out = append(out, nodehealth.Failf("mem-available", nodehealth.ActionDrain,
				"%.1f%% available (%d MB), want >= %g%%", pct, vm.Available>>20, m.MinAvailablePercent))
		} else {
			out = append(out, nodehealth.OKf("mem-available", "%.1f%% available", pct))
		}
	}
	if m.MaxSwapUsedPercent > 0 {
		// From meminfo (SwapTotal, SwapFree), not mem.SwapMemory, which asks
		// sysinfo(2) and so ignores HOST_PROC.
		if vm.SwapTotal == 0 {
			out = append(out, nodehealth.OKf("swap", "no swap"))
		} else if pct := 100 * float64(vm.SwapTotal-vm.SwapFree) / float64(vm.SwapTotal); pct > m.MaxSwapUsedPercent {
			out = append(out, nodehealth.Failf("swap", nodehealth.ActionDrain,
				"%.1f%% of swap used, want <= %g%%", pct, m.MaxSwapUsedPercent))
		} else {
			out = append(out, nodehealth.OKf("swap", "%.1f%% of swap used", pct))
		}
	}
	if len(out) == 0 {
		out = append(out, nodehealth.OKf("mem", "total %d MB (nothing else configured)", totalMB))
	}
	return out
}

func expect[T int | int64](f func() T) T {
	if f == nil {
		return 0
	}
	return f()
}

// Prober runs a file-system call that may hang (statfs on a dead NFS
// server) without hanging its caller: the call runs in a goroutine, the
// caller waits until ctx is done, and while a call on a path is still stuck
// no second one is started on it (at most one stuck thread per path). The
// zero value uses unix.Statfs. Safe for concurrent use.
type Prober struct {
	// Syscall replaces unix.Statfs (tests).
	Syscall func(path string, st *unix.Statfs_t) error

	mu    sync.Mutex
	stuck map[string]time.Time // path -> when the stuck call started
}

// ErrStuck is returned (wrapped) for a path whose previous probe has not
// returned yet.
var ErrStuck = errors.New("previous probe still stuck")

// Statfs returns statfs(path), or ctx's error when it does not return in
// time, or ErrStuck when an earlier call on path never returned. Blocks at
// most until ctx is done.
func (p *Prober) Statfs(ctx context.Context, path string) (unix.Statfs_t, error) {
	p.mu.Lock()
	if p.stuck == nil {
		p.stuck = map[string]time.Time{}
	}
	if since, ok := p.stuck[path]; ok {
		p.mu.Unlock()
		return unix.Statfs_t{}, fmt.Errorf("%s: %w since %s", path, ErrStuck, since.UTC().Format(time.RFC3339))
	}
	p.stuck[path] = time.Now()
	p.mu.Unlock()
	statfs := p.Syscall
	if statfs == nil {
		statfs = unix.Statfs
	}
	type res struct {
		st  unix.Statfs_t
		err error
	}
	done := make(chan res, 1)
	go func() {
		var st unix.Statfs_t
		err := statfs(path, &st)
		p.mu.Lock()
		delete(p.stuck, path)
		p.mu.Unlock()
		done <- res{st, err}
	}()
	select {
	case r := <-done:
		return r.st, r.err
	case <-ctx.Done():
		return unix.Statfs_t{}, fmt.Errorf("%s: no answer: %w", path, ctx.Err())
	}
}

type probeResult struct {
	st  unix.Statfs_t
	err error
}

// statfsAll probes every path concurrently, so one hung file system
// cannot use up the deadline of the others. Blocks until ctx is done at
// most.
func statfsAll(ctx context.Context, p *Prober, paths []string) []probeResult {
	out := make([]probeResult, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() {
			st, err := p.Statfs(ctx, path)
			out[i] = probeResult{st, err}
		})
	}
	wg.Wait()
	return out
}

// Disk checks free space and free inodes on configured paths.
type Disk struct {
	Paths  []DiskPath
	Prober *Prober // nil: a private one
	once   sync.Once
}

// DiskPath is one path and its thresholds (percent; 0 = not checked).
type DiskPath struct {
	Path                 string
	MinFreePercent       float64
	MinFreeInodesPercent float64
}

// Name implements nodehealth.Check.
func (*Disk) Name() string { return "disk" }

// Run implements nodehealth.Check. Blocks on one statfs per path, each
// bounded by ctx.
func (d *Disk) Run(ctx context.Context) []nodehealth.Finding {
	d.once.Do(func() {
		if d.Prober == nil {
			d.Prober = &Prober{}
		}
	})
	paths := make([]string, len(d.Paths))
	for i, p := range d.Paths {
		paths[i] = p.Path
	}
	probes := statfsAll(ctx, d.Prober, paths)
	var out []nodehealth.Finding
	for i, p := range d.Paths {
		st, err := probes[i].st, probes[i].err
		switch {
		case errors.Is(err, ErrStuck), errors.Is(err, context.DeadlineExceeded):
			out = append(out, nodehealth.Failf(p.Path, nodehealth.ActionDrain, "file system not responding: %v", err))
			continue
		case err != nil:
			out = append(out, nodehealth.Failf(p.Path, nodehealth.ActionDrain, "statfs: %v", err))
			continue
		}
		var bad []string
		var free, ifree float64 = 100, 100
		if st.Blocks > 0 {
			free = 100 * float64(st.Bavail) / float64(st.Blocks)
		}
		if st.Files > 0 {
			ifree = 100 * float64(st.Ffree) / float64(st.Files)
		}
		if p.MinFreePercent > 0 && free < p.MinFreePercent {
			bad = append(bad, fmt.Sprintf("%.1f%% space free (%d MB), want >= %g%%", free, st.Bavail*uint64(st.Bsize)>>20, p.MinFreePercent))
		}
		if p.MinFreeInodesPercent > 0 && st.Files > 0 && ifree < p.MinFreeInodesPercent {
			bad = append(bad, fmt.Sprintf("%.1f%% inodes free, want >= %g%%", ifree, p.MinFreeInodesPercent))
		}
		if len(bad) > 0 {
			out = append(out, nodehealth.Failf(p.Path, nodehealth.ActionDrain, "%s", strings.Join(bad, "; ")))
		} else {
			out = append(out, nodehealth.OKf(p.Path, "%.1f%% space, %.1f%% inodes free", free, ifree))
		}
	}
	return out
}

// Mounts checks that configured mount points are mounted (from
// mountinfo), read-write when asked, and answer a statfs in time.
type Mounts struct {
	Mounts []Mount
	Prober *Prober // nil: a private one
	Env    Env     // fixture trees; nil = the live host
	once   sync.Once
}

// Mount is one required mount point.
type Mount struct {
	Path      string
	ReadWrite bool
}

// Name implements nodehealth.Check.
func (*Mounts) Name() string { return "mounts" }

// Run implements nodehealth.Check. Blocks on reading mountinfo and one
// statfs per mount, each bounded by ctx.
func (m *Mounts) Run(ctx context.Context) []nodehealth.Finding {
	m.once.Do(func() {
		if m.Prober == nil {
			m.Prober = &Prober{}
		}
	})
	parts, err := disk.PartitionsWithContext(withEnv(ctx, m.Env), true)
	if err != nil {
		return []nodehealth.Finding{nodehealth.Unknownf("mounts", "read mount table: %v", err)}
	}
	paths := make([]string, len(m.Mounts))
	for i, mt := range m.Mounts {
		paths[i] = mt.Path
	}
	probes := statfsAll(ctx, m.Prober, paths)
	var out []nodehealth.Finding
	for j, want := range m.Mounts {
		// The last entry for a mount point is the one in effect.
		i := len(parts) - 1
		for i >= 0 && parts[i].Mountpoint != want.Path {
			i--
		}
		if i < 0 {
			out = append(out, nodehealth.Failf(want.Path, nodehealth.ActionDrain, "not mounted"))
			continue
		}
		p := parts[i]
		if want.ReadWrite && slices.Contains(p.Opts, "ro") {
			out = append(out, nodehealth.Failf(want.Path, nodehealth.ActionDrain, "mounted read-only (%s from %s)", p.Fstype, p.Device))
			continue
		}
		if err := probes[j].err; err != nil {
			out = append(out, nodehealth.Failf(want.Path, nodehealth.ActionDrain, "%s mount not responding: %v", p.Fstype, err))
			continue
		}
		out = append(out, nodehealth.OKf(want.Path, "%s from %s", p.Fstype, p.Device))
	}
	return out
}

// CPUs checks that at least the expected logical CPUs are online.
type CPUs struct {
	// Expected returns the expected count (0 = unknown: not checked).
	Expected func() int
	Env      Env
}

// Name implements nodehealth.Check.
func (*CPUs) Name() string { return "cpus" }

// Run implements nodehealth.Check. Blocks on reading /proc/cpuinfo.
func (c *CPUs) Run(ctx context.Context) []nodehealth.Finding {
	n, err := cpu.CountsWithContext(withEnv(ctx, c.Env), true)
	if err != nil {
		return []nodehealth.Finding{nodehealth.Unknownf("cpus", "count CPUs: %v", err)}
	}
	want := expect(c.Expected)
	if want > 0 && n < want {
		return []nodehealth.Finding{nodehealth.Failf("cpus", nodehealth.ActionDrain, "%d CPUs online, want %d", n, want)}
	}
	return []nodehealth.Finding{nodehealth.OKf("cpus", "%d CPUs online", n)}
}

// Processes checks that required daemons (munged, slurmd) run.
type Processes struct {
	Names []string
	Env   Env
}

// Name implements nodehealth.Check.
func (*Processes) Name() string { return "processes" }

// commLen is the longest name /proc/<pid>/comm holds (TASK_COMM_LEN - 1):
// longer names are cut there.
const commLen = 15

// procRoot is /proc, or the tree the context's gopsutil EnvMap or
// HOST_PROC names.
func procRoot(ctx context.Context) string {
	if env, ok := ctx.Value(common.EnvKey).(common.EnvMap); ok && env[common.HostProcEnvKey] != "" {
		return env[common.HostProcEnvKey]
	}
	if v := os.Getenv("HOST_PROC"); v != "" {
		return v
	}
	return "/proc"
}

// Run implements nodehealth.Check. Blocks on reading /proc/<pid>/comm of
// each process until every name is found (one small read per process; a
// name longer than comm holds is confirmed from the process's argv[0]);
// stops early when ctx is done.
func (p *Processes) Run(ctx context.Context) []nodehealth.Finding {
	ctx = withEnv(ctx, p.Env)
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return []nodehealth.Finding{nodehealth.Unknownf("processes", "list processes: %v", err)}
	}
	root := procRoot(ctx)
	missing := map[string]bool{}
	for _, n := range p.Names {
		missing[n] = true
	}
	for _, pid := range pids {
		if len(missing) == 0 {
			break
		}
		if ctx.Err() != nil {
			return []nodehealth.Finding{nodehealth.Unknownf("processes", "interrupted: %v", ctx.Err())}
		}
		dir := filepath.Join(root, strconv.Itoa(int(pid)))
		b, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil {
			continue // gone since the listing
		}
		comm := strings.TrimSuffix(string(b), "\n")
		if missing[comm] {
			delete(missing, comm)
		}
		if len(comm) < commLen {
			continue
		}
		for n := range missing {
			if len(n) > commLen && strings.HasPrefix(n, comm) && argv0(dir) == n {
				delete(missing, n)
			}
		}
	}
	var out []nodehealth.Finding
	for _, n := range p.Names {
		if missing[n] {
			out = append(out, nodehealth.Failf(n, nodehealth.ActionDrain, "not running"))
		} else {
			out = append(out, nodehealth.OKf(n, "running"))
		}
	}
	return out
}

// argv0 is the base name of the first word of the process's command line
// in dir ("" when it cannot be read).
func argv0(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(b), "\x00")
	return filepath.Base(first)
}
