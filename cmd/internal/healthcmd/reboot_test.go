package healthcmd

import (
	"context"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm/slurmfake"
)

// restOnly is a client that cannot reboot, as the REST backend.
type restOnly struct{ f *slurmfake.Fake }

func (r restOnly) Nodes(ctx context.Context, names ...string) ([]slurm.Node, error) {
	return r.f.Nodes(ctx, names...)
}
func (r restOnly) Update(ctx context.Context, names []string, u slurm.NodeUpdate) error {
	return r.f.Update(ctx, names, u)
}
func (r restOnly) Ping(ctx context.Context) error { return r.f.Ping(ctx) }

// TestRebooter: a client that can reboot (scontrol) is used itself; for
// one that cannot (REST: slurmrestd has no reboot), scontrol from
// slurm.scontrol is, and without one the error names the key.
func TestRebooter(t *testing.T) {
	f := slurmfake.New("n1")
	if rb, err := rebooter(up{f}, conf.SlurmConf{}); err != nil || rb != (up{f}) {
		t.Fatalf("scontrol-capable client: %v %v", rb, err)
	}
	rb, err := rebooter(restOnly{f}, conf.SlurmConf{Scontrol: "/bin/true"})
	if _, ok := rb.(*slurm.Scontrol); err != nil || !ok {
		t.Fatalf("REST client: want scontrol beside it, got %T %v", rb, err)
	}
	if _, err := rebooter(restOnly{f}, conf.SlurmConf{Scontrol: "/nonexistent/scontrol"}); err == nil || !strings.Contains(err.Error(), "slurm.scontrol") {
		t.Fatalf("no scontrol: err %v", err)
	}
}
