package resume

import (
	"fmt"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
)

// ImageFor returns the name of the group image ("" = the default,
// template.image) that a node of g boots for a job whose feature
// expression (sbatch -C, the resume file's "features") is features, and,
// when it could not be mapped, why: conf.Group.ImageFor, shared with the
// reconciler's re-imaging. It does not block.
func ImageFor(features string, g *conf.Group) (name, why string) { return g.ImageFor(features) }

// nodeFeatures maps each node of the resume file's jobs to the feature
// expression of the first job that waits for it ("" for no -C). A job
// whose node list does not expand is left out (its nodes boot the
// default image) and reported in bad. It does not block.
func nodeFeatures(rf *ResumeFile) (byNode map[string]string, jobOf map[string]int64, bad []string) {
	byNode, jobOf = map[string]string{}, map[string]int64{}
	if rf == nil {
		return byNode, jobOf, nil
	}
	for _, j := range rf.Jobs {
		names, err := hostlist.Expand(j.Nodes)
		if err != nil {
			bad = append(bad, fmt.Sprintf("job %d nodes %q: %v", j.JobID, j.Nodes, err))
			continue
		}
		for _, n := range names {
			if _, seen := byNode[n]; !seen {
				byNode[n], jobOf[n] = j.Features, j.JobID
			}
		}
	}
	return byNode, jobOf, bad
}
