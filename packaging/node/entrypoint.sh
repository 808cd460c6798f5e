#!/bin/sh
# PID 1 of a node container built from packaging/node/Containerfile: with
# SLURM_ELASTIC_HEALTH=1 it starts the health daemon in the background, then
# execs the node entrypoint (munged, then slurmd in the foreground).
set -eu
if [ "${SLURM_ELASTIC_HEALTH:-0}" = 1 ]; then
	/usr/sbin/slurm-elastic-health --node "${SLURM_ELASTIC_NODE:?SLURM_ELASTIC_NODE must name the Slurm node}" &
fi
exec /usr/local/sbin/slurm-elastic-node "$@"
