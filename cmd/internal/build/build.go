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

	corev1 "k8s.io/api/core/v1"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/runtime/kubernetes"
	"github.com/slurm-elastic/slurm-elastic/runtime/podman"
)

// Runtimes builds the runtime of every runtime name the config's groups
// use, keyed by that name, each given the node contract from the config
// (slurm.conf_server, podman.munge_key or kubernetes.munge_secret). It
// blocks only as long as the implementations' constructors do (Podman
// connects lazily; Kubernetes reads its kubeconfig) and is not idempotent:
// each call builds new clients.
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
					MaxNodes: h.MaxNodes, CPUs: h.CPUs, MemoryMB: h.MemoryMB, GPUs: h.GPUs, PullPolicy: h.ImagePullPolicy})
			}
			p, err := podman.New(ctx, podman.Options{
				Cluster: cfg.Cluster, Hosts: hosts, Timeout: cfg.Podman.Timeout, Logger: log,
				HostCooldown: hostCooldown(cfg.Podman.HostCooldown),
				PullPolicy:   cfg.Podman.ImagePullPolicy, PullTimeout: cfg.Podman.PullTimeout,
				// The node contract (runtime.EnvConfServer, runtime.MungeKeyPath).
				ConfServer: cfg.Slurm.ConfServer, MungeKey: cfg.Podman.MungeKey,
			})
			if err != nil {
				return nil, fmt.Errorf("runtime podman: %w", err)
			}
			out[g.Runtime] = p
		case conf.RuntimeKubernetes:
			k, err := Kubernetes(ctx, cfg, log)
			if err != nil {
				return nil, fmt.Errorf("runtime kubernetes: %w", err)
			}
			out[g.Runtime] = k
		default:
			return nil, fmt.Errorf("group %s: unknown runtime %q", g.Name, g.Runtime)
		}
	}
	return out, nil
}

// Kubernetes builds the Kubernetes runtime from cfg.Kubernetes, with the
// placement of every group using it and the node contract
// (slurm.conf_server, kubernetes.munge_secret). It reads the kubeconfig
// (or the in-cluster account) and connects to nothing; not idempotent.
func Kubernetes(ctx context.Context, cfg *conf.Config, log *slog.Logger) (*kubernetes.Kubernetes, error) {
	k := cfg.Kubernetes
	groups := map[string]kubernetes.Placement{}
	for _, g := range cfg.Groups {
		if g.Runtime == conf.RuntimeKubernetes {
			groups[g.Name] = placement(g.Kubernetes)
		}
	}
	return kubernetes.New(ctx, kubernetes.Options{
		Cluster: cfg.Cluster, Namespace: k.Namespace, Kubeconfig: k.Kubeconfig, Context: k.Context,
		ConfServer: cfg.Slurm.ConfServer, MungeSecret: k.MungeSecret, MungeSecretKey: k.MungeSecretKey,
		GPUResource: k.GPUResource, ImagePullPolicy: k.ImagePullPolicy, ImagePullGrace: k.ImagePullGrace,
		Timeout: k.Timeout, Groups: groups, Logger: log,
	})
}

// placement converts a group's kubernetes section to the runtime's type.
func placement(gk conf.GroupKubernetes) kubernetes.Placement {
	p := kubernetes.Placement{NodeSelector: gk.NodeSelector}
	for _, t := range gk.Tolerations {
		p.Tolerations = append(p.Tolerations, corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator),
			Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	if len(gk.NodeAffinity) > 0 {
		var term corev1.NodeSelectorTerm
		for _, r := range gk.NodeAffinity {
			term.MatchExpressions = append(term.MatchExpressions, corev1.NodeSelectorRequirement{Key: r.Key,
				Operator: corev1.NodeSelectorOperator(r.Operator), Values: r.Values})
		}
		p.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}},
		}}
	}
	for _, v := range gk.Volumes {
		p.Volumes = append(p.Volumes, kubernetes.Volume{Name: v.Name, Destination: v.Destination, ReadOnly: v.ReadOnly,
			HostPath: v.HostPath, PVC: v.PVC, NFSServer: v.NFS.Server, NFSPath: v.NFS.Path})
	}
	return p
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
