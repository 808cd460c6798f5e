# Host prerequisites (issue 9).
#   make deps                     -> apt-get install the Debian packages of tests/hostdeps/debian12.txt
#                                    (the one list: the harness's tool checks and tests/freshroot read it too)
#   make deps DEPS_DROP="a b"     -> the same, less packages a and b (the fresh-root test's negative case)
#   make deps-list                -> print the packages `make deps` installs
#   make go-check                 -> fail early unless `$(GO)` is at least go.mod's `go` version
# deps needs only bash, awk, dpkg and apt-get (no Go, no git): tests/freshroot runs it in a bare
# Debian 12 root with this file, the Makefile and the list copied in.
HOSTDEPS    := tests/hostdeps/debian12.txt
DEPS_DROP   ?=
APT_PKGS    := $(filter-out $(DEPS_DROP),$(sort $(shell awk '{sub(/#.*/, "")} NF == 2 {print $$2} NF && NF != 2 {print "BAD-LINE-" NR; exit}' $(HOSTDEPS))))
ifneq ($(filter BAD-LINE-%,$(APT_PKGS)),)
$(error $(HOSTDEPS): line $(patsubst BAD-LINE-%,%,$(filter BAD-LINE-%,$(APT_PKGS))) is not "TOOL PACKAGE")
endif
ifeq ($(strip $(APT_PKGS)),)
$(error $(HOSTDEPS): no packages read (is the file there?))
endif

# The Go toolchain: go.mod's `go` line is the oldest that builds this module. GOTOOLCHAIN=local
# (unless set) so the check sees the installed toolchain, not one the go command would download.
GO_MIN      := $(shell awk '$$1 == "go" {print $$2; exit}' go.mod 2>/dev/null)

.PHONY: deps deps-list go-check

## deps: install the Debian packages the build, tests, demo and benchmarks need (idempotent)
deps:
	@missing=""; for p in $(APT_PKGS); do \
		[ "$$(dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null)" = installed ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		[ "$$(id -u)" = 0 ] || { echo "deps: missing:$$missing; run \`make deps\` as root to install them"; exit 1; }; \
		echo "deps: installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "deps: all $(words $(APT_PKGS)) packages of $(HOSTDEPS) are installed"; \
	fi

deps-list:
	@echo $(APT_PKGS)

## go-check: Go at least go.mod's version (README.md, "Prerequisites")
go-check:
	@v=$$(GOTOOLCHAIN=$${GOTOOLCHAIN:-local} $(GO) env GOVERSION 2>&1) || { \
		echo "make: Go $(GO_MIN) or newer is needed (go.mod) and \`$(GO)\` does not run: $$v"; \
		echo "make: install it from https://go.dev/dl/ into /usr/local/go and put /usr/local/go/bin on PATH (Debian 12's golang package is 1.19, too old)"; \
		exit 1; }; \
	case "$$v" in go[0-9]*) ;; devel*) echo "make: a development Go ($$v), not checked against go.mod's $(GO_MIN)"; exit 0;; *) echo "make: \`$(GO) env GOVERSION\` printed \"$$v\", not a Go release; Go $(GO_MIN) or newer is needed (go.mod)"; exit 1;; esac; \
	have=$${v#go}; have=$${have%% *}; \
	if ! printf '%s\n%s\n' "$(GO_MIN)" "$$have" | sort -V -C; then \
		echo "make: Go $$have is too old: go.mod needs Go $(GO_MIN) or newer; install it from https://go.dev/dl/ into /usr/local/go and put /usr/local/go/bin on PATH (Debian 12's golang package is 1.19)"; \
		exit 1; \
	fi
