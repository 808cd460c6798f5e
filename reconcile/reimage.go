// reimage: giving idle nodes the image a pending job asks for (issue 15).
//
// Slurm never reboots a CLOUD node to change its changeable features
// (/work/shared/docs/node-features.md): a `-C B` job whose group's nodes
// are all up idle in other images pends (Resources) until one suspends
// after SuspendTime. The reconciler re-images enough of them with Slurm's
// own reboot, so Slurm keeps every node out of scheduling until it is
// back in the right image:
//  1. KindReimage (this file): `scontrol reboot ASAP reason="(Code:Reimage)
//     image B for job J" NODE`: ASAP drains the node at once, and
//     slurmctld issues the reboot of an idle node within its next
//     background pass (src/slurmctld/controller.c _queue_reboot_msg,
//     24.11: lines 2195-2285): DOWN+REBOOT_ISSUED, and slurmd runs
//     RebootProgram, which stops the container.
//  2. KindReboot (act.go reboot): the node is REBOOT_ISSUED with its
//     instance exited; the reason names image B, so the daemon sets the
//     node's active features to B (`scontrol update ActiveFeatures=B`,
//     node_mgr.c update_node lines 1696-1765: no reboot, no Helper call;
//     the node is DOWN, so no job is placed on it) and launches the fresh
//     instance from B. Its slurmd reports B (the Helper), a superset of
//     the active B (node_mgr.c _valid_reported_active_features, lines
//     1455-1500 and 3157-3185): no INVAL. A registration after an issued
//     reboot returns the node to service and lifts ASAP's drain
//     (node_mgr.c lines 3520-3565), never "unexpectedly rebooted".
//
// A plain recreate (drain, new container, undrain) would need the node
// drained through the registration (node_mgr.c 3566-3600 sets a node that
// comes back with a new boot time DOWN "Node unexpectedly rebooted" unless
// it is drained or ReturnToService=2) and a second step to undrain it; the
// reboot does both in Slurm. A power down (`state=power_down`) works too,
// but takes SuspendTimeout and a full resume (docs/benchmarks.md 5.x).

package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/pool"
	"github.com/slurm-elastic/slurm-elastic/internal/reason"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// reimageReasonRE reads the image out of our Reimage reason's message
// ("image NAME for job ID", with Slurm's " : reboot issued" after it).
var reimageReasonRE = regexp.MustCompile(`^image ([A-Za-z_][A-Za-z0-9_.]*) for job `)

// reimageReason is the reason of a node re-imaged into image for job.
func reimageReason(image, job string) string {
	return reason.Format(reason.Reimage, fmt.Sprintf("image %s for job %s", image, job))
}

// ReimageTarget returns the image name a node's reason asks for when it
// is our Reimage reason (reimageReason), and whether it is one. It does
// not block.
func ReimageTarget(nodeReason string) (string, bool) {
	p := reason.Parse(nodeReason)
	if p.Code != reason.Reimage {
		return "", false
	}
	m := reimageReasonRE.FindStringSubmatch(p.Msg)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// ReimagePolicy holds Reimage's knobs (daemon.reimage_after, daemon.hold_prefix).
type ReimagePolicy struct {
	// After: a job is considered once it has pended this long since its
	// submit time.
	After      time.Duration
	HoldPrefix string
}

// Reimage returns the KindReimage actions for the pending jobs given the
// round's entries; groups maps a group name to its config (only groups
// with images matter); busy holds the nodes that already have an action
// this round. It is pure: no I/O, no clock, no state.
//
// Jobs are taken in job id order. A job is considered when it pends with
// reason Resources for at least p.After, and its feature expression maps
// (conf.Group.ImageFor) to a named image of a group of one of its
// partitions; not when that group has a free powered-down node (Slurm
// takes it and the resume hook boots the image). It needs MinNodes (at
// least 1) nodes in the image: nodes up and idle in it, or being
// re-imaged into it (our Reimage reason naming it), count first; the
// rest come from candidates, in config order: nodes up, IDLE, not
// drained or completing, not powering, no reboot pending, no reason but
// our Reimage one, not held, with a running instance in another image,
// within the job's -w and outside its -x, and whose image no other
// pending job of the partition asks for. A job the candidates cannot
// complete gets none (nothing is re-imaged in vain); a node counted or
// picked for one job is not counted for another. A node of the group
// left DOWN by a failed re-image into the same image (our reason naming
// it, no reboot pending: Slurm's "reboot timed out", node_mgr.c
// check_node_timers 4996-5008, appended by set_node_reason 5548-5573)
// stops re-imaging into that image in the group until an admin resumes
// it, so a broken image never takes the group's nodes one after the other.
func Reimage(now time.Time, p ReimagePolicy, groups map[string]*conf.Group, entries []Entry, jobs []slurm.PendingJob, busy map[string]bool) []Action {
	jobs = slices.Clone(jobs)
	slices.SortFunc(jobs, func(a, b slurm.PendingJob) int { return cmp.Compare(jobNum(a.ID), jobNum(b.ID)) })
	used := map[string]bool{}
	var out []Action
	for _, j := range jobs {
		if j.Reason != "Resources" || j.Submit.IsZero() || now.Sub(j.Submit) < p.After {
			continue
		}
		for _, part := range j.Partitions {
			g := groupOfPartition(groups, part)
			if g == nil {
				continue
			}
			img, _ := g.ImageFor(j.Features)
			if img == "" {
				continue
			}
			acts, ok := reimageFor(p, g, img, j, entries, jobs, busy, used)
			if ok {
				out = append(out, acts...)
				break
			}
		}
	}
	return out
}

// groupOfPartition returns the group with images rendered into partition
// part, or nil.
func groupOfPartition(groups map[string]*conf.Group, part string) *conf.Group {
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		if g := groups[name]; g.Partition == part && len(g.Images) > 0 {
			return g
		}
	}
	return nil
}

// reimageFor decides for job j and group g (image img); ok is false when
// the group cannot serve the job (a free powered-down node, too few
// candidates). It marks the nodes it counts or picks in used.
func reimageFor(p ReimagePolicy, g *conf.Group, img string, j slurm.PendingJob, entries []Entry, jobs []slurm.PendingJob,
	busy, used map[string]bool) ([]Action, bool) {
	req, exc := hostSet(j.ReqNodes), hostSet(j.ExcNodes)
	var have, cand []string
	for i := range entries {
		e := &entries[i]
		n := e.Node
		if e.Group != g.Name || n == nil || used[e.Name] || (req != nil && !req[e.Name]) || exc[e.Name] {
			continue
		}
		if n.Has(slurm.FlagPoweredDown) && n.State == slurm.StateIdle && !n.Has(slurm.FlagPoweringUp) &&
			!n.Has(slurm.FlagPoweringDown) && !n.Has(slurm.FlagDrain) && n.Reason == "" && !busy[e.Name] {
			return nil, false // Slurm can power this one up for the job
		}
		target, ours := ReimageTarget(n.Reason)
		rebooting := n.Has(slurm.FlagRebootRequested) || n.Has(slurm.FlagRebootIssued)
		if ours && target == img && !rebooting && n.State == slurm.StateDown {
			// A re-image into img failed (Slurm: "reboot timed out"): no
			// more nodes go that way until an admin resumes this one.
			return nil, false
		}
		switch {
		case rebooting:
			if ours && target == img {
				have = append(have, e.Name)
			}
		case reimageCandidate(p, e) && e.Inst.Image == img:
			have = append(have, e.Name)
		case reimageCandidate(p, e) && !busy[e.Name] && !wanted(jobs, j.ID, g, e.Inst.Image):
			cand = append(cand, e.Name)
		}
	}
	need := max(j.MinNodes, 1)
	if len(have) >= need {
		for _, n := range have[:need] {
			used[n] = true
		}
		return nil, true
	}
	if len(have)+len(cand) < need {
		return nil, false
	}
	for _, n := range have {
		used[n] = true
	}
	var acts []Action
	for _, n := range cand[:need-len(have)] {
		used[n] = true
		e := &entries[slices.IndexFunc(entries, func(e Entry) bool { return e.Name == n })]
		from := e.Inst.Image
		if from == "" {
			from = "(default)"
		}
		acts = append(acts, Action{Kind: KindReimage, Node: n, Group: g.Name, Image: img, Job: j.ID,
			Saw: fmt.Sprintf("job %s (-C %s) pending (Resources) since %s; group %s has no free powered-down node, %d of %d nodes in image %s or being re-imaged; node %s idle in image %s",
				j.ID, j.Features, j.Submit.UTC().Format(time.RFC3339), g.Name, len(have), need, img, n, from)})
	}
	return acts, true
}

// reimageCandidate: e is up and idle with a running instance of its
// group, no reboot or power change pending, no reason but our Reimage
// one, not held.
func reimageCandidate(p ReimagePolicy, e *Entry) bool {
	n, in := e.Node, e.Inst
	if in == nil || in.State != runtime.StateRunning || e.Unknown != "" || e.Held {
		return false
	}
	if p.HoldPrefix != "" && strings.Contains(n.Reason, p.HoldPrefix) {
		return false
	}
	if _, ours := ReimageTarget(n.Reason); n.Reason != "" && !ours {
		return false
	}
	for _, f := range []string{slurm.FlagDrain, slurm.FlagCompleting, slurm.FlagPoweredDown, slurm.FlagPoweringUp,
		slurm.FlagPoweringDown, slurm.FlagPowerDown, slurm.FlagRebootRequested, slurm.FlagRebootIssued, slurm.FlagNotResponding} {
		if n.Has(f) {
			return false
		}
	}
	return n.State == slurm.StateIdle
}

// wanted reports whether a pending job other than self, of g's partition,
// asks for the named image img ("" = the default, which any job without
// an image feature runs on anyway: never protected).
func wanted(jobs []slurm.PendingJob, self string, g *conf.Group, img string) bool {
	if img == "" {
		return false
	}
	for _, j := range jobs {
		if j.ID == self || !slices.Contains(j.Partitions, g.Partition) {
			continue
		}
		if w, _ := g.ImageFor(j.Features); w == img {
			return true
		}
	}
	return false
}

// hostSet expands a job's -w/-x hostlist; nil for none (or one that does
// not expand: then it is not used to narrow the nodes).
func hostSet(expr string) map[string]bool {
	if expr == "" {
		return nil
	}
	names, err := hostlist.Expand(expr)
	if err != nil {
		return nil
	}
	s := make(map[string]bool, len(names))
	for _, n := range names {
		s[n] = true
	}
	return s
}

// jobNum is the numeric part of a job id (array and het ids: the leading
// number), for ordering.
func jobNum(id string) int64 {
	i := strings.IndexFunc(id, func(r rune) bool { return r < '0' || r > '9' })
	if i >= 0 {
		id = id[:i]
	}
	n, _ := strconv.ParseInt(id, 10, 64)
	return n
}

// reimage asks Slurm to reboot each node ASAP with the Reimage reason
// naming the job's image (KindReimage): Slurm drains it at once and issues
// the reboot when it is idle; KindReboot then gives it the fresh instance
// in that image. Needs Deps.Rebooter.
func (r *Reconciler) reimage(ctx context.Context, _ *view, acts []Action) map[string]error {
	out := make(map[string]error, len(acts))
	if r.d.Rebooter == nil {
		for _, a := range acts {
			out[a.Node] = fmt.Errorf("no Slurm reboot client (scontrol) in the daemon: cannot re-image")
		}
		return out
	}
	errs := pool.Run(ctx, len(acts), pool.Options{Concurrency: 8}, func(ctx context.Context, i int) error {
		a := acts[i]
		return r.d.Rebooter.Reboot(ctx, []string{a.Node}, slurm.RebootOptions{ASAP: true, Reason: reimageReason(a.Image, a.Job)})
	})
	for i, a := range acts {
		out[a.Node] = errs[i]
	}
	return out
}

// reimageGroups returns the groups with images when re-imaging is on
// (daemon.reimage) and the daemon has a reboot client, else nil.
func (r *Reconciler) reimageGroups() map[string]*conf.Group {
	if !r.d.Config.Daemon.Reimage || r.d.Rebooter == nil {
		return nil
	}
	var out map[string]*conf.Group
	for i := range r.d.Config.Groups {
		g := &r.d.Config.Groups[i]
		if len(g.Images) > 0 {
			if out == nil {
				out = map[string]*conf.Group{}
			}
			out[g.Name] = g
		}
	}
	return out
}

// pendingJobs reads the pending jobs when some group can be re-imaged;
// nil otherwise, or when the client cannot list jobs or fails (logged:
// the round goes on without re-imaging). Blocks for one request.
func (r *Reconciler) pendingJobs(ctx context.Context) []slurm.PendingJob {
	if r.reimageGroups() == nil {
		return nil
	}
	jl, ok := r.d.Slurm.(slurm.JobLister)
	if !ok {
		return nil
	}
	jobs, err := jl.PendingJobs(ctx)
	if err != nil {
		r.d.Log.Warn("cannot list the pending jobs: no re-imaging this round", "error", err)
		return nil
	}
	return jobs
}

// rebootTarget returns the image name a rebooted node's fresh instance
// boots and whether the node's active features must be set to it first:
// the image our Reimage reason names when the group lists it (a re-image),
// else the image the old instance ran (rebootImage).
func rebootTarget(g *conf.Group, e *Entry) (name string, setFeatures bool) {
	if img, ok := ReimageTarget(e.Node.Reason); ok {
		if _, listed := g.ImageRef(img); listed && img != "" {
			return img, true
		}
	}
	return rebootImage(e.Inst), false
}
