// Package version holds the build's version, set by the Makefile with
// -ldflags "-X github.com/slurm-elastic/slurm-elastic/internal/version.Version=...".
package version

// Version is the release this binary was built from (git describe).
var Version = "dev"
