#!/bin/sh
# The ResumeProgram an admin writes by hand, the baseline of the real-cluster
# benchmark: one node after another, `podman run -d` + read its address +
# `scontrol update nodename=X nodeaddr=IP nodehostname=X`. It starts the same
# container as slurm-elastic's Podman runtime (name, hostname, labels, env,
# network, limits, mounts). The benchmark copies it next to a static
# podman-remote into the bin dir mounted in the head container and runs it
# there as SlurmUser with these variables set:
#   SE_CLUSTER SE_NETWORK SE_IMAGE SE_HEAD_IP SE_MUNGE_KEY SE_SHARED
# SE_TRACE=1 prints the milliseconds of each step per node on stderr
# (investigation only: the timed runs leave it unset).
set -eu
# podman-remote resolves $HOME for its own config even with --url; SlurmUser's
# home (/nonexistent in the test image) does not exist.
export HOME=/tmp
PODMAN="/usr/libexec/slurm-elastic/podman --url unix:///run/podman/podman.sock"
ms() { if [ -n "${SE_TRACE:-}" ]; then echo $(($(date +%s%N) / 1000000)); fi; }
for node in $(scontrol show hostnames "$1"); do
	name="$SE_CLUSTER-$node"
	t0=$(ms)
	$PODMAN run -d --pull=never --name "$name" --hostname "$node" \
		--network "$SE_NETWORK" --cpus 1 --memory 768m \
		--label "slurm-elastic.cluster=$SE_CLUSTER" --label slurm-elastic.group=cloud \
		--label "slurm-elastic.node=$node" --label slurm-elastic.cpus=1 --label slurm-elastic.memory_mb=768 \
		--env "SLURM_ELASTIC_NODE=$node" --env "SLURM_CONF_SERVER=$SE_HEAD_IP" \
		--volume "$SE_MUNGE_KEY:/run/slurm-elastic/munge.key:ro" --volume "$SE_SHARED:/shared" \
		"$SE_IMAGE" >/dev/null
	t1=$(ms)
	ip=$($PODMAN inspect --format "{{(index .NetworkSettings.Networks \"$SE_NETWORK\").IPAddress}}" "$name")
	t2=$(ms)
	scontrol update nodename="$node" nodeaddr="$ip" nodehostname="$node"
	if [ -n "${SE_TRACE:-}" ]; then
		t3=$(ms)
		echo "shell-resume: $node run $((t1 - t0)) ms, inspect $((t2 - t1)) ms, scontrol update $((t3 - t2)) ms" >&2
	fi
done
