// Command se-cluster starts, inspects and removes a slurm-elastic test cluster (package
// tests/harness) from the shell, for `make demo` and for debugging:
//
//	se-cluster up   [-name N] [-subnet S] [-bindir DIR] [-config FILE] [-slurm-conf FILE] [-rest-port P] [-slurm V]
//	se-cluster env  [-name N]            print the cluster's facts as KEY=VALUE lines
//	se-cluster exec [-name N] [-user U] -- ARGV...   run ARGV in head (no shell)
//	se-cluster diag [-name N]            print logs and states that explain a failure
//	se-cluster down [-name N]            remove everything the cluster made
//	se-cluster image [-slurm V]          build (or reuse) the image and print its reference
//
// up prints the env lines once the cluster answers and leaves it running (its Podman
// service outlives this process). Must run as root.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

func main() { harness.Main("se-cluster", run) }

const usage = "usage: se-cluster up|env|exec|diag|down|image [flags] (see -h of each)"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	cmd, fs, name, args, err := harness.Subcommand("se-cluster", usage, "se-demo", args, stderr)
	if err != nil {
		return 2, err
	}
	switch cmd {
	case "up":
		subnet := fs.String("subnet", "", "a /24 in 10.222.0.0/16 (default: derived from -name)")
		binDir := fs.String("bindir", "", "host dir mounted read-only at /usr/libexec/slurm-elastic in head")
		config := fs.String("config", "", "file installed as /etc/slurm-elastic/config.yaml in head")
		slurmConf := fs.String("slurm-conf", "", "file of extra slurm.conf lines")
		port := fs.Int("rest-port", 0, "127.0.0.1 port for slurmrestd (0: a free one)")
		slurm := fs.String("slurm", "", "Slurm release: 22.05, 24.11 or 26.05 (default $SE_SLURM, else 24.11)")
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		o := harness.Options{Name: *name, Subnet: *subnet, BinDir: *binDir, RESTPort: *port, Slurm: *slurm, Log: stderr}
		for _, f := range []struct {
			path string
			dst  *string
		}{{*config, &o.Config}, {*slurmConf, &o.SlurmConf}} {
			if f.path == "" {
				continue
			}
			b, err := os.ReadFile(f.path)
			if err != nil {
				return 1, err
			}
			*f.dst = string(b)
		}
		c, err := harness.Start(ctx, o)
		if err != nil {
			return 1, err
		}
		printEnv(stdout, c)
		return 0, nil
	case "env", "diag":
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		c, err := harness.Attach(*name, stderr)
		if err != nil {
			return 1, err
		}
		if cmd == "env" {
			printEnv(stdout, c)
		} else {
			fmt.Fprintln(stdout, c.Diagnostics(ctx))
		}
		return 0, nil
	case "exec":
		user := fs.String("user", "", "user in head (default root)")
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		if fs.NArg() == 0 {
			return 2, errors.New("exec: no command")
		}
		c, err := harness.Attach(*name, stderr)
		if err != nil {
			return 1, err
		}
		out, err := c.ExecAs(ctx, *user, fs.Args()...)
		fmt.Fprint(stdout, out)
		if err != nil {
			return 1, err
		}
		return 0, nil
	case "down":
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		if err := harness.Remove(ctx, *name, stderr); err != nil {
			return 1, err
		}
		return 0, nil
	case "image":
		slurm := fs.String("slurm", "", "Slurm release: 22.05, 24.11 or 26.05 (default $SE_SLURM, else 24.11)")
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		ref, err := harness.BuildImage(ctx, *slurm, stderr)
		if err != nil {
			return 1, err
		}
		fmt.Fprintln(stdout, ref)
		return 0, nil
	}
	return 2, errors.New(usage)
}

func printEnv(w io.Writer, c *harness.Cluster) {
	kv := [][2]string{
		{"SE_CLUSTER", c.Name},
		{"SE_HEAD", c.Head},
		{"SE_HEAD_IP", c.HeadIP},
		{"SE_NETWORK", c.Network},
		{"SE_SUBNET", c.Subnet},
		{"SE_IMAGE", c.Image},
		{"SE_SLURM", c.Slurm},
		{"SE_REST_URL", c.RESTURL},
		{"SE_PODMAN_SOCKET", c.PodmanSocket},
		{"SE_PODMAN_SOCKET_IN_HEAD", c.PodmanSocketInHead},
		{"SE_MUNGE_KEY", c.MungeKey},
		{"SE_STATE_DIR", c.StateDir},
		{"SE_LOG_DIR", c.LogDir},
		{"SE_SLURM_LOG_DIR", c.SlurmLogDir},
		{"SE_SCONTROL", c.ScontrolWrapper()},
		{"SE_SLURM_GID", strconv.Itoa(c.SlurmGID)},
	}
	for _, e := range c.Env {
		k, v, _ := strings.Cut(e, "=")
		kv = append(kv, [2]string{k, v})
	}
	for _, p := range kv {
		fmt.Fprintf(w, "%s=%s\n", p[0], p[1])
	}
}
