// Package image holds the recipes of the Slurm test images used by the e2e harness
// (tests/harness), one per Slurm release a site runs: the Debian suite that ships it, the
// packages, the setup run in the root file system, and the scripts added to it. The harness
// builds an image from a recipe; everything here is covered by the image tag's hash, so a
// change here builds a new image (of that version only).
package image

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Recipe is how the image of one Slurm release is made.
type Recipe struct {
	// Slurm is the release, "22.05", "24.11" or "26.05": the image tag's prefix.
	Slurm string
	// Suite is the Debian release that ships it.
	Suite string
	// Packages are installed by debootstrap --variant=minbase --include.
	Packages []string
	// Setup is run, argv by argv, with chroot inside the fresh root file system before it
	// is archived.
	Setup [][]string
	// RESTParser is the newest slurmrestd data parser the release serves: the harness's
	// readiness ping goes to /slurm/<RESTParser>/ping.
	RESTParser string
}

// DefaultSlurm is the release tests run on when neither harness.Options nor SE_SLURM
// names one.
const DefaultSlurm = "24.11"

// basePackages are the same name in every suite (bookworm, trixie, sid).
var basePackages = []string{
	"slurmctld",
	"slurmd",
	"slurmrestd",
	"slurm-client",
	"munge",
	"slurm-wlm-jwt-plugin",
	"iproute2",
	"procps",
}

// addRESTUser adds the dedicated, non-root slurmrestd user (slurmrestd refuses to run as
// root or as SlurmUser; no suite's package creates it).
var addRESTUser = []string{"useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
	"--shell", "/usr/sbin/nologin", "slurmrestd"}

var baseSetup = [][]string{addRESTUser, {"apt-get", "clean"}}

var recipes = map[string]Recipe{
	// Debian 12: 22.05.8. slurmrestd serves v0.0.36–v0.0.38 (no node update endpoint).
	"22.05": {Slurm: "22.05", Suite: "bookworm", Packages: basePackages, Setup: baseSetup, RESTParser: "v0.0.38"},
	// Debian 13: 24.11.5. Data parsers v0.0.40–v0.0.42.
	"24.11": {Slurm: "24.11", Suite: "trixie", Packages: basePackages, Setup: baseSetup, RESTParser: "v0.0.42"},
	// Debian sid: 26.05.5. Data parsers v0.0.42–v0.0.45.
	"26.05": {Slurm: "26.05", Suite: "sid", Packages: basePackages, Setup: baseSetup, RESTParser: "v0.0.45"},
}

// Versions lists the releases there is a recipe for, oldest first. It does not block.
func Versions() []string { return slices.Sorted(maps.Keys(recipes)) }

// For returns the recipe of the Slurm release v ("22.05", "24.11", "26.05"); "" is
// DefaultSlurm. The error names the releases there are. It does not block.
func For(v string) (Recipe, error) {
	if v == "" {
		v = DefaultSlurm
	}
	r, ok := recipes[v]
	if !ok {
		return Recipe{}, fmt.Errorf("no test image for Slurm %q: want one of %s", v, strings.Join(Versions(), ", "))
	}
	return r, nil
}

// NodeEntrypoint is /usr/local/sbin/slurm-elastic-node, the image's default command: PID 1 of
// a node container (see the script for its contract).
//
//go:embed slurm-elastic-node
var NodeEntrypoint []byte

// NodeReboot is /usr/local/sbin/slurm-elastic-node-reboot, the nodes' RebootProgram
// (conf.DefaultRebootProgram): it stops the node container (see the script).
//
//go:embed slurm-elastic-node-reboot
var NodeReboot []byte

// NodeImageHelper is /usr/local/sbin/slurm-elastic-node-image, the Helper program of
// slurmd's node_features/helpers plugin: it prints the group image the node container was
// started with (see the script; runtime.NodeFeatureHelper is its path).
//
//go:embed slurm-elastic-node-image
var NodeImageHelper []byte

// HeadEntrypoint is /usr/local/sbin/slurm-elastic-head: init and daemon control of the
// head container.
//
//go:embed slurm-elastic-head
var HeadEntrypoint []byte

// Paths of the scripts inside the image.
const (
	NodeEntrypointPath  = "/usr/local/sbin/slurm-elastic-node"
	NodeRebootPath      = "/usr/local/sbin/slurm-elastic-node-reboot"
	NodeImageHelperPath = "/usr/local/sbin/slurm-elastic-node-image"
	HeadEntrypointPath  = "/usr/local/sbin/slurm-elastic-head"
)
