#!/bin/bash
# Builds one package with nfpm (the Go tool pinned in go.mod).
#   packaging/build-pkg.sh FORMAT OUTDIR [PACKAGE]
# FORMAT: rpm or deb. PACKAGE: slurm-elastic (default) or slurm-elastic-health.
# Environment (all optional):
#   PKG_VERSION        default: packaging/version.sh
#   SE_BIN_DIR         binaries, default bin/ (make build)
#   PKG_CONFIG         default config shipped, default packaging/config.yaml
#   SOURCE_DATE_EPOCH  default: the commit time of HEAD (reproducible mtimes)
#   PKG_SIGNING_KEY    an armored OpenPGP secret key file: the RPM is signed
#                      with it (passphrase in NFPM_RPM_PASSPHRASE); default unsigned
#   GO                 default: go
# Prints the path of the package built.
set -euo pipefail
format=${1:?usage: build-pkg.sh rpm|deb OUTDIR [PACKAGE]}
out=${2:?usage: build-pkg.sh rpm|deb OUTDIR [PACKAGE]}
pkg=${3:-slurm-elastic}
case $format in rpm | deb) ;; *) echo "build-pkg.sh: unknown format $format (rpm or deb)" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
conf=packaging/nfpm-$pkg.yaml
[ -f "$conf" ] || { echo "build-pkg.sh: no $conf" >&2; exit 2; }

export PKG_VERSION=${PKG_VERSION:-$(packaging/version.sh)}
export SE_BIN_DIR=${SE_BIN_DIR:-$root/bin}
export PKG_CONFIG=${PKG_CONFIG:-packaging/config.yaml}
export PKG_SIGNING_KEY=${PKG_SIGNING_KEY:-}
if [ -n "$PKG_SIGNING_KEY" ] && [ "$format" = rpm ] && [ ! -r "$PKG_SIGNING_KEY" ]; then
	echo "build-pkg.sh: PKG_SIGNING_KEY=$PKG_SIGNING_KEY is not a readable key file" >&2
	exit 2
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

case $pkg in
slurm-elastic) bins="slurm-elastic slurm-elastic-hostlist slurm-elastic-resume slurm-elastic-suspend slurm-elastic-resume-fail slurm-elastic-prolog" ;;
slurm-elastic-health) bins="slurm-elastic-health" ;;
*) bins="" ;;
esac
for b in $bins; do
	[ -x "$SE_BIN_DIR/$b" ] || { echo "build-pkg.sh: $SE_BIN_DIR/$b missing: run make build" >&2; exit 1; }
done

# Files generated for the package: the slurm.conf example is what
# `slurm-elastic conf slurm` prints for the shipped config (conf's golden test
# keeps conf/testdata/example.slurm.conf.golden equal to it).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
export PKG_STAGE=$stage
sed 's|^# from \.\./packaging/config\.yaml\.$|# from /etc/slurm-elastic/config.yaml (the example shipped by the package).|' \
	conf/testdata/example.slurm.conf.golden >"$stage/slurm.conf.example"
# Snapshots of the files other work may edit while a package is built.
cp README.md docs/operations.md LICENSE "$stage/"
cp "$PKG_CONFIG" "$stage/config.yaml"
# Man pages, compressed as both distributions expect; -n keeps the gzip
# header free of names and times, so the package stays reproducible.
mkdir "$stage/man"
for m in packaging/man/*.[0-9]; do
	gzip -n -9 -c "$m" >"$stage/man/$(basename "$m").gz"
done
export PKG_CONFIG=$stage/config.yaml

mkdir -p "$out"
# nfpm names the file itself; build into a private directory to learn the name.
tmpout=$stage/out
mkdir -p "$tmpout"
"${GO:-go}" tool nfpm package --config "$conf" --packager "$format" --target "$tmpout/" >&2
f=$(ls "$tmpout")
mv "$tmpout/$f" "$out/$f"
echo "$out/$f"
