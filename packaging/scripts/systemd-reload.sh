#!/bin/sh
# post-install / post-upgrade / post-remove: let systemd see new or removed
# unit files. Nothing else happens in scriptlets: no user is created, no unit
# is enabled or started, nothing is fetched.
# Skipped when systemd is not running (containers, chroots, image builds) and
# when dpkg installs into another root.
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
