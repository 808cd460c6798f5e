// Package build is the one place the commands build what the domain
// packages run on from a validated config: the runtimes of the groups and
// the Slurm client. Conversions from config types to runtime and Slurm
// types happen here, at the edge.
package build

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/podman"
)

// Runtimes builds the runtime of every runtime name the config's groups
// use, keyed by that name, each given the node contract from the config
// (slurm.conf_server, podman.munge_key). It blocks only as long as the implementations'
// constructors do (Podman connects lazily) and is not idempotent: each call
// builds new clients.
func Runtimes(ctx context.Context, cfg *conf.Config, log *slog.Logger) (map[string]runtime.Runtime, error) {
	out := map[string]runtime.Runtime{}
	for _, g := range cfg.Groups {
		if _, ok := out[g.Runtime]; ok {
			continue
		}
		switch g.Runtime {
		case "podman":
			hosts := make([]podman.Host, 0, len(cfg.Podman.Hosts))
			for _, h := range cfg.Podman.Hosts {
				hosts = append(hosts, podman.Host{Name: h.Name, URI: h.URI, Identity: h.Identity,
					KnownHosts: h.KnownHosts, HostKeyChecking: h.HostKeyChecking,
					MaxNodes: h.MaxNodes, CPUs: h.CPUs, MemoryMB: h.MemoryMB, GPUs: h.GPUs})
			}
			p, err := podman.New(ctx, podman.Options{
				Cluster: cfg.Cluster, Hosts: hosts, Timeout: cfg.Podman.Timeout, Logger: log,
				HostCooldown: hostCooldown(cfg.Podman.HostCooldown),
				// The node contract (runtime.EnvConfServer, runtime.MungeKeyPath).
				ConfServer: cfg.Slurm.ConfServer, MungeKey: cfg.Podman.MungeKey,
			})
			if err != nil {
				return nil, fmt.Errorf("runtime podman: %w", err)
			}
			out[g.Runtime] = p
		default:
			return nil, fmt.Errorf("group %s: unknown runtime %q", g.Name, g.Runtime)
		}
	}
	return out, nil
}

// hostCooldown maps podman.host_cooldown to podman.Options.HostCooldown,
// where 0 means the default: a configured 0 (no cooldown) becomes negative.
func hostCooldown(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Slurm builds the Slurm client cfg.Slurm asks for (slurm.New: REST,
// scontrol, or auto). With "auto" and a rest_url it blocks for one ping.
func Slurm(ctx context.Context, cfg *conf.Config, log *slog.Logger) (slurm.Client, error) {
	return slurm.New(ctx, cfg.Slurm, log)
}

// Scontrol builds the last-resort client when the configured one cannot be
// had: scontrol from cfg (nil: the default). It does not block.
func Scontrol(ctx context.Context, cfg *conf.Config, log *slog.Logger) (slurm.Client, error) {
	sc := conf.Default().Slurm
	if cfg != nil && cfg.Slurm.Scontrol != "" {
		sc.Scontrol = cfg.Slurm.Scontrol
	}
	sc.Backend = conf.BackendScontrol
	return slurm.New(ctx, sc, log)
}
