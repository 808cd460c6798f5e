package conf

import (
	"maps"
	"slices"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Mount is a bind mount from the host into the instance (groups[].template.mounts[]).
type Mount struct {
	Source      string `mapstructure:"source" yaml:"source"`
	Destination string `mapstructure:"destination" yaml:"destination"`
	ReadOnly    bool   `mapstructure:"read_only" yaml:"read_only"`
}

// Template describes how to start an instance for a node of a group
// (groups[].template). The runtime gets it as runtime.Template (Runtime).
type Template struct {
	Image    string   `mapstructure:"image" yaml:"image"`
	Command  []string `mapstructure:"command" yaml:"command"`     // empty: the image's entrypoint/cmd
	CPUs     float64  `mapstructure:"cpus" yaml:"cpus"`           // CPU limit; 0 = none
	MemoryMB int64    `mapstructure:"memory_mb" yaml:"memory_mb"` // memory limit; 0 = none
	// GPUCount is how many GPUs each node container gets: distinct
	// devices of its host's podman.hosts[].gpus, never shared. 0 = none.
	GPUCount int               `mapstructure:"gpu_count" yaml:"gpu_count"`
	Features []string          `mapstructure:"features" yaml:"features"`
	Mounts   []Mount           `mapstructure:"mounts" yaml:"mounts"`
	Env      map[string]string `mapstructure:"env" yaml:"env"`
	Network  string            `mapstructure:"network" yaml:"network"`
	// DNS lists name servers for the instance. Empty: the runtime's
	// default (Podman copies the host's resolv.conf). ["none"]: no name
	// server at all (the image's own resolv.conf), so no lookup ever
	// leaves the node — right when nodes are addressed by IP.
	DNS []string `mapstructure:"dns" yaml:"dns"`
	// Privileged runs the instance privileged. Off unless config says so.
	Privileged bool `mapstructure:"privileged" yaml:"privileged"`
}

// Runtime converts t to the runtime's type, a deep copy. It does not block.
func (t Template) Runtime() runtime.Template {
	mounts := make([]runtime.Mount, len(t.Mounts))
	for i, m := range t.Mounts {
		mounts[i] = runtime.Mount{Source: m.Source, Destination: m.Destination, ReadOnly: m.ReadOnly}
	}
	if t.Mounts == nil {
		mounts = nil
	}
	return runtime.Template{
		Image: t.Image, Command: slices.Clone(t.Command), CPUs: t.CPUs, MemoryMB: t.MemoryMB,
		GPUs: t.GPUCount, Features: slices.Clone(t.Features), Mounts: mounts,
		Env: maps.Clone(t.Env), Network: t.Network, DNS: slices.Clone(t.DNS), Privileged: t.Privileged,
	}
}
