package slurm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// PendingJob is one pending job as the re-imaging decision needs it
// (reconcile, KindReimage): where it may run, what it asks for, and why
// Slurm has not started it.
type PendingJob struct {
	ID string
	// Partitions the job may run in (a job may name several).
	Partitions []string
	// Features is the job's feature expression (sbatch -C); "" = none.
	Features string
	// Reason is Slurm's pending reason: Resources, Priority, ...
	Reason string
	// MinNodes is the number of nodes the job needs at least (0 = unknown).
	MinNodes int
	// ReqNodes and ExcNodes are the job's -w and -x hostlists ("" = none).
	ReqNodes, ExcNodes string
	// Submit is when the job was submitted (whole seconds); zero = unknown.
	Submit time.Time
}

// JobLister lists the pending jobs. Both backends implement it.
type JobLister interface {
	// PendingJobs returns every job slurmctld holds PENDING (any order).
	// Blocks for one request; read-only.
	PendingJobs(ctx context.Context) ([]PendingJob, error)
}

// FeatureSetter sets a node's active features. Both backends implement
// it: `scontrol update NodeName=N ActiveFeatures=F` and slurmrestd's node
// update (`features_act`). slurmctld (src/slurmctld/node_mgr.c
// update_node, 24.11: lines 1696-1765) checks that they are a subset of
// the node's available features and, with node_features/helpers, keeps
// the node's static features (node_features_helpers.c
// node_features_p_node_xlate: new ∪ (old − changeable)); it takes effect at
// once, with no reboot and no Helper call.
type FeatureSetter interface {
	// SetActiveFeatures sets node's active features to features (at least
	// one). Blocks for one request; idempotent.
	SetActiveFeatures(ctx context.Context, node string, features []string) error
}

var (
	_ JobLister     = (*REST)(nil)
	_ JobLister     = (*Scontrol)(nil)
	_ FeatureSetter = (*REST)(nil)
	_ FeatureSetter = (*Scontrol)(nil)
)

// featureRE is a feature name slurmctld and node_features/helpers accept.
var featureRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// validateFeatures checks a SetActiveFeatures request before anything is
// sent: a valid node name and plain feature names.
func validateFeatures(node string, features []string) error {
	if err := ValidateNodeName(node); err != nil {
		return fmt.Errorf("set active features: %w", err)
	}
	if len(features) == 0 {
		return fmt.Errorf("set active features of node %s: no features given", node)
	}
	for _, f := range features {
		if !featureRE.MatchString(f) {
			return fmt.Errorf("set active features of node %s: invalid feature name %q (a letter or '_', then letters, digits, '_' or '.')", node, f)
		}
	}
	return nil
}

// SetActiveFeatures implements FeatureSetter with `scontrol update
// NodeName=N ActiveFeatures=F`. Blocks for one scontrol run; idempotent.
func (s *Scontrol) SetActiveFeatures(ctx context.Context, node string, features []string) error {
	if err := validateFeatures(node, features); err != nil {
		return fmt.Errorf("scontrol %w", err)
	}
	if _, err := s.run(ctx, "update", "NodeName="+node, "ActiveFeatures="+strings.Join(features, ",")); err != nil {
		return fmt.Errorf("scontrol update NodeName=%s ActiveFeatures=%s: %w", node, strings.Join(features, ","), err)
	}
	return nil
}

// SetActiveFeatures implements FeatureSetter with POST
// /slurm/PARSER/node/NAME {"features_act": [...]}. Blocks for one request
// (and the negotiation on first use); idempotent.
func (r *REST) SetActiveFeatures(ctx context.Context, node string, features []string) error {
	if err := validateFeatures(node, features); err != nil {
		return fmt.Errorf("slurmrestd %w", err)
	}
	pre, err := r.prefix(ctx)
	if err != nil {
		return err
	}
	body := map[string]any{"features_act": features}
	return notFoundOr(node, r.call(ctx, http.MethodPost, pre+"/node/"+node, body, nil))
}

var showJobAll = regexp.MustCompile(`(?:^|\s)(JobId|JobState|Reason|Partition|NumNodes|Features|ReqNodeList|ExcNodeList|SubmitTime)=(\S*)`)

// PendingJobs implements JobLister with `scontrol -o show job` (every
// job, one a line). Blocks for one scontrol run; read-only.
func (s *Scontrol) PendingJobs(ctx context.Context) ([]PendingJob, error) {
	out, err := s.run(ctx, "--oneliner", "show", "job")
	if err != nil {
		return nil, fmt.Errorf("scontrol show job: %w", err)
	}
	return parsePendingJobs(out), nil
}

// parsePendingJobs reads `scontrol -o show job` (times in
// SLURM_TIME_FORMAT=standard, the host's local time) and keeps the
// PENDING jobs. "No jobs in the system" is none.
func parsePendingJobs(out string) []PendingJob {
	var jobs []PendingJob
	for _, line := range strings.Split(out, "\n") {
		var j PendingJob
		pending := false
		for _, m := range showJobAll.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if v == "(null)" {
				v = ""
			}
			switch m[1] {
			case "JobId":
				j.ID = v
			case "JobState":
				pending = v == "PENDING"
			case "Reason":
				j.Reason = v
			case "Partition":
				j.Partitions = splitList(v)
			case "NumNodes":
				j.MinNodes = leadingInt(v)
			case "Features":
				j.Features = v
			case "ReqNodeList":
				j.ReqNodes = v
			case "ExcNodeList":
				j.ExcNodes = v
			case "SubmitTime":
				if tm, err := time.ParseInLocation("2006-01-02T15:04:05", v, time.Local); err == nil {
					j.Submit = tm
				}
			}
		}
		if pending && j.ID != "" {
			jobs = append(jobs, j)
		}
	}
	return jobs
}

// PendingJobs implements JobLister with GET /slurm/PARSER/jobs/ (every
// job). Blocks for one request (and the negotiation on first use);
// read-only.
func (r *REST) PendingJobs(ctx context.Context) ([]PendingJob, error) {
	pre, err := r.prefix(ctx)
	if err != nil {
		return nil, err
	}
	var res struct {
		Jobs []struct {
			JobID     int64           `json:"job_id"`
			State     json.RawMessage `json:"job_state"` // ["PENDING"] (a string in older parsers)
			Reason    string          `json:"state_reason"`
			Partition string          `json:"partition"`
			Features  string          `json:"features"`
			NodeCount struct {
				Set    bool  `json:"set"`
				Number int64 `json:"number"`
			} `json:"node_count"`
			Required string   `json:"required_nodes"`
			Excluded string   `json:"excluded_nodes"`
			Submit   restTime `json:"submit_time"`
		} `json:"jobs"`
	}
	if err := r.call(ctx, http.MethodGet, pre+"/jobs/", nil, &res); err != nil {
		return nil, err
	}
	var jobs []PendingJob
	for _, rj := range res.Jobs {
		var states []string
		if json.Unmarshal(rj.State, &states) != nil {
			var s string
			_ = json.Unmarshal(rj.State, &s)
			states = []string{s}
		}
		if len(states) == 0 || states[0] != "PENDING" {
			continue
		}
		j := PendingJob{ID: strconv.FormatInt(rj.JobID, 10), Partitions: splitList(rj.Partition), Features: rj.Features,
			Reason: rj.Reason, ReqNodes: rj.Required, ExcNodes: rj.Excluded, Submit: rj.Submit.time()}
		if rj.NodeCount.Set {
			j.MinNodes = int(rj.NodeCount.Number)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// leadingInt returns the number s starts with (NumNodes=2-4: 2); 0 when none.
func leadingInt(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, _ := strconv.Atoi(s[:i])
	return n
}
