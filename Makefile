# slurm-elastic — build, test, demo, bench, packages.
# The Go build tags live here and only here: every Podman importer builds with them.
SHELL       := /bin/bash
GO          ?= go
TAGS        := remote containers_image_openpgp
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X github.com/slurm-elastic/slurm-elastic/internal/version.Version=$(VERSION)
BIN         := $(CURDIR)/bin
HOOKS       := slurm-elastic slurm-elastic-resume slurm-elastic-suspend slurm-elastic-resume-fail slurm-elastic-prolog slurm-elastic-hostlist
# -count=1: tests that start real clusters read files go test cannot track; a cached pass is no pass.
GOTEST      := CGO_ENABLED=0 $(GO) test -count=1 -tags "$(TAGS)"
TEST_TIMEOUT ?= 45m
# The Debian packages the tests and the demo need (APT_PKGS) come from the one list of host
# tools, tests/hostdeps/debian12.txt: see mk/deps.mk (`make deps`, `make go-check`).

export SE_BIN_DIR := $(BIN)
export SE_GO_TAGS := $(TAGS)

.PHONY: all build deps test unit integration e2e bench fuzz demo demo-down vet fmt tidy clean

all: build

## build: static binaries in bin/
build: go-check
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -tags "$(TAGS)" -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ $(addprefix ./cmd/,$(HOOKS))

vet: go-check
	CGO_ENABLED=0 $(GO) vet -tags "$(TAGS)" ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## tidy: go.mod and go.sum are what `go mod tidy` makes (prints the diff otherwise)
tidy: go-check
	$(GO) mod tidy -diff

# The e2e tests spend most of their time waiting on Slurm's timers (SuspendTime, cred_expire,
# reconciler rounds), not on the CPU. `make test` runs them as two shards, each on its own
# cluster, beside the other packages: every test runs exactly once (-run / -skip of one list).
# Shard B's head installs slurm-elastic from its .deb (SE_E2E_DEB, as `make demo` does), shard A's
# mounts bin/; tests/packaged (the admin's path from the shipped files) uses the same .deb.
E2E_SHARD_A := ^(TestReconcileFailover|TestBadInput|TestReconcileCapacityCooldown|TestReconcileOrphan|TestNodeImage|TestReconcileConfigReload)$$

# The other Slurm releases (SE_SLURM, see docs/operations.md "Slurm releases") get a smoke set
# each, beside the shards, one cluster at a time per release: the internal/slurm integration
# tests (both backends on real output), then power cycle, failed launch, failover, bad input, cold start (the prolog).
E2E_SMOKE   := ^(TestPowerCycle|TestBrokenGroupFailsFast|TestReconcileFailover|TestBadInput|TestColdStart|TestGroupImages)$$
SMOKE_SLURM := 22.05 26.05

# tests/freshroot (`make deps` in a fresh Debian 12 root) waits on apt and dpkg, not the CPU:
# it runs beside the others too.
## test: unit + integration + e2e (real Slurm 24.11 and Podman; smoke sets on 22.05 and 26.05); installs prerequisites itself
test: go-check deps build build-health deb-head kube-bins fmt vet tidy
	@pkgs=$$(CGO_ENABLED=0 $(GO) list -tags "$(TAGS)" ./... | grep -v -e '/tests/e2e$$' -e '/tests/freshroot$$'); pids=""; \
	SE_E2E_DEB=$(HEAD_DEB) $(GOTEST) -p 2 -timeout $(TEST_TIMEOUT) $$pkgs & pids="$$pids $$!"; \
	$(GOTEST) -timeout $(TEST_TIMEOUT) ./tests/freshroot/ & pids="$$pids $$!"; \
	SE_E2E_NAME=se-e2e-a $(GOTEST) -timeout $(TEST_TIMEOUT) -run '$(E2E_SHARD_A)' ./tests/e2e/ & pids="$$pids $$!"; \
	SE_E2E_NAME=se-e2e-b SE_E2E_DEB=$(HEAD_DEB) $(GOTEST) -timeout $(TEST_TIMEOUT) -skip '$(E2E_SHARD_A)' ./tests/e2e/ & pids="$$pids $$!"; \
	for v in $(SMOKE_SLURM); do \
		{ SE_SLURM=$$v $(GOTEST) -timeout $(TEST_TIMEOUT) -run Integration ./internal/slurm/ && \
		  SE_SLURM=$$v SE_E2E_NAME=se-e2e-$${v/./} $(GOTEST) -timeout $(TEST_TIMEOUT) -run '$(E2E_SMOKE)' ./tests/e2e/; } & pids="$$pids $$!"; \
	done; \
	rc=0; for p in $$pids; do wait $$p || rc=1; done; exit $$rc
	$(MAKE) --no-print-directory test-health

## unit: the fast tests only (no containers)
unit: go-check
	$(GOTEST) -short ./...

e2e: go-check deps build
	$(GOTEST) -timeout $(TEST_TIMEOUT) -v ./tests/e2e/

## bench: benchmarks; results are recorded in docs/benchmarks.md
bench: go-check deps build kube-bins
	$(GOTEST) -run '^$$' -bench . -benchmem ./internal/hostlist/ ./internal/pool/
	bash tests/bench/run.sh

fuzz: go-check
	$(GOTEST) -run '^$$' -fuzz FuzzExpand -fuzztime 60s ./internal/hostlist/

## demo: a local elastic Slurm cluster on Podman; submits a job and shows nodes powering up and down.
## The head installs slurm-elastic from its .deb (deb-head); DEMO_FROM=bin mounts bin/ instead.
DEMO_FROM ?= deb
demo: go-check deps build $(if $(filter deb,$(DEMO_FROM)),deb-head)
	$(GO) run -tags "$(TAGS)" ./tests/demo $(if $(filter deb,$(DEMO_FROM)),-deb $(HEAD_DEB))

## demo-down: remove everything the demo created
demo-down: go-check
	$(GO) run -tags "$(TAGS)" ./tests/demo -down

# Issue-specific targets (packaging, health) live in mk/*.mk.
include $(wildcard mk/*.mk)

clean:
	rm -rf $(BIN) dist
