package healthcmd

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
	"github.com/slurm-elastic/slurm-elastic/nodehealth"
	"github.com/slurm-elastic/slurm-elastic/nodehealth/gpu"
)

// benchHealth is the health section of the benchmarks (docs/benchmarks.md
// section 4): every host check on the live host, one custom check, the
// GPU check (NVML absent on the bench machine: one failed dlopen per
// round) and, with events, the Xid check.
func benchHealth() conf.HealthConf {
	h := conf.Default().Health
	h.Memory = conf.HealthMemory{MinTotalPercent: 95, RealMemoryMB: 1, MinAvailablePercent: 2, MaxSwapUsedPercent: 90}
	h.Disks = []conf.HealthDisk{{Path: "/", MinFreePercent: 1, MinFreeInodesPercent: 1}, {Path: os.TempDir(), MinFreePercent: 1, MinFreeInodesPercent: 1}}
	h.Mounts = []conf.HealthMount{{Path: "/", ReadWrite: false}}
	h.CPUs.Expected = runtime.NumCPU()
	// This process: present, like slurmd on a node.
	h.Processes = []string{filepath.Base(os.Args[0])}
	return h
}

// BenchmarkRound is one daemon round as Runner.Round does it: ask Slurm
// (the in-memory fake) for the node, run every host check concurrently,
// the GPU check and one custom check (/bin/true), apply the policy.
func BenchmarkRound(b *testing.B) {
	h := benchHealth()
	h.Custom = []conf.HealthCustom{{Name: "true", Command: []string{"/bin/true"}}}
	f := slurmfake.New("n1")
	r := &nodehealth.Runner{Node: "n1", Slurm: up{f}, Policy: nodehealth.Policy{DrainAfter: 2, UndrainAfter: 3}}
	r.Checks, _ = Checks(h, r.NodeInfo, gpu.NewNVML(), false)
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := r.Round(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundHostOnly is BenchmarkRound without the custom check (no
// process is started): the cost of the gopsutil host checks, the NVML
// probe and the policy.
func BenchmarkRoundHostOnly(b *testing.B) {
	f := slurmfake.New("n1")
	r := &nodehealth.Runner{Node: "n1", Slurm: up{f}, Policy: nodehealth.Policy{DrainAfter: 2, UndrainAfter: 3}}
	r.Checks, _ = Checks(benchHealth(), r.NodeInfo, gpu.NewNVML(), false)
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := r.Round(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
