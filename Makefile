# Tradewind — the two commands a fresh machine needs:
#   make run    build and run every role in one process
#   make test   the whole default test suite (what CI runs)
GO       ?= go
BIN      := bin/tradewind
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PKGS     := ./...
GOLANGCI_LINT ?= golangci-lint
# The version .ci/run installs (go install …/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)).
GOLANGCI_LINT_VERSION := v2.15.0

.PHONY: all build run test test-short vet fmt lint fuzz bench bench-gateway bench-ws bench-saga bench-saga-tools soak chaos clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/tradewind
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tradewind

run: build ## run all roles: embedded NATS unless NATS_URL; PostgreSQL from DATABASE_URL, localhost:5432, or a throwaway cluster
	./$(BIN) serve

test: vet ## the whole default suite against real NATS JetStream and PostgreSQL (and lint, when golangci-lint is installed)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	@if command -v $(GOLANGCI_LINT) >/dev/null; then $(MAKE) --no-print-directory lint; \
	else echo "golangci-lint not installed: lint skipped (go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION))"; fi
	$(GO) test -count=1 -timeout 12m -p 2 $(PKGS)

test-short: ## fast unit tests only: no PostgreSQL needed (tests that need one skip, saying so), NATS embedded
	$(GO) test -short -count=1 $(PKGS)

vet: ## go vet
	$(GO) vet $(PKGS)

lint: ## golangci-lint with the checked-in .golangci.yml
	$(GOLANGCI_LINT) run $(PKGS)

fmt: ## gofmt -w
	gofmt -w $$(git ls-files '*.go')

fuzz: ## run every fuzz target for 30s each
	$(GO) test -run=NONE -fuzz=FuzzDecode -fuzztime=30s ./internal/cenats
	$(GO) test -run=NONE -fuzz=FuzzDecodeCommand -fuzztime=30s ./internal/api

bench: ## benchmarks: runner vs Watermill baseline, gateway vs raw publish, 1M-event rebuild vs raw COPY
	$(GO) test -run=NONE -bench=PlaceOrderSlice -benchtime=3x ./internal/runner
	$(GO) test -run=NONE -bench='AcceptOrders|RawPublish' -benchtime=3s ./internal/api
	TRADEWIND_BENCH_EVENTS=1000000 $(GO) test -run='^$$' -bench=RebuildOrders -benchtime=1x -timeout 30m ./projections

bench-gateway: build ## gateway from outside: wrk against serve --roles=api, CPU per command, raw publish baseline (needs wrk)
	deploy/bench/gateway.sh

bench-ws: ## WebSocket fan-out: Tradewind vs Centrifugo v6 side by side (installs Centrifugo in a temp dir)
	$(GO) run ./deploy/bench/ws

bench-saga-tools: build
	$(GO) build -o bin/nats-server github.com/nats-io/nats-server/v2
	cd deploy/bench/saga/dbos && $(GO) build -o ../../../../bin/saga-dbos .
	$(GO) build -o bin/bench-saga ./deploy/bench/saga

bench-saga: bench-saga-tools ## the saga end to end vs DBOS, Watermill and the machine's limit, one table; appends docs/performance.md (~12 min; BENCH_SAGA_FLAGS=-quick to validate)
	./bin/bench-saga $(BENCH_SAGA_FLAGS)

SOAK_FOR ?= 30m
soak: bench-saga-tools ## hold half the maximum for SOAK_FOR (30m): completed vs offered, lag, RSS, goroutines, table sizes; appends docs/performance.md
	./bin/bench-saga -soak -soak-for $(SOAK_FOR) $(SOAK_FLAGS)

chaos: ## long chaos test: >= 20 SIGKILLs, NATS restarts and pg_terminate_backend under load, then check (~8 min)
	TRADEWIND_CHAOS=long $(GO) test -count=1 -run TestChaos -timeout 30m -v ./internal/chaos/

clean: ## remove build output and local state: .tradewind (NATS store) AND the tradewind database, which refer to each other
	@if [ -x bin/tradewind ]; then bin/tradewind reset --yes; else $(GO) run ./cmd/tradewind reset --yes; fi
	rm -rf bin
