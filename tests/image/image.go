// Package image is the recipe of the Slurm 24.11 test image used by the e2e harness
// (tests/harness): the Debian suite and packages, the setup run in the root file system, and
// the scripts added to it. The harness builds the image from this recipe; everything here is
// covered by the image tag's hash, so a change here builds a new image.
package image

import (
	_ "embed"
)

// Suite is the Debian release the image is built from (it carries Slurm 24.11).
const Suite = "trixie"

// Packages are installed by debootstrap --variant=minbase --include.
var Packages = []string{
	"slurmctld",
	"slurmd",
	"slurmrestd",
	"slurm-client",
	"munge",
	"slurm-wlm-jwt-plugin",
	"iproute2",
	"procps",
}

// Setup is run, argv by argv, with chroot inside the fresh root file system before it is
// archived. It adds the dedicated, non-root slurmrestd user (slurmrestd refuses to run as
// root or as SlurmUser) and drops what an image does not need.
var Setup = [][]string{
	{"useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
		"--shell", "/usr/sbin/nologin", "slurmrestd"},
	{"apt-get", "clean"},
}

// NodeEntrypoint is /usr/local/sbin/slurm-elastic-node, the image's default command: PID 1 of
// a node container (see the script for its contract).
//
//go:embed slurm-elastic-node
var NodeEntrypoint []byte

// HeadEntrypoint is /usr/local/sbin/slurm-elastic-head: init and daemon control of the
// head container.
//
//go:embed slurm-elastic-head
var HeadEntrypoint []byte

// Paths of the scripts inside the image.
const (
	NodeEntrypointPath = "/usr/local/sbin/slurm-elastic-node"
	HeadEntrypointPath = "/usr/local/sbin/slurm-elastic-head"
)
