// Package packaged holds the end-to-end test of the packaged path with the
// shipped example (packaged_test.go): a head that installed slurm-elastic
// from its .deb, the example config packaging/config.yaml edited only where
// an admin must choose names, node containers from the shipped node image
// recipe (packaging/node) with the health daemon, and the reconciler run as
// the shipped systemd unit says. It has its own cluster, because its
// slurm.conf is rendered from the shipped example. The test skips with
// -short (make unit).
package packaged
