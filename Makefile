# The two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
PKGS    := ./...
# A count, not a duration: Go 1.26's fuzzer can fail a target with a bare
# "context deadline exceeded" when a duration ends on a busy machine.
FUZZTIME ?= 50000x

.PHONY: run test unit fuzz bench load lint build infra infra-down cluster cluster-down cluster-status demo

## run: every service in one process, with an embedded broker
run:
	$(GO) run ./cmd/bookshelf up

## build: the binary, in bin/
build:
	$(GO) build -o bin/bookshelf ./cmd/bookshelf

## test: vet, the race-enabled test suite, and a short run of every fuzz target
test: lint unit fuzz

unit:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## fuzz: each fuzz target for $(FUZZTIME) inputs (or a duration: FUZZTIME=1m)
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: hot paths beside bare baselines, with the ratios
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

## load: the load scenarios against a bookshelf of its own (LOAD_ARGS: --target, --books, --rate, ...)
load:
	$(GO) build -o bin/bookshelf ./cmd/bookshelf
	bin/bookshelf load $(LOAD_ARGS)

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## infra: a real Kafka broker and a real Consul agent on this machine
infra:
	bash infra/up.sh

infra-down:
	bash infra/down.sh

## cluster: the whole system as separate processes on `make infra`
cluster:
	bash infra/cluster.sh up

cluster-down:
	bash infra/cluster.sh down

cluster-status:
	bash infra/cluster.sh status

## demo: kill -9 an aggregate instance under load on the cluster, and count
demo:
	bash infra/demo.sh
