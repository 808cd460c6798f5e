# Kubernetes test cluster (issue 14, tests/kube).
#   make kube-bins   -> build (or reuse) the Kubernetes binaries tests/kube starts
#                       (/var/cache/slurm-elastic-test/kube/<key>/; ~4-7 min cold, 0 s cached)
#   make kube-test   -> tests/kube alone: a real single-node cluster, a pod from the Slurm image,
#                       the Podman head <-> pod routes (root)
#   make kube-e2e    -> tests/kubee2e alone: the Slurm head's `runtime: kubernetes` group on that
#                       cluster, end to end (root; ~8 min). `make test` runs it in its package stream.
# `make test` should depend on kube-bins: otherwise the cold build runs inside tests/kube's test
# (under its timeout) while the other packages compete for the two cores.
.PHONY: kube-bins kube-test kube-e2e

## kube-bins: build the Kubernetes binaries of tests/kube once (cached by version + ldflags)
kube-bins: go-check deps
	CGO_ENABLED=0 $(GO) run -tags "$(TAGS)" ./tests/kube/cmd/se-kube build

## kube-test: tests/kube's tests (a real Kubernetes; SE_KUBE_NAME names the clusters)
kube-test: go-check deps kube-bins
	$(GOTEST) -timeout $(TEST_TIMEOUT) -v ./tests/kube/

## kube-e2e: tests/kubee2e (Slurm head + Kubernetes; SE_E2E_NAME and SE_KUBE_NAME name the clusters)
kube-e2e: go-check deps build kube-bins
	$(GOTEST) -timeout $(TEST_TIMEOUT) -v ./tests/kubee2e/
