// Package kubee2e holds the end-to-end tests of groups with `runtime:
// kubernetes` on the real Slurm head (kubee2e_test.go): a harness cluster
// (tests/elastic: slurmctld runs slurm-elastic's hooks as SlurmUser, from
// the .deb when SE_E2E_DEB names it) whose group k8s runs its nodes as pods
// of a real single-node Kubernetes (tests/kube). The head reaches the API
// server on the Kubernetes node's address (kube.Options.APIOnGateway) with
// the kubeconfig an admin would give it: a token of the shipped RBAC's
// account (packaging/kubernetes/rbac.yaml), not the cluster admin's; head
// and pods reach each other by their own addresses (kube.Options.PodRoutes).
// The reconciler runs as the shipped systemd unit runs it. It has its own
// clusters: tests/e2e's does not start a Kubernetes. The tests skip with
// -short (make unit).
package kubee2e
