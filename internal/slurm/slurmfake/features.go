package slurmfake

import (
	"context"
	"fmt"
	"slices"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
)

var (
	_ slurm.JobLister     = (*Fake)(nil)
	_ slurm.FeatureSetter = (*Fake)(nil)
)

// SetPendingJobs sets what PendingJobs returns. Not a call.
func (f *Fake) SetPendingJobs(jobs ...slurm.PendingJob) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = slices.Clone(jobs)
}

// PendingJobs implements slurm.JobLister: the jobs SetPendingJobs set.
// The fault sees op "jobs".
func (f *Fake) PendingJobs(ctx context.Context) ([]slurm.PendingJob, error) {
	if err := f.enter(ctx, "jobs", nil, slurm.NodeUpdate{}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.pending), nil
}

// SetActiveFeatures implements slurm.FeatureSetter: ActiveFeatures
// returns them from now on. The fault sees op "features" with the node
// name.
func (f *Fake) SetActiveFeatures(ctx context.Context, node string, features []string) error {
	if err := f.enter(ctx, "features", []string{node}, slurm.NodeUpdate{}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nodes[node]; !ok {
		return fmt.Errorf("set active features of node %s: %w", node, slurm.ErrNodeNotFound)
	}
	if f.active == nil {
		f.active = map[string][]string{}
	}
	f.active[node] = slices.Clone(features)
	f.nodes[node].ActiveFeatures = slices.Clone(features)
	return nil
}

// ActiveFeatures returns what SetActiveFeatures last set for node (nil:
// never set). Not a call.
func (f *Fake) ActiveFeatures(node string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.active[node])
}
