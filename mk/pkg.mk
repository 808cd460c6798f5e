# Packages (issue 4): RPM and deb built with nfpm, the Go tool pinned in go.mod
# (`go tool nfpm`; nothing is fetched beyond the module proxy).
#   make rpm | make deb   -> dist/slurm-elastic-VERSION-1.x86_64.rpm, dist/slurm-elastic_VERSION-1_amd64.deb
#   make rpm PKG_SIGNING_KEY=key.asc -> the RPMs signed with that OpenPGP secret key (packaging/README.md)
#   make pkg-version      -> the package version (packaging/version.sh: git describe made RPM/deb-valid)
#   make test-pkg         -> packaging/pkgtest: contents, rpmlint, install/upgrade/erase in scratch roots
# The packages hold the binaries of `make build` (bin/); file mtimes and the
# build time are the commit time (SOURCE_DATE_EPOCH), so a rebuild of the same
# commit is byte-identical.
DIST        := $(CURDIR)/dist
PKG_VERSION ?= $(shell packaging/version.sh)
# Packages built by `make rpm`/`make deb`: the head package and the
# compute-node package slurm-elastic-health, whose cgo binary comes from
# build-health (mk/health.mk).
PKGS        := slurm-elastic slurm-elastic-health
PKG_ENV     = PKG_VERSION=$(PKG_VERSION) SE_BIN_DIR=$(BIN) GO=$(GO) PKG_SIGNING_KEY=$(PKG_SIGNING_KEY)

.PHONY: rpm deb pkg-version test-pkg

pkg-version:
	@echo $(PKG_VERSION)

## rpm: RPM packages in dist/
rpm: build build-health
	@mkdir -p $(DIST)
	@for p in $(PKGS); do $(PKG_ENV) packaging/build-pkg.sh rpm $(DIST) $$p || exit 1; done

## deb: Debian packages in dist/
deb: build build-health
	@mkdir -p $(DIST)
	@for p in $(PKGS); do $(PKG_ENV) packaging/build-pkg.sh deb $(DIST) $$p || exit 1; done

## deb-head: only the head-node .deb (no cgo build), for `make demo`; its path is HEAD_DEB
HEAD_DEB    = $(DIST)/slurm-elastic_$(PKG_VERSION)-1_amd64.deb
.PHONY: deb-head
deb-head: build
	@mkdir -p $(DIST)
	@$(PKG_ENV) packaging/build-pkg.sh deb $(DIST) slurm-elastic

## test-pkg: package tests (needs rpm, rpmlint, dpkg; builds its own packages from bin/)
test-pkg: build
	$(GOTEST) -v ./packaging/pkgtest/

## node-image: the node image (packaging/node/Containerfile) from NODE_BASE, tagged NODE_TAG
NODE_BASE ?=
NODE_TAG  ?= localhost/slurm-elastic-node:$(subst +,-,$(PKG_VERSION))
.PHONY: node-image
node-image: deb
	@test -n "$(NODE_BASE)" || { echo "node-image: set NODE_BASE to a base image with Slurm (slurmd, munge)"; exit 2; }
	packaging/node/build.sh "$(NODE_BASE)" "$(NODE_TAG)" $(DIST)
