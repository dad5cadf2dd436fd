# odoh — make targets a newcomer can guess. `make check` is what CI runs.
GO        ?= go
BIN       ?= bin
FUZZTIME  ?= 10m
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# Nested modules, kept apart so that the odoh module does not depend on
# what only their tests and builds need: deploy/kubernetes (the manifests'
# tests, on k8s.io/api and kustomize) is vetted and tested with the rest;
# deploy/compose/coredns-build (a ten-line main that builds CoreDNS for
# the compose test) is only gofmt-checked, since vetting it would compile
# CoreDNS's dependencies for nothing.
SUBMODULES := deploy/kubernetes

# make image: the container images, built from the Dockerfile with
# binaries compiled here (no registry needed). CONTAINER=docker
# IMAGE_BUILD_FLAGS= builds with Docker; --format docker keeps the
# HEALTHCHECK, which podman's default OCI format drops.
CONTAINER         ?= podman
IMAGE_PREFIX      ?= localhost/
IMAGE_TAG         ?= latest
IMAGE_BUILD_FLAGS ?= --format docker
IMAGE_ROOTFS      ?= $(BIN)/image/rootfs
CA_BUNDLE         ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: all build test lint fuzz fuzz-short bench bench-go bench-smoke soak soak-short ceiling ceiling-short demo check clean \
	image coredns-image compose-secrets docs

all: build

## build: the three binaries into ./bin
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## test: every test, with the race detector (the nested module's too); the
## interop fault scenarios (TestFault*) run last and print their results
test:
	$(GO) test -race -count=1 -timeout 20m -skip '^TestFault' ./...
	cd deploy/kubernetes && $(GO) test -race -count=1 ./...
	@log=$$(mktemp); $(GO) test -race -count=1 -timeout 10m -v -run '^TestFault' ./interop/ >$$log 2>&1; rc=$$?; \
	grep -E '^ +faults_test.go:[0-9]+: fault |^--- (PASS|FAIL)|^(ok|FAIL)[[:space:]]' $$log | sed -E 's/^ +faults_test.go:[0-9]+: /    /'; \
	[ $$rc -eq 0 ] || cat $$log; rm -f $$log; exit $$rc

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	for m in $(SUBMODULES); do (cd $$m && $(GO) vet ./... && $(STATICCHECK) ./...) || exit 1; done

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
	PROCS=2 REQS=200 ROUNDS=1 ./bench/ohttp.sh
	DURATION=1 WARMUP=1 ROUNDS=1 NAMES=50 ./bench/client.sh

## soak: the whole chain at 70% of its measured capacity for SOAK_MINUTES
## (default 5) while its parts are broken and repaired (bench/soak.sh)
SOAK_MINUTES ?= 5
soak:
	SOAK_MINUTES=$(SOAK_MINUTES) ./bench/soak.sh

## soak-short: the soak for one minute, as CI runs it
soak-short:
	SOAK_MINUTES=1 CAP_SECONDS=3 ./bench/soak.sh

## ceiling: both daemons with their default caps, every cap filled at once (connections,
##          slowloris, stalled and trickled bodies, rapid reset): peak RSS against 1 GiB, a
##          well-behaved client's answers, recovery after (bench/ceiling.sh)
ceiling:
	./bench/ceiling.sh

## ceiling-short: the same flood against caps sized down, as CI runs it
ceiling-short:
	MAX_CONNS=256 PER_CLIENT=64 MAX_REQUESTS=128 ./bench/ceiling.sh

## demo: the whole system on this machine: target, proxy, stub, and a lookup (builds first)
demo:
	BIN='$(BIN)' LDFLAGS='$(LDFLAGS)' ./scripts/demo.sh

## image: the images odoh-target, odoh-proxy and odoh (IMAGE_PREFIX, IMAGE_TAG) with podman
image:
	@[ -r $(CA_BUNDLE) ] || { echo "no CA bundle at $(CA_BUNDLE): apt-get install ca-certificates, or set CA_BUNDLE"; exit 1; }
	rm -rf $(IMAGE_ROOTFS)
	mkdir -p $(IMAGE_ROOTFS)/usr/local/bin $(IMAGE_ROOTFS)/etc/ssl/certs
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(IMAGE_ROOTFS)/usr/local/bin/ ./cmd/...
	cp $(CA_BUNDLE) $(IMAGE_ROOTFS)/etc/ssl/certs/ca-certificates.crt
	for t in odoh-target odoh-proxy odoh; do \
		$(CONTAINER) build $(IMAGE_BUILD_FLAGS) --build-arg BINARIES=context \
			--build-arg ROOTFS=$(IMAGE_ROOTFS) --build-arg VERSION=$(VERSION) \
			--target $$t -t $(IMAGE_PREFIX)$$t:$(IMAGE_TAG) . || exit 1; \
	done

## coredns-image: CoreDNS built from source as a scratch image, for docker-compose.yml where it cannot be pulled
coredns-image:
	./scripts/coredns-image.sh

## compose-secrets: the CA, certificates and seed that docker-compose.yml mounts (deploy/compose/secrets)
compose-secrets:
	./scripts/compose-secrets.sh

## docs: regenerate from the flag definitions the README's flag reference, the
## manual pages and shell completions (docs/), and the CLI's golden outputs
docs:
	ODOH_UPDATE_README=1 $(GO) test ./cmd/... -run TestREADMEReference -count=1
	ODOH_UPDATE_DOCS=1 $(GO) test ./cmd/... -run 'TestGenerated' -count=1
	ODOH_UPDATE_DOCS=1 $(GO) test ./interop/ -run TestCLIGolden -count=1

## check: everything CI runs
check: lint bench-smoke soak-short ceiling-short test fuzz-short

clean:
	rm -rf $(BIN)
