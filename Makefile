# Dionysia — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin
PKGS := ./...
# ROW picks benchmark rows for `make bench` (comma-separated; empty = all).
ROW ?=
# Integration tests start real mediamtx and ffmpeg processes; they find them here.
export DIONYSIA_MEDIAMTX := $(CURDIR)/$(BIN)/mediamtx
export DIONYSIA_HLSJS := $(CURDIR)/$(BIN)/hls.min.js
# The test player (testcluster/player) plays DASH with dash.js from here.
export DIONYSIA_DASHJS := $(CURDIR)/$(BIN)/dash.all.min.js

.PHONY: all deps build run test test-short lint fmt vet bench chaos clean

all: build

## deps: install ffmpeg (apt-get) and build mediamtx into bin/ when missing
deps:
	@scripts/deps.sh

## build: bin/dionysia
build:
	$(GO) build -trimpath -o $(BIN)/dionysia ./cmd/dionysia

## run: one node with an embedded single-node raft in ./data, prints publish and playback URLs
run: deps build
	$(BIN)/dionysia node --data-dir ./data --mediamtx $(BIN)/mediamtx

## test: every test, the integration tests with real mediamtx and ffmpeg included
# -p 1: packages run one after the other. The integration tests of several
# packages at once would fight over 2 cores (ffmpeg encodes, memberlist probes
# with 300 ms timeouts) and flake; in series the suite takes a few minutes.
test: lint
	@scripts/deps.sh --test
	$(GO) test -p 1 -count=1 -timeout 30m $(PKGS)

## test-short: skips the tests that push real streams through ffmpeg
test-short:
	$(GO) test -count=1 -short $(PKGS)

## lint: gofmt and go vet
lint:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: benchmark suite against the baselines (bench/README.md); one row: make bench ROW=routing
bench: deps build
	@scripts/bench-deps.sh
	DIONYSIA_BENCH=1 ROW="$(ROW)" BENCH_OUT="$(CURDIR)/bench/results" $(GO) test -count=1 -v -timeout 25m -run '^TestBench$$' ./bench

## chaos: the full chaos suite (root): 5 nodes in network namespaces through every fault; report in bench/results/chaos-<date>.md
# `make test` runs its short subset (isolated leader, frozen leader) by itself.
# A kernel without sch_netem delays packets through iptables NFQUEUE instead
# (chaos/delay.go); with neither, the latency fault runs with loss only and the
# report says so (with CI or DIONYSIA_REQUIRE_CHAOS set, a failure).
chaos: build
	@scripts/deps.sh --test
	DIONYSIA_CHAOS=1 DIONYSIA_BIN="$(CURDIR)/$(BIN)/dionysia" \
	  DIONYSIA_CHAOS_REPORT="$(CURDIR)/bench/results" \
	  $(GO) test -count=1 -v -timeout 30m -run '^TestChaos$$' ./chaos

clean:
	rm -rf $(BIN) .build
