package power

import (
	"strconv"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/timeline"
)

// Record appends recs to the timeline (internal/timeline, shown by
// `slurm-elastic trace`). Best effort: a failure is logged, never fails
// the hook. Blocks for one append.
func Record(d Deps, recs ...timeline.Record) {
	if err := timeline.Append(d.Config.StateDir, recs...); err != nil {
		d.Log.Warn("cannot add to the timeline (slurm-elastic trace)", "error", err)
	}
}

// Up records that node's instance runs at host/instance and Slurm took
// addr: the timeline's Launched and Addressed records and the node's up
// marker, which the PrologSlurmctld reads. Best effort, logged. Blocks for
// a few file operations; idempotent but for the records it appends.
func Up(d Deps, node, host, instance, addr string, launched time.Time) {
	Record(d,
		timeline.Record{Time: launched, Event: timeline.Launched, Node: node, Detail: "host " + host + " instance " + short(instance)},
		timeline.Record{Time: time.Now(), Event: timeline.Addressed, Node: node, Detail: addr})
	if err := timeline.MarkUp(d.Config.StateDir, node); err != nil {
		d.Log.Warn("cannot mark the node up for the prolog (the job may start at slurmctld's next pass)", "node", node, "error", err)
	}
}

// Gone clears the up markers of nodes whose instances are removed. Best
// effort, logged. Blocks for one unlink per node; idempotent.
func Gone(d Deps, nodes ...string) {
	if err := timeline.ClearUp(d.Config.StateDir, nodes...); err != nil {
		d.Log.Warn("cannot clear the nodes' up markers", "nodes", nodes, "error", err)
	}
}

// JobRecords are the timeline's Resume records of the jobs in a resume
// file: job id -> the job's nodes being resumed.
func JobRecords(at time.Time, jobs map[int64]string) []timeline.Record {
	out := make([]timeline.Record, 0, len(jobs))
	for id, nodes := range jobs {
		out = append(out, timeline.Record{Time: at, Event: timeline.Resume, Job: strconv.FormatInt(id, 10), Nodes: nodes})
	}
	return out
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
