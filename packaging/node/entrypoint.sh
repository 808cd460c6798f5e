#!/bin/sh
# PID 1 of a node container built from packaging/node/Containerfile: with
# SLURM_ELASTIC_HEALTH=1 it starts the health daemon in the background, then
# execs the node entrypoint (munged, then slurmd in the foreground).
# The daemon reads /etc/slurm-elastic/health.yaml (the package's default;
# mount the site's file there read-only) or $SLURM_ELASTIC_HEALTH_CONFIG:
# slurm, log and health sections only, no head secrets. Set log.file: stderr
# there (or SLURM_ELASTIC_LOG_FILE=stderr in template.env) to see its log in
# `podman logs`.
set -eu
if [ "${SLURM_ELASTIC_HEALTH:-0}" = 1 ]; then
	/usr/sbin/slurm-elastic-health --config "${SLURM_ELASTIC_HEALTH_CONFIG:-/etc/slurm-elastic/health.yaml}" \
		--node "${SLURM_ELASTIC_NODE:?SLURM_ELASTIC_NODE must name the Slurm node}" &
fi
exec /usr/local/sbin/slurm-elastic-node "$@"
