// Package healthcmd is the body of slurm-elastic-health: command line,
// config (the node-side file: conf.LoadHealth, conf.ValidateHealth),
// building the checks from the `health:` section, and the two modes —
// the daemon (systemd) and one-shot (Slurm's HealthCheckProgram).
// cmd/slurm-elastic-health only calls Main.
package healthcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/logging"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/version"
	"github.com/slurm-elastic/slurm-elastic/nodehealth"
	"github.com/slurm-elastic/slurm-elastic/nodehealth/exec"
	"github.com/slurm-elastic/slurm-elastic/nodehealth/gpu"
	"github.com/slurm-elastic/slurm-elastic/nodehealth/host"
)

// Program is the binary's name, put on every log line.
const Program = "slurm-elastic-health"

// summaryCode maps the one-shot verdict to the exit code
// (cmd/internal/exitcode): a draining failure exitcode.Failed, Unknown
// findings without one exitcode.Unknown.
var summaryCode = map[nodehealth.Status]int{nodehealth.OK: exitcode.OK, nodehealth.Fail: exitcode.Failed, nodehealth.Unknown: exitcode.Unknown}

// Options are the command-line settings on top of the config file.
type Options struct {
	Config string // --config
	Once   bool   // --once: one round, then exit (HealthCheckProgram)
	JSON   bool   // --json: one-shot output as JSON
	DryRun bool   // --dry-run: decide, never drain or undrain
	NoAct  bool   // --no-slurm: check and report only, do not contact Slurm
	Node   string // --node: overrides health.node
}

// Main parses args, runs and returns the exit code. Invoked as
// conf.HealthCheckProgramName (a link, Slurm's HealthCheckProgram) it runs
// once, as with --once. Blocks until the one-shot round ends or, for the
// daemon, until ctx is done.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	code := exitcode.OK
	app := &cli.App{
		Name:      Program,
		Usage:     "find failing GPUs, memory, disks and mounts and drain the node in Slurm",
		UsageText: Program + " [--config FILE] [--once [--json]] [--dry-run] [--node NAME]",
		Version:   version.Version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{conf.EnvHealthConfig},
				Usage: "config file: slurm, log and health sections (default " + conf.DefaultHealthPath + ")"},
			&cli.BoolFlag{Name: "once", Usage: "run every check once, print one line per finding, act, exit 0 OK / 1 failing / 5 unknown (HealthCheckProgram)"},
			&cli.BoolFlag{Name: "json", Usage: "with --once: print the findings as JSON"},
			&cli.BoolFlag{Name: "dry-run", Usage: "log what would be drained or undrained; change nothing (overrides health.dry_run)"},
			&cli.BoolFlag{Name: "no-slurm", Usage: "check and report only; do not contact Slurm"},
			&cli.StringFlag{Name: "node", Usage: "this node's Slurm NodeName (default health.node, else the short hostname)"},
		},
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			fmt.Fprintf(c.App.Writer, "Incorrect Usage: %s\n\n", err)
			_ = cli.ShowAppHelp(c)
			code = exitcode.Usage
			return err
		},
		Action: func(c *cli.Context) error {
			// Slurm runs HealthCheckProgram without arguments: under the
			// name conf.HealthCheckProgramName the binary is one-shot.
			once := c.Bool("once") || (len(args) > 0 && filepath.Base(args[0]) == conf.HealthCheckProgramName)
			o := Options{Config: c.String("config"), Once: once, JSON: c.Bool("json"),
				DryRun: c.Bool("dry-run"), NoAct: c.Bool("no-slurm"), Node: c.String("node")}
			if c.NArg() > 0 {
				code = exitcode.Usage
				return fmt.Errorf("unexpected arguments: %v", c.Args().Slice())
			}
			var err error
			code, err = Run(c.Context, o, stdout)
			return err
		},
	}
	if err := app.RunContext(ctx, args); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Program, err)
		if code == exitcode.OK {
			code = exitcode.Failed
		}
	}
	return code
}

// Run loads the node-side config (conf.LoadHealth: --config, else
// $SLURM_ELASTIC_HEALTH_CONFIG, else /etc/slurm-elastic/health.yaml),
// validates only the sections the daemon uses (conf.ValidateHealth: no
// head secrets needed) and runs the daemon or one round. Blocks like Main.
func Run(ctx context.Context, o Options, stdout io.Writer) (int, error) {
	cfg, err := conf.LoadHealth(o.Config)
	if err != nil {
		return exitcode.Config, err
	}
	if err := cfg.ValidateHealth(); err != nil {
		return exitcode.Config, err
	}
	log, closer, err := logging.Open(cfg.Log.File, cfg.Log.Level, Program)
	if err != nil {
		return exitcode.Config, err
	}
	defer closer.Close()
	if head := cfg.HeadKeys(); len(head) > 0 {
		log.Info("config has head-node keys; the health daemon neither uses nor checks them", "config", cfg.File, "keys", head)
	}
	h := cfg.Health
	if o.DryRun {
		h.DryRun = true
	}
	node := o.Node
	if node == "" {
		node = h.Node
	}
	if node == "" {
		hn, err := os.Hostname()
		if err != nil {
			return exitcode.Config, fmt.Errorf("node name: %w (set health.node)", err)
		}
		node, _, _ = strings.Cut(hn, ".")
	}
	r := &nodehealth.Runner{
		Node: node, DryRun: h.DryRun, Interval: h.Interval, CheckTimeout: h.CheckTimeout,
		RetryMax: h.RetryMax, Log: log,
		Policy: nodehealth.Policy{DrainAfter: h.DrainAfter, UndrainAfter: h.UndrainAfter, PerCheck: map[string]int{}},
	}
	if !o.NoAct {
		sc, err := slurm.New(ctx, cfg.Slurm, log)
		if err != nil {
			if !o.Once {
				return exitcode.Failed, fmt.Errorf("slurm client: %w", err)
			}
			log.Error("slurm client unusable: reporting only", "error", err)
			fmt.Fprintf(os.Stderr, "%s: slurm client: %v (reporting only)\n", Program, err)
		} else {
			r.Slurm = sc
			if len(h.RebootActions) > 0 {
				r.Rebooter, err = rebooter(sc, cfg.Slurm)
				if err != nil {
					log.Error("health.reboot_actions: no client can ask Slurm for a reboot: those failures drain the node instead", "error", err)
				}
			}
		}
	}
	if len(h.RebootActions) > 0 {
		r.Policy.Reboot = map[nodehealth.Action]bool{}
		for _, a := range h.RebootActions {
			r.Policy.Reboot[nodehealth.Action(a)] = true
		}
	}
	checks, xids := Checks(h, r.NodeInfo, gpu.NewNVML(), !o.Once)
	r.Checks = checks
	for _, c := range checks {
		if d, ok := c.(nodehealth.DrainAfterer); ok && d.DrainAfter() > 0 {
			r.Policy.PerCheck[c.Name()] = d.DrainAfter()
		}
	}
	if o.Once {
		return once(ctx, r, o.JSON, stdout)
	}
	if h.MetricsListen != "" {
		r.Metrics = nodehealth.NewMetrics(node)
		if _, _, err := r.Metrics.Serve(ctx, h.MetricsListen, log); err != nil {
			return exitcode.Failed, err
		}
	}
	if xids != nil {
		xids.Start(ctx)
	}
	return exitcode.OK, r.Run(ctx)
}

// rebooter returns what asks Slurm for reboots: the client itself when it
// can (scontrol), else scontrol beside it (slurmrestd has no reboot
// endpoint), from slurm.scontrol. Does not block.
func rebooter(c slurm.Client, sc conf.SlurmConf) (slurm.Rebooter, error) {
	if rb, ok := c.(slurm.Rebooter); ok {
		return rb, nil
	}
	s, err := slurm.NewScontrol(slurm.ScontrolOptions{Path: sc.Scontrol, Timeout: sc.Timeout})
	if err != nil {
		return nil, fmt.Errorf("slurmrestd has no reboot endpoint, and scontrol (slurm.scontrol) is not usable: %w", err)
	}
	return s, nil
}

// once is the HealthCheckProgram mode: state does not survive the
// process, so K and M are 1; Slurm errors are retried a few times.
func once(ctx context.Context, r *nodehealth.Runner, asJSON bool, stdout io.Writer) (int, error) {
	r.Policy.DrainAfter, r.Policy.UndrainAfter, r.Policy.PerCheck = 1, 1, nil
	findings, d, err := r.Round(ctx)
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for wait := time.Second; err != nil && wait <= 4*time.Second && ctx.Err() == nil; wait *= 2 {
		log.Warn("slurm unreachable; retrying", "in", wait.String(), "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		d, err = r.Act(ctx)
	}
	code := summaryCode[nodehealth.Summary(findings)]
	if asJSON {
		out := struct {
			Node     string               `json:"node"`
			Findings []nodehealth.Finding `json:"findings"`
			Op       nodehealth.Op        `json:"op"`
			Reason   string               `json:"reason,omitempty"`
			Why      string               `json:"why"`
			DryRun   bool                 `json:"dry_run,omitempty"`
			Error    string               `json:"error,omitempty"`
			Exit     int                  `json:"exit"`
		}{Node: r.Node, Findings: findings, Op: d.Op, Reason: d.Reason, Why: d.Why, DryRun: r.DryRun, Exit: code}
		if err != nil {
			out.Error = err.Error()
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if e := enc.Encode(out); e != nil {
			return exitcode.Failed, e
		}
	} else {
		for _, f := range findings {
			fmt.Fprintln(stdout, f.String())
		}
		if d.Op != nodehealth.OpNone {
			prefix := ""
			if r.DryRun {
				prefix = "dry run: would "
			}
			fmt.Fprintf(stdout, "%s%s %s: %s\n", prefix, d.Op, r.Node, d.Why)
		}
	}
	if err != nil {
		return code, fmt.Errorf("findings not applied: %w", err)
	}
	return code, nil
}

// Checks builds the checks the health section configures. info gives the
// node as Slurm last reported it (for RealMemory, CPUs and the gpu Gres);
// src is NVML. With events, the Xid event check is included and returned
// for Start. Never blocks.
func Checks(h conf.HealthConf, info func() (slurm.Node, bool), src gpu.Source, events bool) ([]nodehealth.Check, *gpu.Xids) {
	node := func() slurm.Node { n, _ := info(); return n }
	checks := []nodehealth.Check{&host.Memory{
		RealMemoryMB: func() int64 {
			if h.Memory.RealMemoryMB > 0 {
				return h.Memory.RealMemoryMB
			}
			return node().RealMemoryMB
		},
		MinTotalPercent: h.Memory.MinTotalPercent, MinAvailablePercent: h.Memory.MinAvailablePercent,
		MaxSwapUsedPercent: h.Memory.MaxSwapUsedPercent,
	}}
	prober := &host.Prober{} // one per daemon: a stuck path stays stuck across checks
	if len(h.Disks) > 0 {
		d := &host.Disk{Prober: prober}
		for _, p := range h.Disks {
			d.Paths = append(d.Paths, host.DiskPath{Path: p.Path, MinFreePercent: p.MinFreePercent, MinFreeInodesPercent: p.MinFreeInodesPercent})
		}
		checks = append(checks, d)
	}
	if len(h.Mounts) > 0 {
		m := &host.Mounts{Prober: prober}
		for _, p := range h.Mounts {
			m.Mounts = append(m.Mounts, host.Mount{Path: p.Path, ReadWrite: p.ReadWrite})
		}
		checks = append(checks, m)
	}
	if h.CPUs.Expected >= 0 {
		checks = append(checks, &host.CPUs{Expected: func() int {
			if h.CPUs.Expected > 0 {
				return h.CPUs.Expected
			}
			return node().CPUs
		}})
	}
	if len(h.Processes) > 0 {
		checks = append(checks, &host.Processes{Names: h.Processes})
	}
	expected := func() int {
		if h.GPU.Expected > 0 {
			return h.GPU.Expected
		}
		return GresGPUs(node().Gres)
	}
	devices := &gpu.Devices{Source: src, Expected: expected, MaxTemperatureC: uint32(h.GPU.MaxTemperatureC),
		PCIeAction: nodehealth.Action(h.GPU.PCIeAction)}
	checks = append(checks, devices)
	var xids *gpu.Xids
	if events {
		overrides := map[uint64]nodehealth.Action{}
		for _, x := range h.GPU.XIDs {
			for _, code := range x.Codes {
				overrides[uint64(code)] = nodehealth.Action(x.Action)
			}
		}
		xids = gpu.NewXids(src, overrides)
		devices.OnReset = xids.Reset // a GPU reset clears its reset Xids
		checks = append(checks, xids)
	}
	for _, c := range h.Custom {
		checks = append(checks, &exec.Script{CheckName: c.Name, Argv: c.Command, Timeout: c.Timeout, K: c.DrainAfter})
	}
	return checks, xids
}

var gresGPU = regexp.MustCompile(`^gpu(?::[^:(]+)?:(\d+)`)

// GresGPUs returns the number of GPUs in a Slurm Gres string such as
// "gpu:4", "gpu:a100:2(S:0-1),gpu:v100:2" or "(null)"; 0 when none.
func GresGPUs(gres string) int {
	n := 0
	for _, item := range strings.Split(gres, ",") {
		if m := gresGPU.FindStringSubmatch(strings.TrimSpace(item)); m != nil {
			v, _ := strconv.Atoi(m[1])
			n += v
		}
	}
	return n
}
