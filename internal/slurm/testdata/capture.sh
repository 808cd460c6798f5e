#!/bin/sh
# capture.sh OUTDIR — records real `scontrol` answers for the parser tests.
# Needs a controller whose slurm.conf defines cloud[1-4] (State=CLOUD),
# static1 (State=FUTURE) and down1, and PrivateData=cloud. Each step writes
# OUTDIR/NAME.out (stdout), NAME.err (stderr) and NAME.rc (exit status).
# It changes node states: run it only against a throwaway test controller.
set -u
out=$1
mkdir -p "$out"
export SLURM_TIME_FORMAT=standard
step() {
	name=$1; shift
	"$@" >"$out/$name.out" 2>"$out/$name.err"
	echo $? >"$out/$name.rc"
}
step version scontrol --version
step ping scontrol ping
step show-all scontrol --all --future --oneliner show node
step show-default scontrol --oneliner show node
step show-named scontrol --all --future --oneliner show node cloud1,down1
step show-unknown scontrol --all --future --oneliner show node cloud1,nosuch1,nosuch2
step update-down scontrol update NodeName=down1 State=DOWN "Reason=slurm-elastic: (Code:Config) image x:1 not found"
step show-down scontrol --all --future --oneliner show node down1
step update-drain scontrol update NodeName=cloud3 State=DRAIN "Reason=maint window=Tue [ticket 42]"
step update-comment scontrol update NodeName=cloud3 "Comment=racked by ops, see wiki"
step show-drain scontrol --all --future --oneliner show node cloud3
step update-addr scontrol update NodeName=cloud2 NodeAddr=10.88.7.2 NodeHostName=cloud2-ct
step show-addr scontrol --all --future --oneliner show node cloud2
step update-unknown scontrol update NodeName=nosuch1 State=DOWN Reason=x
step update-unknown-mixed scontrol update NodeName=cloud1,nosuch1 State=DRAIN Reason=x
step update-bad-state scontrol update NodeName=cloud1 State=BOGUS
step update-powerup scontrol update NodeName=cloud4 State=POWER_UP
step show-powerup scontrol --all --future --oneliner show node cloud4
step update-powerdown scontrol update NodeName=cloud4 State=POWER_DOWN_FORCE
step show-powerdown scontrol --all --future --oneliner show node cloud4
step update-resume scontrol update NodeName=down1,cloud3 State=RESUME
step show-resume scontrol --all --future --oneliner show node down1,cloud3
step show-all-after scontrol --all --future --oneliner show node
