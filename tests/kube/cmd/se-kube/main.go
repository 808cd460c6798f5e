// Command se-kube builds, starts, inspects and removes a single-node Kubernetes test
// cluster (package tests/kube) from the shell, for benchmarks and debugging:
//
//	se-kube build                          build (or reuse) the binaries; print their directory
//	se-kube up     [-name N] [-subnet S] [-route SUBNET]... [-api-on-gateway]   start; print the env lines
//	se-kube env    [-name N]               print the running cluster's facts as KEY=VALUE lines
//	se-kube import [-name N] [-slurm V] [REF]   import REF (default: the harness's Slurm
//	                                       image, built if needed) into the cluster's containerd
//	se-kube down   [-name N]               remove everything the cluster made
//
// up leaves the cluster running (its daemons outlive this process). Must run as root.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
	"github.com/slurm-elastic/slurm-elastic/tests/kube"
)

func main() { harness.Main("se-kube", run) }

const usage = "usage: se-kube build|up|env|import|down [flags] (see -h of each)"

type routes []string

func (r *routes) String() string     { return strings.Join(*r, ",") }
func (r *routes) Set(s string) error { *r = append(*r, s); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	cmd, fs, name, args, err := harness.Subcommand("se-kube", usage, "se-kube", args, stderr)
	if err != nil {
		return 2, err
	}
	switch cmd {
	case "build":
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		dir, err := kube.Binaries(ctx, stderr)
		if err != nil {
			return 1, err
		}
		fmt.Fprintln(stdout, dir)
	case "up":
		subnet := fs.String("subnet", "", "the pods' /24 in 10.222.0.0/16 (default: a free one)")
		var rs routes
		fs.Var(&rs, "route", "a network pods and it reach each other on by their own addresses (repeatable; e.g. a harness cluster's subnet)")
		onGW := fs.Bool("api-on-gateway", false, "the API server listens on the node's address (the bridge's gateway), not 127.0.0.1: for a Slurm head in a container")
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		c, err := kube.Start(ctx, kube.Options{Name: *name, Subnet: *subnet, PodRoutes: rs, APIOnGateway: *onGW, Log: stderr})
		if err != nil {
			return 1, err
		}
		for _, l := range c.Env() {
			fmt.Fprintln(stdout, l)
		}
	case "env":
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		c, err := kube.Attach(*name, stderr)
		if err != nil {
			return 1, err
		}
		for _, l := range c.Env() {
			fmt.Fprintln(stdout, l)
		}
	case "import":
		slurm := fs.String("slurm", "", "Slurm release of the harness image (default $SE_SLURM, else 24.11)")
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		c, err := kube.Attach(*name, stderr)
		if err != nil {
			return 1, err
		}
		ref := fs.Arg(0)
		if ref == "" {
			if ref, err = harness.BuildImage(ctx, *slurm, stderr); err != nil {
				return 1, err
			}
		}
		if err := c.ImportImage(ctx, ref); err != nil {
			return 1, err
		}
		fmt.Fprintln(stdout, ref)
	case "down":
		if err := fs.Parse(args); err != nil {
			return 2, nil
		}
		if err := kube.Remove(ctx, *name, stderr); err != nil {
			return 1, err
		}
	default:
		return 2, errors.New(usage)
	}
	return 0, nil
}
