package reconcile

import (
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/reason"

	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

var pol = Policy{OrphanGrace: time.Minute, PowerUpLimit: 3 * time.Minute, HoldPrefix: "hold:", CapacityCooldown: 5 * time.Minute}

func node(state string, flags ...string) *slurm.Node {
	return &slurm.Node{Name: "c1", State: state, Flags: append([]string{slurm.FlagCloud}, flags...)}
}

func withReason(n *slurm.Node, r string) *slurm.Node { n.Reason = r; return n }

func inst(s runtime.State, age time.Duration) *runtime.Instance {
	return &runtime.Instance{Name: "c1", Group: "g", State: s, Created: t0.Add(-age)}
}

func TestDecide(t *testing.T) {
	health := "slurm-elastic-health: gpu3 XID 79"
	admin := "replacing the PSU"
	deadReason := reason.Format(reason.DeadNode, "x")
	unhealthyReason := reason.Format(reason.Unhealthy, "replaced: gpu3")
	resumeFail := reason.Format(reason.Config, "image not found")
	capacity := reason.Format(reason.Capacity, "node c1: launch: no host with room")
	cooldown := reason.Format(reason.Cooldown, "group g paused until ...")
	cooling, cooled := t0.Add(time.Minute), t0.Add(-time.Second)
	tests := []struct {
		name string
		e    Entry
		want Kind // "" = no action
	}{
		// orphans
		{"running instance, node powered down, old", Entry{Group: "g", Node: node("IDLE", "POWERED_DOWN"), Inst: inst(runtime.StateRunning, 2*time.Minute)}, KindOrphan},
		{"exited instance, node powered down, old", Entry{Group: "g", Node: node("IDLE", "POWERED_DOWN"), Inst: inst(runtime.StateExited, 2*time.Minute)}, KindOrphan},
		{"instance, node powered down, young: grace", Entry{Group: "g", Node: node("IDLE", "POWERED_DOWN"), Inst: inst(runtime.StateRunning, 30*time.Second)}, ""},
		{"instance, node unknown to Slurm", Entry{Group: "g", Inst: inst(runtime.StateRunning, time.Hour)}, KindOrphan},
		{"instance of a node in no group, unknown to Slurm", Entry{Inst: inst(runtime.StateRunning, time.Hour), Unknown: "node is in no group"}, KindUnknown},
		// unknown to the config: reported, never removed, whatever Slurm says
		{"unknown instance, node powering up", Entry{Node: node("IDLE", "POWERED_DOWN", "POWERING_UP"), Inst: inst(runtime.StateRunning, time.Hour), Unknown: `group "big" is not in the config`}, KindUnknown},
		{"unknown instance, node powered down", Entry{Node: node("IDLE", "POWERED_DOWN"), Inst: inst(runtime.StateRunning, time.Hour), Unknown: `group "big" is not in the config`}, KindUnknown},
		{"unknown instance of a group node, node allocated", Entry{Group: "g", Node: node("ALLOCATED"), Inst: inst(runtime.StateRunning, time.Hour), Unknown: `host "h9" is not in the config`}, KindUnknown},
		{"no-group instance not marked unknown: still never removed", Entry{Node: node("IDLE", "POWERED_DOWN"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		// a busy node's instance is never an orphan
		{"old instance, node powered down yet allocated", Entry{Group: "g", Node: node("ALLOCATED", "POWERED_DOWN"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"old instance, node powered down yet mixed", Entry{Group: "g", Node: node("MIXED", "POWERED_DOWN"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"old instance, node powered down, completing", Entry{Group: "g", Node: node("IDLE", "POWERED_DOWN", "COMPLETING"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"instance, node powering up (launch in flight)", Entry{Group: "g", Node: node("IDLE", "POWERED_DOWN", "POWERING_UP"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"instance, node powering down (suspend in flight)", Entry{Group: "g", Node: node("IDLE", "POWERED_DOWN", "POWERING_DOWN"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"instance, node up", Entry{Group: "g", Node: node("ALLOCATED"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"powered down, no instance, no reason", Entry{Group: "g", Node: node("IDLE", "POWERED_DOWN")}, ""},
		// dead nodes: the failover path
		{"allocated, no instance", Entry{Group: "g", Node: node("ALLOCATED")}, KindDead},
		{"idle, instance exited", Entry{Group: "g", Node: node("IDLE"), Inst: inst(runtime.StateExited, time.Hour)}, KindDead},
		{"mixed, instance created only", Entry{Group: "g", Node: node("MIXED"), Inst: inst(runtime.StateCreated, time.Hour)}, KindDead},
		{"completing, no instance", Entry{Group: "g", Node: node("IDLE", "COMPLETING")}, KindDead},
		{"allocated, instance state unknown: wait", Entry{Group: "g", Node: node("ALLOCATED"), Inst: inst(runtime.StateUnknown, time.Hour)}, ""},
		{"allocated, no instance, power down pending", Entry{Group: "g", Node: node("ALLOCATED", "POWER_DOWN")}, KindDead},
		{"allocated, no instance, admin reason: not ours", Entry{Group: "g", Node: withReason(node("ALLOCATED", "DRAIN"), admin)}, ""},
		{"allocated, no instance, held by config", Entry{Group: "g", Node: node("ALLOCATED"), Held: true}, ""},
		{"idle, no instance, unknown to config", Entry{Node: node("IDLE")}, ""},
		{"down by resume (Config), no instance", Entry{Group: "g", Node: withReason(node("DOWN"), resumeFail)}, ""},
		{"down with our DeadNode reason, power down lost", Entry{Group: "g", Node: withReason(node("DOWN"), deadReason)}, KindDead},
		{"down with our DeadNode reason, power down pending", Entry{Group: "g", Node: withReason(node("DOWN", "POWER_DOWN"), deadReason)}, ""},
		{"down with our DeadNode reason, powering down", Entry{Group: "g", Node: withReason(node("DOWN", "POWERING_DOWN"), deadReason)}, ""},
		// stuck powering up
		{"powering up past the limit, no instance", Entry{Group: "g", Node: node("IDLE", "POWERING_UP"), PoweringUpSince: t0.Add(-4 * time.Minute)}, KindStuck},
		{"powering up past the limit, DOWN by resume", Entry{Group: "g", Node: withReason(node("DOWN", "POWERING_UP"), resumeFail), PoweringUpSince: t0.Add(-4 * time.Minute)}, KindStuck},
		{"powering up within the limit", Entry{Group: "g", Node: node("IDLE", "POWERING_UP"), PoweringUpSince: t0.Add(-time.Minute)}, ""},
		{"powering up past the limit, instance running", Entry{Group: "g", Node: node("IDLE", "POWERING_UP"), Inst: inst(runtime.StateRunning, time.Minute), PoweringUpSince: t0.Add(-4 * time.Minute)}, ""},
		{"powering up, never timed", Entry{Group: "g", Node: node("IDLE", "POWERING_UP")}, ""},
		// unhealthy
		{"idle, health drain", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN"), health), Inst: inst(runtime.StateRunning, time.Hour)}, KindUnhealthy},
		{"idle, our unhealthy drain, power down lost", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN"), unhealthyReason), Inst: inst(runtime.StateRunning, time.Hour)}, KindUnhealthy},
		{"idle, our unhealthy drain, power down pending", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN", "POWER_DOWN"), unhealthyReason), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"allocated, health drain: wait for the job", Entry{Group: "g", Node: withReason(node("ALLOCATED", "DRAIN"), health), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"idle+completing, health drain: wait", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN", "COMPLETING"), health), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"idle, health drain with hold", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN"), health+" hold: jd debugging"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"idle, health drain, held by config", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN"), health), Inst: inst(runtime.StateRunning, time.Hour), Held: true}, ""},
		{"idle, admin drain", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN"), admin), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"idle, admin drain saying hold:", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN"), "hold: jd"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		// re-enable
		{"powered down, DOWN with our DeadNode reason", Entry{Group: "g", Node: withReason(node("DOWN", "POWERED_DOWN"), deadReason)}, KindReenable},
		{"powered down, DRAIN with our Unhealthy reason", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN", "POWERED_DOWN"), unhealthyReason)}, KindReenable},
		{"powered down, DOWN by resume: not ours to lift", Entry{Group: "g", Node: withReason(node("DOWN", "POWERED_DOWN"), resumeFail)}, ""},
		{"powered down, DOWN by an admin", Entry{Group: "g", Node: withReason(node("DOWN", "POWERED_DOWN"), admin)}, ""},
		{"powered down, idle, stale DeadNode reason", Entry{Group: "g", Node: withReason(node("IDLE", "POWERED_DOWN"), deadReason)}, ""},
		// capacity cooldown
		{"DOWN after a capacity failure", Entry{Group: "g", Node: withReason(node("DOWN", "POWERED_DOWN"), capacity)}, KindCapacity},
		{"DOWN after a capacity failure, powering down", Entry{Group: "g", Node: withReason(node("DOWN", "POWERING_DOWN"), capacity)}, KindCapacity},
		{"back in the pool (idle~) after a capacity failure", Entry{Group: "g", Node: withReason(node("IDLE", "POWERED_DOWN"), capacity)}, KindCapacity},
		{"DOWN after a capacity failure, still powering up", Entry{Group: "g", Node: withReason(node("DOWN", "POWERING_UP"), capacity)}, ""},
		{"up and running with a stale capacity reason", Entry{Group: "g", Node: withReason(node("IDLE"), capacity), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"idle~ in a cooling group", Entry{Group: "g", Node: node("IDLE", "POWERED_DOWN"), CoolingUntil: cooling}, KindCoolDrain},
		{"idle~ with our stale record in a cooling group", Entry{Group: "g", Node: withReason(node("IDLE", "POWERED_DOWN"), deadReason), CoolingUntil: cooling}, KindCoolDrain},
		{"idle~ after the cooldown", Entry{Group: "g", Node: node("IDLE", "POWERED_DOWN"), CoolingUntil: cooled}, ""},
		{"idle~ with an admin reason in a cooling group", Entry{Group: "g", Node: withReason(node("IDLE", "POWERED_DOWN"), admin), CoolingUntil: cooling}, ""},
		{"up node in a cooling group", Entry{Group: "g", Node: node("ALLOCATED"), Inst: inst(runtime.StateRunning, time.Hour), CoolingUntil: cooling}, ""},
		{"cool-drained, still cooling", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN", "POWERED_DOWN"), cooldown), CoolingUntil: cooling}, ""},
		{"cool-drained, cooldown over", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN", "POWERED_DOWN"), cooldown)}, KindCoolEnd},
		{"capacity node under our reason, cooldown over", Entry{Group: "g", Node: withReason(node("DOWN", "POWERED_DOWN"), cooldown), CoolingUntil: cooled}, KindCoolEnd},
		{"capacity node under our reason, still powering up", Entry{Group: "g", Node: withReason(node("DOWN", "POWERING_UP"), cooldown)}, ""},
		// scontrol reboot: Slurm's reason or the admin's, the reboot is asked all the same
		{"reboot issued, instance exited", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED"), "reboot requested : reboot issued"), Inst: inst(runtime.StateExited, time.Hour)}, KindReboot},
		{"reboot issued with reason=, instance exited", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED"), admin+" : reboot issued"), Inst: inst(runtime.StateExited, time.Hour)}, KindReboot},
		{"reboot issued, drained before, instance created only", Entry{Group: "g", Node: withReason(node("DOWN", "DRAIN", "REBOOT_ISSUED"), admin+" : reboot issued"), Inst: inst(runtime.StateCreated, time.Hour)}, KindReboot},
		{"reboot issued, instance gone", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED"), "reboot requested : reboot issued")}, KindReboot},
		{"reboot issued, instance gone, host unlisted", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED"), "reboot requested : reboot issued"), Unlisted: true}, ""},
		{"reboot issued, instance still running (RebootProgram under way, or the new one registering)", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED"), "reboot requested : reboot issued"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"reboot issued, instance state unknown", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED"), "reboot requested : reboot issued"), Inst: inst(runtime.StateUnknown, time.Hour)}, ""},
		{"reboot issued, held by config", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED"), "reboot requested : reboot issued"), Inst: inst(runtime.StateExited, time.Hour), Held: true}, ""},
		{"reboot issued, reason with the hold prefix", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED"), "hold: jd : reboot issued"), Inst: inst(runtime.StateExited, time.Hour)}, ""},
		{"reboot issued, node in no group", Entry{Node: withReason(node("DOWN", "REBOOT_ISSUED"), "reboot requested : reboot issued")}, ""},
		{"reboot issued, power down forced meanwhile", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED", "POWERING_DOWN"), "reboot requested : reboot issued"), Inst: inst(runtime.StateExited, time.Hour)}, ""},
		{"reboot issued, power down pending", Entry{Group: "g", Node: withReason(node("DOWN", "REBOOT_ISSUED", "POWER_DOWN"), "reboot requested : reboot issued"), Inst: inst(runtime.StateExited, time.Hour)}, ""},
		{"reboot requested, busy: Slurm's turn", Entry{Group: "g", Node: withReason(node("ALLOCATED", "REBOOT_REQUESTED"), "reboot requested"), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"reboot requested ASAP with a health reason, idle: not replaced", Entry{Group: "g", Node: withReason(node("IDLE", "DRAIN", "REBOOT_REQUESTED"), health), Inst: inst(runtime.StateRunning, time.Hour)}, ""},
		{"reboot requested, instance exited: Slurm issues it first", Entry{Group: "g", Node: withReason(node("IDLE", "REBOOT_REQUESTED"), "reboot requested"), Inst: inst(runtime.StateExited, time.Hour)}, ""},
		{"DOWN after reboot timed out: the admin's", Entry{Group: "g", Node: withReason(node("DOWN"), "reboot requested : reboot issued : reboot timed out"), Inst: inst(runtime.StateExited, time.Hour)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.e.Name = "c1"
			a, ok := Decide(t0, pol, tc.e)
			if off := pol; tc.want == KindCapacity || tc.want == KindCoolDrain {
				off.CapacityCooldown = 0
				if b, ok := Decide(t0, off, tc.e); ok && b.Kind == tc.want {
					t.Errorf("with cooldowns off still %s", b.Kind)
				}
			}
			if tc.want == "" {
				if ok {
					t.Fatalf("want no action, got %+v", a)
				}
				return
			}
			if !ok || a.Kind != tc.want {
				t.Fatalf("want %s, got %+v (ok=%v)", tc.want, a, ok)
			}
			if a.Node != "c1" || a.Group != tc.e.Group || a.Saw == "" {
				t.Fatalf("action lacks node, group or what was seen: %+v", a)
			}
		})
	}
}

func TestStateOf(t *testing.T) {
	for n, want := range map[*slurm.Node]string{
		nil:                          "absent",
		node("IDLE", "POWERED_DOWN"): "powered_down",
		node("DOWN", "POWERED_DOWN"): "down+powered_down",
		node("IDLE", "POWERING_UP"):  "powering_up",
		node("IDLE", "POWERED_DOWN", "POWERING_DOWN"): "powering_down",
		node("MIXED", "DRAIN"):                        "mixed+drain",
		node("IDLE", "COMPLETING"):                    "idle+completing",
		node("DOWN", "REBOOT_ISSUED"):                 "reboot_issued",
	} {
		if got := StateOf(n); got != want {
			t.Errorf("StateOf(%+v) = %q, want %q", n, got, want)
		}
	}
}
