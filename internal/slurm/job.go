package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// Job is one job as slurmctld reports it: the fields `slurm-elastic trace`
// shows. Start is when the job started running: slurmctld resets it when
// a job that waited for powered-up nodes leaves CONFIGURING.
type Job struct {
	ID, Name, State, Nodes, Partition string
	Submit, Start, End                time.Time // zero when not set
}

// JobReader reads one job. Both backends implement it.
type JobReader interface {
	// Job returns job id; an unknown id is an error wrapping ErrJobNotFound.
	Job(ctx context.Context, id string) (Job, error)
}

// ErrJobNotFound is returned (wrapped) for a job slurmctld does not know
// (never was, or purged after MinJobAge).
var ErrJobNotFound = errors.New("job not found")

var jobIDRE = regexp.MustCompile(`^[0-9]+(_[0-9]+)?(\+[0-9]+)?$`)

func validJobID(id string) error {
	if !jobIDRE.MatchString(id) {
		return fmt.Errorf("job id %q: want digits (array and het ids: N_M, N+M)", id)
	}
	return nil
}

var showJobField = regexp.MustCompile(`(?:^|\s)(JobId|JobName|JobState|NodeList|Partition|SubmitTime|StartTime|EndTime)=(\S*)`)

// Job implements JobReader with `scontrol -o show job ID`. Blocks for one
// scontrol run; read-only.
func (s *Scontrol) Job(ctx context.Context, id string) (Job, error) {
	if err := validJobID(id); err != nil {
		return Job{}, err
	}
	out, err := s.run(ctx, "--oneliner", "show", "job", id)
	if err != nil {
		return Job{}, fmt.Errorf("scontrol show job %s: %w", id, notFoundJob(id, err))
	}
	return parseShowJob(id, out)
}

// parseShowJob reads one record of `scontrol -o show job` (times in
// SLURM_TIME_FORMAT=standard, the host's local time).
func parseShowJob(id, out string) (Job, error) {
	j := Job{}
	for _, m := range showJobField.FindAllStringSubmatch(out, -1) {
		v := m[2]
		switch m[1] {
		case "JobId":
			j.ID = v
		case "JobName":
			j.Name = v
		case "JobState":
			j.State = v
		case "NodeList":
			if v != "(null)" {
				j.Nodes = v
			}
		case "Partition":
			j.Partition = v
		case "SubmitTime", "StartTime", "EndTime":
			tm, err := time.ParseInLocation("2006-01-02T15:04:05", v, time.Local)
			if err != nil {
				continue // Unknown, None
			}
			switch m[1] {
			case "SubmitTime":
				j.Submit = tm
			case "StartTime":
				j.Start = tm
			default:
				j.End = tm
			}
		}
	}
	if j.ID == "" {
		return Job{}, fmt.Errorf("scontrol show job %s: no JobId in %q", id, out)
	}
	return j, nil
}

var invalidJobRE = regexp.MustCompile(`(?i)invalid job id`)

// notFoundJob maps scontrol's "Invalid job id specified" to ErrJobNotFound.
func notFoundJob(id string, err error) error {
	if err != nil && invalidJobRE.MatchString(err.Error()) {
		return fmt.Errorf("%w: %s: %w", ErrJobNotFound, id, err)
	}
	return err
}

// restTime is a time in every data parser v0.0.42+: {set, infinite, number}.
type restTime struct {
	Set    bool  `json:"set"`
	Number int64 `json:"number"`
}

func (t restTime) time() time.Time {
	if !t.Set || t.Number <= 0 {
		return time.Time{}
	}
	return time.Unix(t.Number, 0)
}

// Job implements JobReader with GET /slurm/PARSER/job/{id}. Blocks for one
// request (and the negotiation on first use); read-only.
func (r *REST) Job(ctx context.Context, id string) (Job, error) {
	if err := validJobID(id); err != nil {
		return Job{}, err
	}
	pre, err := r.prefix(ctx)
	if err != nil {
		return Job{}, err
	}
	var res struct {
		Jobs []struct {
			JobID     int64           `json:"job_id"`
			Name      string          `json:"name"`
			State     json.RawMessage `json:"job_state"` // ["RUNNING"] (a string in older parsers)
			Nodes     string          `json:"nodes"`
			Partition string          `json:"partition"`
			Submit    restTime        `json:"submit_time"`
			Start     restTime        `json:"start_time"`
			End       restTime        `json:"end_time"`
		} `json:"jobs"`
	}
	path := pre + "/job/" + id
	if err := r.call(ctx, http.MethodGet, path, nil, &res); err != nil {
		var re *RESTError
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return Job{}, fmt.Errorf("%w: %s: %w", ErrJobNotFound, id, err)
		}
		return Job{}, err
	}
	if len(res.Jobs) == 0 {
		return Job{}, fmt.Errorf("slurmrestd GET %s: %w: %s", path, ErrJobNotFound, id)
	}
	rj := res.Jobs[0]
	j := Job{ID: strconv.FormatInt(rj.JobID, 10), Name: rj.Name, Nodes: rj.Nodes, Partition: rj.Partition,
		Submit: rj.Submit.time(), Start: rj.Start.time(), End: rj.End.time()}
	var states []string
	if json.Unmarshal(rj.State, &states) != nil {
		var s string
		_ = json.Unmarshal(rj.State, &s)
		states = []string{s}
	}
	for i, s := range states {
		if i > 0 {
			j.State += ","
		}
		j.State += s
	}
	return j, nil
}

var (
	_ JobReader = (*REST)(nil)
	_ JobReader = (*Scontrol)(nil)
)
