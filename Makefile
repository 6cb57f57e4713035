# Dionysia — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin
PKGS := ./...
# Integration tests start real mediamtx and ffmpeg processes; they find them here.
export DIONYSIA_MEDIAMTX := $(CURDIR)/$(BIN)/mediamtx
export DIONYSIA_HLSJS := $(CURDIR)/$(BIN)/hls.min.js

.PHONY: all deps build run test test-short lint fmt vet bench clean

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
test: lint
	@scripts/deps.sh --test
	$(GO) test -count=1 -timeout 20m $(PKGS)

## test-short: unit tests only (no real media processes)
test-short:
	$(GO) test -count=1 -short $(PKGS)

## lint: gofmt and go vet
lint:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: benchmark suite (see bench/README.md)
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf $(BIN) .build
