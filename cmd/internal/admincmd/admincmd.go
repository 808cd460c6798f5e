// Package admincmd is the slurm-elastic administration command line: config
// checks, the slurm.conf lines, hostlist tools, the node table, and the
// reconciler (daemon, status, events).
package admincmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/build"
	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/cmd/internal/hostlistcmd"
	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/logging"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/version"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// Main runs the admin command line with args and returns the process exit
// code (cmd/internal/exitcode). Errors go to stderr as "slurm-elastic: msg".
// It blocks until the command is done.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := App(stdout).RunContext(ctx, args)
	if err == nil {
		return exitcode.OK
	}
	// urfave/cli's own ExitCoder is "No help topic for ...": a usage error,
	// said as the lean hostlist binary says it.
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		fmt.Fprintln(stderr, err)
		return exitcode.Usage
	}
	fmt.Fprintf(stderr, "slurm-elastic: %v\n", err)
	return exitcode.Of(err)
}

// App returns the admin command line. Commands block until done; their
// errors carry exit codes as *exitcode.Error.
func App(stdout io.Writer) *cli.App {
	cfgFlag := &cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"SLURM_ELASTIC_CONFIG"},
		Usage: "config file (default " + conf.DefaultPath + ")"}
	app := &cli.App{
		Name:            "slurm-elastic",
		Usage:           "administer slurm-elastic: elastic Slurm cloud nodes on Podman",
		Version:         version.Version,
		Writer:          stdout,
		HideHelpCommand: true,
		Flags:           []cli.Flag{cfgFlag},
		Commands: append([]*cli.Command{
			{
				Name:  "conf",
				Usage: "check the config or print the slurm.conf lines it implies",
				Subcommands: []*cli.Command{
					{Name: "check", Usage: "validate the config file; report every problem with its key", Action: confCheck,
						Flags: []cli.Flag{&cli.BoolFlag{Name: "connect",
							Usage: "also reach the Kubernetes API server as the hooks would (list the cluster's pods, read the munge key Secret)"}}},
					{Name: "slurm", Usage: "print the NodeName/PartitionName/power-save lines for slurm.conf", Action: confSlurm},
					{Name: "helpers", Usage: "print helpers.conf for the groups' images (slurmctld's host; needed when a group lists images)", Action: confHelpers},
				},
			},
			{
				Name:        "hostlist",
				Usage:       "expand or compress Slurm hostlist expressions",
				Subcommands: hostlistCommands(),
			},
			{
				Name:   "nodes",
				Usage:  "table of managed nodes: Slurm state beside the runtime's instance",
				Action: nodes,
			},
		}, append(daemonCommands(), breakerCommand(), logsCommand(), traceCommand())...),
		// Errors come back to Main, which maps them to exit codes.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
	}
	var walk func([]*cli.Command)
	walk = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = usageError
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	return app
}

// usageError reports a flag error as urfave/cli does (message, then the
// help) and makes it exitcode.Usage.
func usageError(c *cli.Context, err error, sub bool) error {
	fmt.Fprintf(c.App.Writer, "Incorrect Usage: %s\n\n", err)
	if l := c.Lineage(); sub && len(l) > 1 {
		_ = cli.ShowCommandHelp(l[1], c.Command.Name)
	} else {
		_ = cli.ShowAppHelp(c)
	}
	return exitcode.New(exitcode.Usage, err)
}

func loadConfig(c *cli.Context) (*conf.Config, error) {
	cfg, err := conf.Load(c.String("config"))
	if err != nil {
		return nil, exitcode.New(exitcode.Config, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, exitcode.New(exitcode.Config, err)
	}
	return cfg, nil
}

func confCheck(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	n := 0
	inv := cfg.Inventory()
	for i := range cfg.Groups {
		n += len(inv.GroupNodes(&cfg.Groups[i]))
	}
	fmt.Fprintf(c.App.Writer, "%s: ok: cluster %s, %d groups, %d nodes, %d Podman hosts\n", cfg.File, cfg.Cluster, len(cfg.Groups), n, len(cfg.Podman.Hosts))
	if c.Bool("connect") {
		return confConnect(c, cfg)
	}
	return nil
}

// confConnect reaches the Kubernetes API server when a group uses it: the
// config is valid, but the kubeconfig, the RBAC, the namespace or the
// Secret may not be. Blocks for a few API calls; changes nothing.
func confConnect(c *cli.Context, cfg *conf.Config) error {
	if !slices.ContainsFunc(cfg.Groups, func(g conf.Group) bool { return g.Runtime == conf.RuntimeKubernetes }) {
		fmt.Fprintln(c.App.Writer, "connect: no group uses runtime kubernetes: nothing to reach")
		return nil
	}
	k, err := build.Kubernetes(c.Context, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return exitcode.New(exitcode.Config, fmt.Errorf("%s: kubernetes: %w", cfg.File, err))
	}
	if err := k.Check(c.Context); err != nil {
		code := exitcode.Config // kubeconfig, RBAC, namespace, Secret
		if runtime.ClassOf(err) == runtime.ClassTransient {
			code = exitcode.Failed // the API server did not answer
		}
		return exitcode.New(code, fmt.Errorf("%s: kubernetes: namespace %s: %w", cfg.File, cfg.Kubernetes.Namespace, err))
	}
	fmt.Fprintf(c.App.Writer, "connect: ok: Kubernetes API server reached; namespace %s, secret %s has key %s\n",
		cfg.Kubernetes.Namespace, cfg.Kubernetes.MungeSecret, cfg.Kubernetes.MungeSecretKey)
	return nil
}

func confSlurm(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	return conf.RenderSlurm(c.App.Writer, cfg)
}

func confHelpers(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if err := conf.RenderHelpers(c.App.Writer, cfg); err != nil {
		if errors.Is(err, conf.ErrNoImages) {
			return exitcode.New(exitcode.Config, fmt.Errorf("conf helpers: %s: %w", cfg.File, err))
		}
		return err
	}
	return nil
}

// imageName is how `nodes` shows an instance's image: its name, or
// "default".
func imageName(name string) string {
	if name == "" {
		return "default"
	}
	return name
}

// hostlistCommands are the hostlist subcommands over hostlistcmd, the one
// implementation also behind the lean slurm-elastic-hostlist binary; its
// exit codes are the same.
func hostlistCommands() []*cli.Command {
	var cmds []*cli.Command
	for _, hc := range hostlistcmd.Commands {
		cmds = append(cmds, &cli.Command{Name: hc.Name, Usage: hc.Usage, ArgsUsage: hc.ArgsUsage,
			Action: func(c *cli.Context) error {
				return hostlistcmd.Run(hc.Name, c.App.Reader, c.App.Writer, c.Args().Slice())
			}})
	}
	return cmds
}

func nodes(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	defer cancel()
	log, closer, err := logging.Open(logging.Stderr, "warn", "slurm-elastic")
	if err != nil {
		return err
	}
	defer closer.Close()
	sc, err := build.Slurm(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	rts, err := build.Runtimes(ctx, cfg, log)
	if err != nil {
		return err
	}
	insts := map[string]runtime.Instance{}
	for name, rt := range rts {
		list, err := rt.List(ctx)
		if err != nil {
			return fmt.Errorf("runtime %s: list: %w", name, err)
		}
		for _, in := range list {
			insts[in.Name] = in
		}
	}
	all, err := sc.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("slurm: nodes: %w", err)
	}
	byName := map[string]slurm.Node{}
	for _, n := range all {
		byName[n.Name] = n
	}
	tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tGROUP\tSLURM STATE\tINSTANCE\tIMAGE\tHOST\tADDR\tREASON")
	inv := cfg.Inventory()
	for i := range cfg.Groups {
		g := &cfg.Groups[i]
		for _, name := range inv.GroupNodes(g) {
			st, reason := "(not in slurm.conf)", ""
			if n, ok := byName[name]; ok {
				st = strings.Join(append([]string{n.State}, n.Flags...), "+")
				reason = n.Reason
			}
			inst, img, host, addr := "-", "-", "-", "-"
			if in, ok := insts[name]; ok {
				inst, img, host, addr = string(in.State), imageName(in.Image), in.Host, in.Addr
				delete(insts, name)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, g.Name, st, inst, img, host, addr, reason)
		}
	}
	orphans := make([]string, 0, len(insts))
	for name := range insts {
		orphans = append(orphans, name)
	}
	slices.Sort(orphans)
	for _, name := range orphans {
		in := insts[name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, in.Group, "(no group)", in.State, imageName(in.Image), in.Host, in.Addr, "instance of a node no group has")
	}
	return tw.Flush()
}
