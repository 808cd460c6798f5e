# Node health daemon (issue 3): slurm-elastic-health needs cgo for NVML
# (github.com/NVIDIA/go-nvml); everything else in the tree builds with cgo off.
#   make build-health  -> bin/slurm-elastic-health (CGO_ENABLED=1)
#   make test-health   -> nodehealth/... with cgo, including the dgxa100 NVML mock tests
#   make bench-health  -> docs/benchmarks.md section 4 (also run by `make bench`)
# The health binary imports no Podman code, so it needs none of $(TAGS);
# HEALTH_TAGS is its own (empty) set. go-nvml's header marks some calls
# deprecated: the warnings are silenced, not the errors.
HEALTH_TAGS   :=
HEALTH_CGO    := CGO_ENABLED=1 CGO_CFLAGS="-O2 -Wno-deprecated-declarations"

.PHONY: build-health test-health bench-health

## build-health: bin/slurm-elastic-health with NVML (cgo)
build-health: go-check
	@mkdir -p $(BIN)
	$(HEALTH_CGO) $(GO) build -tags "$(HEALTH_TAGS)" -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/slurm-elastic-health ./cmd/slurm-elastic-health

## test-health: the health packages with cgo (NVML mock tests included)
test-health: go-check
	$(HEALTH_CGO) $(GO) test -tags "$(HEALTH_TAGS)" ./nodehealth/... ./cmd/internal/healthcmd/ ./cmd/slurm-elastic-health/

## bench-health: docs/benchmarks.md section 4 (node health), about 10 minutes:
##   a. go test -bench (cgo): one check round, and the Xid event -> DRAIN
##      latency through the NVML event path on the dgxa100 mock (Slurm: slurmfake)
##   b. the daemon's CPU and RSS over HEALTH_FOOTPRINT (default 5m), all host checks every 10s
##   c. polled fault (full scratch path) -> DRAIN in the real slurmctld of an e2e
##      cluster (SE_E2E_NAME, default se-e2e-health-bench), interval 10s
## Results (JSON) land in HEALTH_BENCH_OUT; the BENCH lines are the figures.
HEALTH_FOOTPRINT  ?= 5m
HEALTH_BENCH_OUT  ?= /tmp/se-bench-health
bench-health: deps build build-health
	@mkdir -p $(HEALTH_BENCH_OUT)
	@echo "bench-health: load average $$(cut -d' ' -f1-3 /proc/loadavg), $$(nproc) CPUs; results in $(HEALTH_BENCH_OUT)"
	$(HEALTH_CGO) $(GO) test -tags "$(HEALTH_TAGS)" -run '^$$' -bench . -benchmem ./nodehealth/host/ ./cmd/internal/healthcmd/
	SE_HEALTH_BIN=$(BIN)/slurm-elastic-health SE_HEALTH_FOOTPRINT=$(HEALTH_FOOTPRINT) SE_BENCH_OUT=$(HEALTH_BENCH_OUT) \
		$(HEALTH_CGO) $(GO) test -tags "$(HEALTH_TAGS)" -count=1 -timeout 30m -run '^TestFootprint$$' -v ./cmd/internal/healthcmd/
	SE_BENCH_HEALTH=1 SE_BENCH_OUT=$(HEALTH_BENCH_OUT) SE_E2E_NAME=$${SE_E2E_NAME:-se-e2e-health-bench} \
		$(GOTEST) -timeout 30m -run '^TestHealthLatency$$' -v ./tests/e2e/

# `make bench` runs the health benchmarks too (before its own recipe).
bench: bench-health
