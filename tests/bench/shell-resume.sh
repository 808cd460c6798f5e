#!/bin/sh
# The ResumeProgram an admin writes by hand, the baseline of the real-cluster
# benchmark: one node after another, `podman run -d` + read its address +
# `scontrol update nodename=X nodeaddr=IP nodehostname=X`. It starts the same
# container as slurm-elastic's Podman runtime (name, hostname, labels, env,
# network, limits, mounts). The benchmark copies it next to a static
# podman-remote into the bin dir mounted in the head container and runs it
# there as SlurmUser with these variables set:
#   SE_CLUSTER SE_NETWORK SE_IMAGE SE_HEAD_IP SE_MUNGE_KEY SE_SHARED
set -eu
# podman-remote resolves $HOME for its own config even with --url; SlurmUser's
# home (/nonexistent in the test image) does not exist.
export HOME=/tmp
PODMAN="/usr/libexec/slurm-elastic/podman --url unix:///run/podman/podman.sock"
for node in $(scontrol show hostnames "$1"); do
	name="$SE_CLUSTER-$node"
	$PODMAN run -d --pull=never --name "$name" --hostname "$node" \
		--network "$SE_NETWORK" --cpus 1 --memory 768m \
		--label "slurm-elastic.cluster=$SE_CLUSTER" --label slurm-elastic.group=cloud \
		--label "slurm-elastic.node=$node" --label slurm-elastic.cpus=1 --label slurm-elastic.memory_mb=768 \
		--env "SLURM_ELASTIC_NODE=$node" --env "SLURM_CONF_SERVER=$SE_HEAD_IP" \
		--volume "$SE_MUNGE_KEY:/run/slurm-elastic/munge.key:ro" --volume "$SE_SHARED:/shared" \
		"$SE_IMAGE" >/dev/null
	ip=$($PODMAN inspect --format "{{(index .NetworkSettings.Networks \"$SE_NETWORK\").IPAddress}}" "$name")
	scontrol update nodename="$node" nodeaddr="$ip" nodehostname="$node"
done
