# Bulwark's build, test and demo entry points. `make` alone lists them.
#
# Tools that a target needs are checked first: a missing Debian package is
# installed with apt-get when running as root (CI), otherwise make stops and
# prints the command to run. Each tool is one "command:packages" word below
# (packages comma-separated, "-" for none); adding a tool is one line, e.g.
#   TEST_TOOLS += redis-server:redis-server

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
# Targets run their steps in the documented order, even under make -j.
.NOTPARALLEL:
MAKEFLAGS += --no-builtin-rules

GO ?= go
GOFMT ?= $(shell $(GO) env GOROOT)/bin/gofmt

# Tools `make test` needs (besides the test binaries built from
# test/tools, see test-binaries): gcc (and the C library headers) because the race
# detector needs cgo; redis-server because the Redis rate-limit store is
# tested against a real server that the tests start on a free port.
TEST_TOOLS := go:-
TEST_TOOLS += gcc:gcc,libc6-dev
TEST_TOOLS += redis-server:redis-server
# promtool checks and unit-tests the alert rules and the Grafana dashboard's
# queries (test/deploy).
TEST_TOOLS += promtool:prometheus
# Tools `make bench` needs besides those of the tests: the load generator
# and CPU pinning for the load harness (test/load; it also starts a
# redis-server, which TEST_TOOLS already brings).
BENCH_TOOLS := wrk:wrk taskset:util-linux

# Version stamp; each may be set from the environment or the command line.
# Expanded once (:=), so every target of one make run sees the same values.
VERSION := $(or $(VERSION),$(shell git describe --tags --always --dirty 2>/dev/null),dev)
REVISION := $(or $(REVISION),$(shell git rev-parse HEAD 2>/dev/null),unknown)
BRANCH := $(or $(BRANCH),$(shell git rev-parse --abbrev-ref HEAD 2>/dev/null),unknown)
BUILD_DATE := $(or $(BUILD_DATE),$(shell date -u +%Y-%m-%dT%H:%M:%SZ))
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildDate=$(BUILD_DATE)

FUZZTIME ?= 30s
IMAGE ?= bulwark:$(VERSION)
# Where `make bench` writes the load report, and extra harness flags
# (e.g. LOAD_FLAGS='-duration 2s -rounds 1').
LOAD_OUT ?= bin/load-report.md
LOAD_FLAGS ?=

# ensure-tools installs or asks for the tools in $(1), "command:package"
# words; package "-" means there is no Debian package to install.
define ensure-tools
missing=(); \
for spec in $(1); do \
	cmd=$${spec%%:*}; pkgs=$${spec#*:}; \
	command -v "$$cmd" >/dev/null 2>&1 && continue; \
	if [[ $$pkgs == - ]]; then echo "make: $$cmd not found; install it first" >&2; exit 1; fi; \
	missing+=($${pkgs//,/ }); \
done; \
if (( $${#missing[@]} > 0 )); then \
	if [[ $$(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then \
		echo "make: installing $${missing[*]}" >&2; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends "$${missing[@]}" >/dev/null \
		|| { apt-get update >/dev/null && apt-get install -y --no-install-recommends "$${missing[@]}" >/dev/null; }; \
	else \
		echo "make: missing $${missing[*]}; run: sudo apt-get install -y $${missing[*]}" >&2; exit 1; \
	fi; \
fi
endef

# missing-packages prints the Debian packages missing for $(1).
define missing-packages
for spec in $(1); do \
	cmd=$${spec%%:*}; pkgs=$${spec#*:}; \
	command -v "$$cmd" >/dev/null 2>&1 || [[ $$pkgs == - ]] || echo "$${pkgs//,/ }"; \
done
endef

.PHONY: help
help: ## Show this help.
	@echo "Usage: make TARGET [VAR=value]"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 16
	@echo
	@echo "Variables: FUZZTIME=$(FUZZTIME) IMAGE=$(IMAGE) LOAD_OUT=$(LOAD_OUT) LOAD_FLAGS='$(LOAD_FLAGS)'"

.PHONY: build
build: ## Build bin/bulwark (static, version stamped).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/bulwark ./cmd/bulwark

.PHONY: bin/demo-upstream
bin/demo-upstream:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/demo-upstream ./cmd/demo-upstream

.PHONY: test
test: test-tools test-binaries fmt-check vet ## gofmt check, go vet, then every test with the race detector.
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# Programs the tests run, built from the versions pinned in the separate
# module test/tools (its go.mod `tool` directives), so that the main
# go.mod stays free of their dependencies: OPA, the policy server of the
# policy-hook tests (test/e2e/authorize_policy_test.go).
.PHONY: test-binaries
test-binaries: bin/opa

bin/opa: test/tools/go.mod test/tools/go.sum
	CGO_ENABLED=0 $(GO) build -C test/tools -trimpath -o $(abspath $@) github.com/open-policy-agent/opa

.PHONY: test-tools
test-tools:
	@$(call ensure-tools,$(TEST_TOOLS))

# Prints the Debian packages `make test` would install (used by .ci/run).
.PHONY: missing-test-packages
missing-test-packages:
	@$(call missing-packages,$(TEST_TOOLS))

.PHONY: fmt-check
fmt-check:
	@unformatted=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 -r $(GOFMT) -l); \
	if [[ -n $$unformatted ]]; then echo "gofmt: these files are not formatted (run gofmt -w on them):" >&2; echo "$$unformatted" >&2; exit 1; fi

.PHONY: vet
vet:
	$(GO) vet ./...

.PHONY: lint
lint: fmt-check vet ## gofmt check and go vet.

.PHONY: demo
demo: build bin/demo-upstream ## Run the demo: upstream + gateway, prints curl commands; Ctrl-C stops.
	./deploy/demo.sh

.PHONY: bench
bench: bench-tools build ## Go benchmarks, then the load harness (wrk): bulwark vs a bare reverse proxy.
	$(GO) test -run='^$$' -bench=. -benchmem ./...
	$(GO) run ./test/load -bulwark bin/bulwark -out $(LOAD_OUT) $(LOAD_FLAGS)

.PHONY: bench-tools
bench-tools:
	@$(call ensure-tools,$(TEST_TOOLS) $(BENCH_TOOLS))

.PHONY: fuzz
fuzz: ## Run every Fuzz target of every package for FUZZTIME each.
	@targets=$$($(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ { names[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2, names[i]; n = 0 }'); \
	if [[ -z $$targets ]]; then echo "fuzz: no Fuzz targets found" >&2; exit 1; fi; \
	while read -r pkg name; do \
		echo "fuzz: $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
	done <<< "$$targets"

.PHONY: docker
docker: ## Build the container image (IMAGE=bulwark:VERSION; needs a Docker engine).
	@command -v docker >/dev/null 2>&1 || { echo "make: docker not found; install Docker (https://docs.docker.com/engine/install/)" >&2; exit 1; }
	docker build \
		--build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$(REVISION) \
		--build-arg BRANCH=$(BRANCH) \
		--build-arg BUILD_DATE=$(BUILD_DATE) \
		-t $(IMAGE) .

.PHONY: clean
clean: ## Remove bin/ and test output.
	rm -rf bin/ coverage.out coverage.html cpu.pprof mem.pprof
