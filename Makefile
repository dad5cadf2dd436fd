# odoh — make targets a newcomer can guess. `make check` is what CI runs.
GO        ?= go
BIN       ?= bin
FUZZTIME  ?= 10m
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)

.PHONY: all build test lint fuzz fuzz-short bench bench-go bench-smoke demo check clean

all: build

## build: the three binaries into ./bin
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## test: every test, with the race detector; the interop fault scenarios
## (TestFault*) run last and print their results
test:
	$(GO) test -race -count=1 -timeout 20m -skip '^TestFault' ./...
	@log=$$(mktemp); $(GO) test -race -count=1 -timeout 10m -v -run '^TestFault' ./interop/ >$$log 2>&1; rc=$$?; \
	grep -E '^ +faults_test.go:[0-9]+: fault |^--- (PASS|FAIL)|^(ok|FAIL)[[:space:]]' $$log | sed -E 's/^ +faults_test.go:[0-9]+: /    /'; \
	[ $$rc -eq 0 ] || cat $$log; rm -f $$log; exit $$rc

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## fuzz: every fuzz target for FUZZTIME each (default 10m; about 4 hours in all)
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

## fuzz-short: every fuzz target briefly, as CI does
fuzz-short:
	FUZZTIME=5s ./scripts/fuzz.sh

## bench: the protocol core against bare circl, then the load benchmarks (h2load, dnsperf),
##        each hop against its floor (bench/floor); BASE=rev also measures rev's binaries
##        in the same rounds, PROFILE=dir writes the daemons' CPU profiles
bench:
	./bench/run.sh

## bench-go: every go test benchmark of the hot paths, with allocations
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./odoh/ ./target/ ./proxy/ ./client/

## bench-smoke: every load benchmark script, tiny and fast, so that they keep working (CI)
bench-smoke:
	PROCS=2 REQS=200 ROUNDS=1 ./bench/target.sh
	PROCS=2 REQS=200 ROUNDS=1 ./bench/proxy.sh
	DURATION=1 WARMUP=1 ROUNDS=1 NAMES=50 ./bench/client.sh

## demo: the whole system on this machine: target, proxy, stub, and a lookup
demo: build
	./scripts/demo.sh

## check: everything CI runs
check: lint bench-smoke test fuzz-short

clean:
	rm -rf $(BIN)
