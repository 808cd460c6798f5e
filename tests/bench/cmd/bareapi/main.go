// Command bareapi is the "bare API" reference of the real-cluster benchmark:
// it launches one container per node name, all in parallel, through the
// Podman Go bindings with nothing else: one connection, then create + start
// + inspect per node, with the same spec as slurm-elastic's Podman runtime
// (name <cluster>-<node>, hostname, ownership labels, env, network, CPU and
// memory limits, bind mounts). No lookups, no placement, no Slurm update. It
// is the machine's limit for the launches alone.
//
// Build with CGO_ENABLED=0 -tags "remote containers_image_openpgp".
//
// Usage: bareapi -url unix:///run/podman/podman.sock -cluster C -network NET
//
//	-image IMG [-env K=V]... [-mount SRC:DST[:ro]]... [-cpus 1] [-memory-mb 768] NODE...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	nettypes "github.com/containers/common/libnetwork/types"
	"github.com/containers/podman/v4/pkg/bindings"
	"github.com/containers/podman/v4/pkg/bindings/containers"
	"github.com/containers/podman/v4/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	url := flag.String("url", "unix:///run/podman/podman.sock", "Podman API URI")
	cluster := flag.String("cluster", "", "cluster name (container name prefix, ownership label)")
	group := flag.String("group", "cloud", "group label")
	netw := flag.String("network", "", "network")
	image := flag.String("image", "", "image")
	cpus := flag.Float64("cpus", 1, "CPU limit")
	memMB := flag.Int64("memory-mb", 768, "memory limit, MB")
	command := flag.String("command", "", "run this (split on spaces) instead of the image's entrypoint (investigation: e.g. \"sleep infinity\" to leave out the node's own boot)")
	var env, mounts listFlag
	flag.Var(&env, "env", "K=V (repeatable)")
	flag.Var(&mounts, "mount", "SRC:DST[:ro] (repeatable)")
	flag.Parse()
	if *cluster == "" || *image == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "bareapi: -cluster, -image and at least one NODE are required")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	conn, err := bindings.NewConnection(ctx, *url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareapi: connect:", err)
		os.Exit(1)
	}
	nodes := flag.Args()
	errs := make([]error, len(nodes))
	// per node: create, start, inspect durations
	steps := make([][3]time.Duration, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := buildSpec(*cluster, *group, node, *image, *netw, *cpus, *memMB, env, mounts)
			if *command != "" {
				s.Command = strings.Fields(*command)
			}
			t := time.Now()
			r, err := containers.CreateWithSpec(conn, s, nil)
			steps[i][0] = time.Since(t)
			if err != nil {
				errs[i] = fmt.Errorf("node %s: create: %w", node, err)
				return
			}
			t = time.Now()
			err = containers.Start(conn, r.ID, nil)
			steps[i][1] = time.Since(t)
			if err != nil {
				errs[i] = fmt.Errorf("node %s: start: %w", node, err)
				return
			}
			t = time.Now()
			d, err := containers.Inspect(conn, r.ID, nil)
			steps[i][2] = time.Since(t)
			if err != nil {
				errs[i] = fmt.Errorf("node %s: inspect: %w", node, err)
				return
			}
			if n, ok := d.NetworkSettings.Networks[*netw]; !d.State.Running || !ok || n.IPAddress == "" {
				errs[i] = fmt.Errorf("node %s: not running with an address on %s", node, *netw)
			}
		}()
	}
	wg.Wait()
	med := func(k int) time.Duration {
		d := make([]time.Duration, len(steps))
		for i := range steps {
			d[i] = steps[i][k]
		}
		slices.Sort(d)
		return d[len(d)/2].Round(time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "bareapi: %d containers in %s; median per call: create %s, start %s, inspect %s\n",
		len(nodes), time.Since(t0).Round(time.Millisecond), med(0), med(1), med(2))
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "bareapi:", err)
		os.Exit(1)
	}
}

// buildSpec mirrors runtime/podman's buildSpec (same fields, same values).
func buildSpec(cluster, group, node, image, netw string, cpus float64, memMB int64, env, mounts []string) *specgen.SpecGenerator {
	s := specgen.NewSpecGenerator(image, false)
	s.Name = cluster + "-" + node
	s.Hostname = node
	s.Labels = map[string]string{
		"slurm-elastic.cluster":   cluster,
		"slurm-elastic.group":     group,
		"slurm-elastic.node":      node,
		"slurm-elastic.cpus":      strconv.FormatFloat(cpus, 'f', -1, 64),
		"slurm-elastic.memory_mb": strconv.FormatInt(memMB, 10),
	}
	s.Env = map[string]string{"SLURM_ELASTIC_NODE": node}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		s.Env[k] = v
	}
	if netw != "" {
		s.NetNS = specgen.Namespace{NSMode: specgen.Bridge}
		s.Networks = map[string]nettypes.PerNetworkOptions{netw: {}}
	}
	period := uint64(100000)
	quota := int64(math.Ceil(cpus * 100000))
	limit := memMB << 20
	s.ResourceLimits = &spec.LinuxResources{
		CPU:    &spec.LinuxCPU{Period: &period, Quota: &quota},
		Memory: &spec.LinuxMemory{Limit: &limit},
	}
	for _, m := range mounts {
		parts := strings.Split(m, ":")
		opts := []string{"rbind"}
		if len(parts) > 2 && parts[2] == "ro" {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, spec.Mount{Type: "bind", Source: parts[0], Destination: parts[1], Options: opts})
	}
	return s
}
