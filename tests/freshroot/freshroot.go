// Package freshroot checks that `make deps` is complete without trusting the host, which
// already has everything: its test debootstraps a minimal Debian 12 (bookworm) root once
// (cached as a tarball in /var/cache/slurm-elastic-test), runs `make deps` inside a fresh
// copy of it, and checks that every tool of the one list (tests/hostdeps) exists there.
// It first drops packages from the list (DEPS_DROP) and checks that the tool check then
// fails naming them, so the check cannot pass vacuously.
//
// apt runs in a chroot inside a private mount namespace (a re-executed test binary, see
// helperEnv): /proc, /dev and the .deb cache mounted for it vanish with that process on
// every path, even when the test is killed. Root only; not run with -short.
package freshroot
