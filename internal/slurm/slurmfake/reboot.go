package slurmfake

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
)

var _ slurm.Rebooter = (*Fake)(nil)

// Reboot implements slurm.Rebooter as slurmctld 24.11 takes the request
// (_slurm_rpc_reboot_nodes): each node gets REBOOT_REQUESTED and the reason
// (default "reboot requested"); ASAP also drains it (reason "Reboot ASAP"
// when none is given). Nodes powered down or already rebooting are skipped
// with an error naming them, as scontrol reports them. The fault sees op
// "reboot" with the node names and the reason in u.Reason. Issue and
// Rebooted play what follows.
func (f *Fake) Reboot(ctx context.Context, names []string, o slurm.RebootOptions) error {
	if len(names) == 0 {
		return errors.New("reboot: no node names")
	}
	if err := f.enter(ctx, "reboot", names, slurm.NodeUpdate{Reason: o.Reason}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, name := range names {
		if _, ok := f.nodes[name]; !ok {
			return fmt.Errorf("reboot node %s: %w", name, slurm.ErrNodeNotFound)
		}
	}
	var skipped []string
	for _, name := range names {
		n := f.nodes[name]
		if n.Has(slurm.FlagRebootRequested) || n.Has(slurm.FlagRebootIssued) || n.Has(slurm.FlagPoweredDown) ||
			n.Has(slurm.FlagPoweringDown) || n.Has(slurm.FlagPowerDown) {
			skipped = append(skipped, name)
			continue
		}
		n.Flags = add(n.Flags, slurm.FlagRebootRequested)
		if o.Reason != "" {
			n.Reason = o.Reason
		}
		if o.ASAP {
			n.Flags = add(n.Flags, slurm.FlagDrain)
			if n.Reason == "" {
				n.Reason = "Reboot ASAP"
			}
		}
		if n.Reason == "" {
			n.Reason = "reboot requested"
		}
	}
	if len(skipped) > 0 {
		return fmt.Errorf("Skipping reboot of nodes %s due to current node state.", strings.Join(skipped, ","))
	}
	return nil
}

// Issue plays slurmctld issuing the requested reboots of idle nodes
// (_queue_reboot_msg): REBOOT_REQUESTED becomes REBOOT_ISSUED, the node
// DOWN, its reason gets " : reboot issued". Not a call.
func (f *Fake) Issue(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, name := range names {
		if n, ok := f.nodes[name]; ok && n.Has(slurm.FlagRebootRequested) {
			n.Flags = add(remove(n.Flags, slurm.FlagRebootRequested), slurm.FlagRebootIssued)
			n.State = slurm.StateDown
			n.Reason += " : reboot issued"
		}
	}
}
