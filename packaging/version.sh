#!/bin/bash
# Prints the package version for the current git checkout, valid for both RPM
# (Version: no '-') and Debian (starts with a digit; [0-9A-Za-z.+~]):
#
#   tag v1.2.3, clean, on the tag       -> 1.2.3
#   3 commits after v1.2.3 (g0abc123)   -> 1.2.3+git3.0abc123
#   no tag yet, 42 commits              -> 0.0.0+git42.0abc123
#   uncommitted changes                 -> ... + ".dirty"
#
# Both rpm and dpkg order these as wanted: 1.2.3 < 1.2.3+git3.x < 1.2.3+git12.y
# < 1.2.4 ('+' is a separator for rpm, which then compares "git3" segment-wise;
# dpkg sorts '+' after the end of the string).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "0.0.0+unknown"
	exit 0
fi

dirty=""
git diff --quiet HEAD -- 2>/dev/null || dirty=".dirty"

if desc=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
	# v1.2.3-4-gabcdef0 (a tag may itself hold '-', e.g. v1.2.3-rc1: keep it as '~rc1')
	sha=${desc##*-g}
	rest=${desc%-g*}
	count=${rest##*-}
	base=${rest%-*}
	base=${base#v}
	base=${base//-/\~}
else
	base=0.0.0
	count=$(git rev-list --count HEAD)
	sha=$(git rev-parse --short HEAD)
fi

if [ "$count" = 0 ] && [ -z "$dirty" ]; then
	echo "$base"
else
	echo "${base}+git${count}.${sha}${dirty}"
fi
