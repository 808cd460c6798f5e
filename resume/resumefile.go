package resume

import (
	"encoding/json"
	"fmt"
)

// ResumeFile is the content of SLURM_RESUME_FILE: which jobs wait on which
// nodes. Slurm 21.08 and 22.05 write all_nodes/nodes; 23.02 and later write
// all_nodes_resume/nodes_resume and more per-job fields. Both shapes parse
// into the same struct.
type ResumeFile struct {
	AllNodes string `json:"-"`
	Jobs     []Job  `json:"jobs"`
}

// Job is one job waiting for resumed nodes.
type Job struct {
	JobID       int64  `json:"job_id"`
	Nodes       string `json:"-"` // the job's nodes being resumed
	NodesAlloc  string `json:"nodes_alloc"`
	Features    string `json:"features"`
	Partition   string `json:"partition"`
	Reservation string `json:"reservation"`
	Extra       string `json:"extra"`
}

// ParseResumeFile parses SLURM_RESUME_FILE in either shape. It does not
// block and is idempotent.
func ParseResumeFile(data []byte) (*ResumeFile, error) {
	var raw struct {
		AllNodes       string `json:"all_nodes"`
		AllNodesResume string `json:"all_nodes_resume"`
		Jobs           []struct {
			Job
			Nodes       string `json:"nodes"`
			NodesResume string `json:"nodes_resume"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("resume file: %w", err)
	}
	rf := &ResumeFile{AllNodes: first(raw.AllNodesResume, raw.AllNodes)}
	for _, j := range raw.Jobs {
		job := j.Job
		job.Nodes = first(j.NodesResume, j.Nodes)
		rf.Jobs = append(rf.Jobs, job)
	}
	return rf, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
