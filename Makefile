# ferry: see README.md. Every target runs on a fresh machine with Go 1.26.

GO        ?= go
PKGS      ?= ./...
# Fuzzing: FUZZTIME per target for `make fuzz`; FUZZTIME_SHORT per target
# for the short pass `make test` runs (a count: see fuzz/run.sh).
FUZZTIME       ?= 60s
FUZZTIME_SHORT ?= 20000x
STATICCHECK_VERSION ?= v0.8.2
BIN       := $(CURDIR)/bin

.PHONY: all run test unit fmt-check vet fuzz fuzz-short bench lint vectors vectors-update chaos bench-tool bench-compare clean

all: test

## run: ferryd on its embedded defaults: FERRY/1 on 127.0.0.1:7100, admin on 127.0.0.1:7101.
run:
	$(GO) run ./cmd/ferryd $(ARGS)

## test: gofmt and go vet, the unit tests under -race with shuffled order, and a short fuzz pass.
test: fmt-check vet unit fuzz-short

unit:
	$(GO) test -race -shuffle=on -count=1 -timeout 20m $(PKGS)

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

## fuzz: every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10m).
fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) sh fuzz/run.sh

fuzz-short:
	@FUZZTIME=$(FUZZTIME_SHORT) GO=$(GO) sh fuzz/run.sh

## chaos: the chaos test of reliable delivery at full size: 1,000,000 messages both ways through
## toxiproxy, in-process (make test runs 50,000 under -race). CHAOS_SEED repeats a run,
## CHAOS_ARGS passes more flags (-chaos.kills, -chaos.clients, -chaos.engine, -chaos.v).
CHAOS_MSGS ?= 1000000
CHAOS_SEED ?= 0
CHAOS_ARGS ?=
chaos:
	$(GO) test -count=1 -timeout 90m -run '^TestChaos$$' -v ./internal/chaos \
		-chaos.msgs=$(CHAOS_MSGS) -chaos.seed=$(CHAOS_SEED) $(CHAOS_ARGS)

## bench: every benchmark once, with allocations.
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## bench-tool: build the load tool, ferry-bench, into ./bin (bin/ferry-bench --help; README "Load testing").
bench-tool:
	$(GO) build -o $(BIN)/ferry-bench ./cmd/ferry-bench

## bench-compare: ferry beside raw gnet, a net server and nats-server in one run, a table of figures and
## ratios (bench/compare/compare.sh; docs/BENCHMARKS.md). DURATION, CONNS, SIZE, ROUNDS, SCENARIOS;
## QUICK=1 (or CI=true) for a short pass.
bench-compare:
	GO=$(GO) sh bench/compare/compare.sh

## lint: staticcheck (installed into ./bin at a pinned version) besides vet and gofmt.
lint: fmt-check vet $(BIN)/staticcheck
	$(BIN)/staticcheck $(PKGS)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## vectors: check docs/vectors against the codec, both ways.
vectors:
	$(GO) test -count=1 -run '^TestVectors$$' -v ./codec | grep -E '^(ok|FAIL|---)' | grep -v -- '--- PASS' || true
	$(GO) test -count=1 -run '^TestVectors$$' ./codec

## vectors-update: regenerate docs/vectors from codec/vectorcases_test.go (review the diff).
vectors-update:
	$(GO) test -count=1 -run '^TestVectors$$' ./codec -update

clean:
	rm -rf $(BIN)
