# Kubernetes test cluster (issue 14, tests/kube).
#   make kube-bins   -> build (or reuse) the Kubernetes binaries tests/kube starts
#                       (/var/cache/slurm-elastic-test/kube/<key>/; ~4-7 min cold, 0 s cached)
#   make kube-test   -> tests/kube alone: a real single-node cluster, a pod from the Slurm image,
#                       the Podman head <-> pod routes (root)
# `make test` should depend on kube-bins: otherwise the cold build runs inside tests/kube's test
# (under its timeout) while the other packages compete for the two cores.
.PHONY: kube-bins kube-test

## kube-bins: build the Kubernetes binaries of tests/kube once (cached by version + ldflags)
kube-bins: go-check deps
	CGO_ENABLED=0 $(GO) run -tags "$(TAGS)" ./tests/kube/cmd/se-kube build

## kube-test: tests/kube's tests (a real Kubernetes; SE_KUBE_NAME names the clusters)
kube-test: go-check deps kube-bins
	$(GOTEST) -timeout $(TEST_TIMEOUT) -v ./tests/kube/
