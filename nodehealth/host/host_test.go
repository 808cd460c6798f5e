package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"golang.org/x/sys/unix"

	"github.com/slurm-elastic/slurm-elastic/nodehealth"
)

// fixture writes files under a fresh /proc tree and returns the Env
// pointing gopsutil at it.
func fixture(t *testing.T, files map[string]string) Env {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Env{common.HostProcEnvKey: root, common.HostSysEnvKey: filepath.Join(root, "sys"),
		common.HostProcMountinfo: filepath.Join(root, "1", "mountinfo")}
}

const meminfo = `MemTotal:       16384000 kB
MemFree:          100000 kB
MemAvailable:     163840 kB
Buffers:               0 kB
Cached:                0 kB
SwapTotal:       1000000 kB
SwapFree:         100000 kB
`

// statuses returns "component=STATUS" for each finding.
func statuses(fs []nodehealth.Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Component+"="+f.Status.String())
	}
	return strings.Join(s, " ")
}

func TestMemoryFixture(t *testing.T) {
	env := fixture(t, map[string]string{"meminfo": meminfo, "vmstat": ""})
	tests := []struct {
		name string
		m    Memory
		want string
	}{
		{"lost DIMM", Memory{RealMemoryMB: func() int64 { return 32000 }, MinTotalPercent: 95}, "mem=FAIL"},
		{"total matches", Memory{RealMemoryMB: func() int64 { return 16000 }, MinTotalPercent: 95}, "mem=OK"},
		{"RealMemory unknown", Memory{RealMemoryMB: func() int64 { return 0 }, MinTotalPercent: 95}, "mem=OK"},
		{"available low", Memory{MinAvailablePercent: 2}, "mem-available=FAIL"},
		{"available ok", Memory{MinAvailablePercent: 0.5}, "mem-available=OK"},
		{"swap full", Memory{MaxSwapUsedPercent: 50}, "swap=FAIL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.m.Env = env
			if got := statuses(tc.m.Run(context.Background())); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	// A missing meminfo is Unknown, never a failure.
	m := Memory{Env: fixture(t, nil), MinAvailablePercent: 2}
	if got := statuses(m.Run(context.Background())); got != "mem=UNKNOWN" {
		t.Fatalf("missing meminfo: %s", got)
	}
}

// fakeStatfs returns a file system of 1000 blocks and 1000 inodes with
// the given free counts.
func fakeStatfs(bfree, ffree uint64) func(string, *unix.Statfs_t) error {
	return func(_ string, st *unix.Statfs_t) error {
		*st = unix.Statfs_t{Bsize: 4096, Blocks: 1000, Bavail: bfree, Bfree: bfree, Files: 1000, Ffree: ffree}
		return nil
	}
}

func TestDisk(t *testing.T) {
	paths := []DiskPath{{Path: "/scratch", MinFreePercent: 5, MinFreeInodesPercent: 5}}
	for _, tc := range []struct {
		name         string
		bfree, ffree uint64
		want         string
	}{
		{"plenty", 500, 500, "/scratch=OK"},
		{"disk full", 10, 500, "/scratch=FAIL"},
		{"inodes exhausted", 500, 3, "/scratch=FAIL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Disk{Paths: paths, Prober: &Prober{Syscall: fakeStatfs(tc.bfree, tc.ffree)}}
			if got := statuses(d.Run(context.Background())); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	// A hung file system fails without using up the other paths' time.
	h := &hung{path: "/nfs", release: make(chan struct{})}
	defer close(h.release)
	d0 := Disk{Paths: []DiskPath{{Path: "/nfs"}, {Path: "/scratch", MinFreePercent: 5}}, Prober: &Prober{Syscall: h.statfs}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if got := statuses(d0.Run(ctx)); got != "/nfs=FAIL /scratch=OK" {
		t.Fatalf("hung first path: %s", got)
	}
	// Live: the temp dir exists; a missing path fails.
	d := Disk{Paths: []DiskPath{{Path: t.TempDir(), MinFreePercent: 0.001}, {Path: "/nonexistent/health-test"}}}
	fs := d.Run(context.Background())
	if len(fs) != 2 || fs[0].Status != nodehealth.OK || fs[1].Status != nodehealth.Fail {
		t.Fatalf("live: %v", fs)
	}
}

const mountinfo = `22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw
36 22 0:40 / /home rw,relatime shared:2 - nfs4 srv:/home rw,vers=4.2
37 22 0:41 / /scratch rw,relatime shared:3 - nfs4 srv:/scratch rw,vers=4.2
38 22 0:42 / /apps ro,relatime shared:4 - nfs4 srv:/apps ro,vers=4.2
`

// hung blocks every statfs on path until release is closed.
type hung struct {
	path    string
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (h *hung) statfs(path string, st *unix.Statfs_t) error {
	if path == h.path {
		h.mu.Lock()
		h.calls++
		h.mu.Unlock()
		<-h.release
	}
	return fakeStatfs(500, 500)(path, st)
}

func TestMountsFixture(t *testing.T) {
	env := fixture(t, map[string]string{"1/mountinfo": mountinfo})
	h := &hung{path: "/scratch", release: make(chan struct{})}
	defer close(h.release)
	m := Mounts{Env: env, Prober: &Prober{Syscall: h.statfs}, Mounts: []Mount{
		{Path: "/home", ReadWrite: true}, {Path: "/scratch"}, {Path: "/apps", ReadWrite: true}, {Path: "/missing"},
	}}
	want := "/home=OK /scratch=FAIL /apps=FAIL /missing=FAIL"
	for round := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := m.Run(ctx)
		cancel()
		if got := statuses(fs); got != want {
			t.Fatalf("round %d: got %s, want %s (%v)", round, got, want, fs)
		}
		if !strings.Contains(fs[1].Message, "not responding") {
			t.Fatalf("round %d: stale mount message %q", round, fs[1].Message)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls != 1 {
		t.Fatalf("hung mount probed %d times; a stuck probe must not be repeated", h.calls)
	}
}

func TestCPUsAndProcessesFixture(t *testing.T) {
	env := fixture(t, map[string]string{
		"cpuinfo":      "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\nmodel name\t: x\n",
		"100/comm":     "munged\n",
		"100/status":   "Name:\tmunged\n",
		"200/comm":     "bash\n",
		"200/status":   "Name:\tbash\n",
		"self/comm":    "ignored\n",
		"1/mountinfo":  mountinfo,
		"sys/.keep":    "",
		"notapid/comm": "slurmd\n",
		"300/comm":     "slurm-elastic-h\n", // comm holds 15 bytes of a longer name
		"300/cmdline":  "/usr/sbin/slurm-elastic-health\x00--config\x00/etc/x.yaml\x00",
	})
	c := CPUs{Env: env, Expected: func() int { return 4 }}
	if got := statuses(c.Run(context.Background())); got != "cpus=FAIL" {
		t.Fatalf("cpus: %s", got)
	}
	c.Expected = func() int { return 2 }
	if got := statuses(c.Run(context.Background())); got != "cpus=OK" {
		t.Fatalf("cpus: %s", got)
	}
	p := Processes{Env: env, Names: []string{"munged", "slurmd"}}
	if got := statuses(p.Run(context.Background())); got != "munged=OK slurmd=FAIL" {
		t.Fatalf("processes: %s", got)
	}
	// Names longer than comm holds are confirmed from argv[0].
	p.Names = []string{"slurm-elastic-health", "slurm-elastic-h", "slurm-elastic-healthy"}
	if got := statuses(p.Run(context.Background())); got != "slurm-elastic-health=OK slurm-elastic-h=OK slurm-elastic-healthy=FAIL" {
		t.Fatalf("long names: %s", got)
	}
}

func TestLiveHost(t *testing.T) {
	ctx := context.Background()
	m := Memory{MinTotalPercent: 95, MinAvailablePercent: 0.01}
	var totalMB int64
	if fs := m.Run(ctx); fs[0].Status != nodehealth.OK {
		t.Fatalf("memory: %v", fs)
	}
	// Expect exactly what the host has: OK; expect twice as much: FAIL.
	var st unix.Sysinfo_t
	if err := unix.Sysinfo(&st); err != nil {
		t.Fatal(err)
	}
	totalMB = int64(st.Totalram) * int64(st.Unit) >> 20
	m.RealMemoryMB = func() int64 { return totalMB }
	if fs := m.Run(ctx); fs[0].Status != nodehealth.OK {
		t.Fatalf("memory vs own total: %v", fs)
	}
	m.RealMemoryMB = func() int64 { return 2 * totalMB }
	if fs := m.Run(ctx); fs[0].Status != nodehealth.Fail {
		t.Fatalf("memory vs double: %v", fs)
	}
	c := CPUs{Expected: func() int { return 1 }}
	if fs := c.Run(ctx); fs[0].Status != nodehealth.OK {
		t.Fatalf("cpus: %v", fs)
	}
	c.Expected = func() int { return 1 << 20 }
	if fs := c.Run(ctx); fs[0].Status != nodehealth.Fail {
		t.Fatalf("cpus: %v", fs)
	}
	self := filepath.Base(os.Args[0])
	if len(self) > 15 {
		self = self[:15] // comm is truncated to 15 bytes
	}
	p := Processes{Names: []string{self, "no-such-daemon-x"}}
	if got := statuses(p.Run(ctx)); got != self+"=OK no-such-daemon-x=FAIL" {
		t.Fatalf("processes: %s", got)
	}
	mt := Mounts{Mounts: []Mount{{Path: "/"}, {Path: "/no/such/mount"}}}
	if got := statuses(mt.Run(ctx)); got != "/=OK /no/such/mount=FAIL" {
		t.Fatalf("mounts: %s", got)
	}
}

func BenchmarkHostRound(b *testing.B) {
	checks := []nodehealth.Check{
		&Memory{MinTotalPercent: 95, MinAvailablePercent: 2, MaxSwapUsedPercent: 90, RealMemoryMB: func() int64 { return 1 }},
		&Disk{Paths: []DiskPath{{Path: os.TempDir(), MinFreePercent: 1, MinFreeInodesPercent: 1}}},
		&Mounts{Mounts: []Mount{{Path: "/"}}},
		&CPUs{Expected: func() int { return 1 }},
		&Processes{Names: []string{"init"}},
	}
	ctx := context.Background()
	for b.Loop() {
		for _, c := range checks {
			c.Run(ctx)
		}
	}
}
