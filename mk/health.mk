# Node health daemon (issue 3): slurm-elastic-health needs cgo for NVML
# (github.com/NVIDIA/go-nvml); everything else in the tree builds with cgo off.
#   make build-health  -> bin/slurm-elastic-health (CGO_ENABLED=1)
#   make test-health   -> nodehealth/... with cgo, including the dgxa100 NVML mock tests
#   make bench-health  -> one round of host checks (docs/benchmarks.md)
# The health binary imports no Podman code, so it needs none of $(TAGS);
# HEALTH_TAGS is its own (empty) set. go-nvml's header marks some calls
# deprecated: the warnings are silenced, not the errors.
HEALTH_TAGS   :=
HEALTH_CGO    := CGO_ENABLED=1 CGO_CFLAGS="-O2 -Wno-deprecated-declarations"

.PHONY: build-health test-health bench-health

## build-health: bin/slurm-elastic-health with NVML (cgo)
build-health:
	@mkdir -p $(BIN)
	$(HEALTH_CGO) $(GO) build -tags "$(HEALTH_TAGS)" -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/slurm-elastic-health ./cmd/slurm-elastic-health

## test-health: the health packages with cgo (NVML mock tests included)
test-health:
	$(HEALTH_CGO) $(GO) test -tags "$(HEALTH_TAGS)" ./nodehealth/... ./cmd/slurm-elastic-health/

## bench-health: cost of one round of host checks
bench-health:
	$(HEALTH_CGO) $(GO) test -tags "$(HEALTH_TAGS)" -run '^$$' -bench . -benchmem ./nodehealth/host/
