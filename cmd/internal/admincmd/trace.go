package admincmd

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/build"
	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/timeline"
)

func traceCommand() *cli.Command {
	return &cli.Command{
		Name:      "trace",
		Usage:     "print a job's cold-start timeline: submitted, resume called, each node started, addressed and registered, running (Slurm's and slurm-elastic's records)",
		ArgsUsage: "JOBID",
		Action:    trace,
	}
}

// trace prints JOBID's cold-start timeline: the job from Slurm (submit and
// start times, nodes) merged with the timeline records of the hooks and
// the prolog (state_dir/timeline.jsonl). Blocks for one Slurm request and
// reading the timeline; read-only.
func trace(c *cli.Context) error {
	if c.NArg() != 1 {
		return exitcode.New(exitcode.Usage, errors.New("trace: give one JOBID"))
	}
	id := c.Args().First()
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	sc, err := build.Slurm(c.Context, cfg, nil)
	if err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	jr, ok := sc.(slurm.JobReader)
	if !ok {
		return fmt.Errorf("trace: the Slurm backend %T cannot read jobs", sc)
	}
	j, err := jr.Job(c.Context, id)
	if err != nil {
		if errors.Is(err, slurm.ErrJobNotFound) {
			return exitcode.New(exitcode.Failed, fmt.Errorf("trace: %w (slurmctld forgets finished jobs after MinJobAge)", err))
		}
		return exitcode.New(exitcode.Failed, fmt.Errorf("trace: %w", err))
	}
	nodes, _ := hostlist.Expand(j.Nodes)
	recs, bad, err := timeline.Read(cfg.StateDir, func(r timeline.Record) bool { return keepRecord(j, nodes, r) })
	if err != nil {
		return exitcode.New(exitcode.Failed, err)
	}
	writeTrace(c.App.Writer, j, recs)
	if bad > 0 {
		fmt.Fprintf(c.App.ErrWriter, "trace: %d unreadable timeline lines skipped\n", bad)
	}
	return nil
}

// keepRecord keeps the records of job j: its own (resume, prolog) and
// those of its nodes between its submission and its start (or now).
func keepRecord(j slurm.Job, nodes []string, r timeline.Record) bool {
	if r.Job == j.ID {
		return true
	}
	if r.Job != "" || r.Node == "" || !slices.Contains(nodes, r.Node) {
		return false
	}
	from, to := j.Submit.Add(-time.Second), j.Start.Add(time.Second)
	if j.Start.IsZero() || j.Start.Before(j.Submit) {
		to = time.Now()
	}
	return !r.Time.Before(from) && !r.Time.After(to)
}

// traceEvent names each timeline event for the admin.
var traceEvent = map[string]string{
	timeline.Resume:     "resume called",
	timeline.Launched:   "instance started",
	timeline.Addressed:  "addressed",
	timeline.Failed:     "failed",
	timeline.PrologWait: "prolog waits for nodes",
	timeline.Registered: "registered",
	timeline.PrologDone: "prolog done",
}

// writeTrace prints the timeline: one line per event in time order, with
// the offset from the job's submission (Slurm's times have whole seconds).
func writeTrace(w io.Writer, j slurm.Job, recs []timeline.Record) {
	fmt.Fprintf(w, "job %s (%s) %s, partition %s, nodes %s\n", j.ID, j.Name, j.State, j.Partition, orDash(j.Nodes))
	// Slurm's times are whole seconds (truncated): they sort as the end of
	// their second, so "running" never shows before what led to it.
	type line struct {
		at, sortAt   time.Time
		what, detail string
	}
	const slurmSecond = time.Second - time.Millisecond
	var ls []line
	if !j.Submit.IsZero() {
		ls = append(ls, line{j.Submit, j.Submit, "submitted", "(Slurm, whole seconds)"})
	}
	for _, r := range recs {
		d := r.Detail
		if r.Nodes != "" {
			d = r.Nodes + " " + d
		}
		if r.Node != "" {
			d = r.Node + " " + d
		}
		ls = append(ls, line{r.Time, r.Time, traceEvent[r.Event], strings.TrimSpace(d)})
	}
	if !j.Start.IsZero() && !j.Start.Before(j.Submit) {
		ls = append(ls, line{j.Start, j.Start.Add(slurmSecond), "running", "(Slurm StartTime, whole seconds)"})
	}
	slices.SortStableFunc(ls, func(a, b line) int { return a.sortAt.Compare(b.sortAt) })
	base := j.Submit
	if base.IsZero() && len(ls) > 0 {
		base = ls[0].at
	}
	for _, l := range ls {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %s  %+8.3fs  %-24s %s", l.at.Local().Format("15:04:05.000"), l.at.Sub(base).Seconds(), l.what, l.detail), " "))
	}
	if len(recs) == 0 {
		fmt.Fprintln(w, "  no slurm-elastic records for this job: its nodes were up already, or the records rotated away")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
