#!/usr/bin/env bash
# Builds (once) a static podman-remote client, v4.9.4 like the project's
# bindings, for the shell-baseline benchmark: the head image has no podman CLI.
# The build happens in a throwaway module under the cache dir, never in the
# repository's go.mod. Prints the path of the binary.
#   tests/bench/podman-remote.sh [CACHE_DIR]   (default /var/cache/slurm-elastic-test)
set -euo pipefail
cache=${1:-/var/cache/slurm-elastic-test}
version=v4.9.4
out=$cache/podman-remote-$version
if [[ -x $out ]]; then
	echo "$out"
	exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/podman-remote-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
(
	cd "$work"
	export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0
	go mod init se-bench/podman-remote >/dev/null 2>&1
	go get "github.com/containers/podman/v4@$version" >&2
	go build -trimpath -ldflags "-s -w" \
		-tags "remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp" \
		-o "$work/podman" github.com/containers/podman/v4/cmd/podman >&2
)
mv "$work/podman" "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
