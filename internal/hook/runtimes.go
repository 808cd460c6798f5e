package hook

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/slurm-elastic/slurm-elastic/conf"
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
				hosts = append(hosts, podman.Host{Name: h.Name, URI: h.URI, Identity: h.Identity, MaxNodes: h.MaxNodes, CPUs: h.CPUs, MemoryMB: h.MemoryMB})
			}
			p, err := podman.New(ctx, podman.Options{
				Cluster: cfg.Cluster, Hosts: hosts, Timeout: cfg.Podman.Timeout, Logger: log,
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
