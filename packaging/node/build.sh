#!/bin/bash
# Builds the node image (packaging/node/Containerfile) with podman.
#   packaging/node/build.sh BASE TAG [DIST]
# BASE: base image (e.g. the e2e harness's localhost/slurm-elastic-slurm:24.11-HASH);
# TAG: the image to create; DIST: where the slurm-elastic-health packages are
# (default dist/, from make deb / make rpm). Extra podman options (e.g. a
# private store) come from $PODMAN_OPTS. The build runs without network
# (NODE_BUILD_NETWORK=none) unless told otherwise: a BASE without slurmd and
# munged needs NODE_BUILD_NETWORK=host to install them from its repositories.
set -euo pipefail
base=${1:?usage: build.sh BASE TAG [DIST]}
tag=${2:?usage: build.sh BASE TAG [DIST]}
root=$(cd "$(dirname "$0")/../.." && pwd)
dist=${3:-$root/dist}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir "$ctx/pkgs"
# The newest deb and rpm (dist/ may hold older builds too).
pkgs=()
for pattern in "slurm-elastic-health_*_amd64.deb" "slurm-elastic-health-*.x86_64.rpm"; do
	newest=$(cd "$dist" 2>/dev/null && ls -t $pattern 2>/dev/null | head -n 1 || true)
	[ -n "$newest" ] && pkgs+=("$dist/$newest")
done
if [ ${#pkgs[@]} -eq 0 ]; then
	echo "build.sh: no slurm-elastic-health package in $dist: run make deb (or make rpm)" >&2
	exit 1
fi
cp "${pkgs[@]}" "$ctx/pkgs/"
cp "$root/tests/image/slurm-elastic-node" "$root/tests/image/slurm-elastic-node-reboot" "$root/tests/image/slurm-elastic-node-image" "$root/packaging/node/entrypoint.sh" "$root/packaging/node/Containerfile" "$ctx/"
# shellcheck disable=SC2086
podman ${PODMAN_OPTS:-} build --pull=never --network="${NODE_BUILD_NETWORK:-none}" --build-arg "BASE=$base" -t "$tag" -f "$ctx/Containerfile" "$ctx"
