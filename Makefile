# The two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
PKGS    := ./...
# A count, not a duration: Go 1.26's fuzzer can fail a target with a bare
# "context deadline exceeded" when a duration ends on a busy machine.
FUZZTIME ?= 50000x

.PHONY: run test unit fuzz bench load lint build infra infra-down cluster cluster-down cluster-status demo chaos image images up down

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

## chaos: fault cycles on the compose stack under load, then the checks (CYCLES=100, SEED=, CHAOS_ARGS=); make up first
## (CLUSTER=1: on the processes of make cluster instead, with its CLUSTER_PORT_OFFSET)
CYCLES ?= 100
chaos:
	$(GO) build -o bin/bookshelf ./cmd/bookshelf
	bin/bookshelf chaos --cycles $(CYCLES) $(if $(SEED),--seed $(SEED)) $(if $(CLUSTER),--cluster) $(CHAOS_ARGS)

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

## cluster: the whole system as separate processes on `make infra` (CLUSTER_PORT_OFFSET=20000: gateway on 28080)
cluster:
	bash infra/cluster.sh up

cluster-down:
	bash infra/cluster.sh down

cluster-status:
	bash infra/cluster.sh status

## demo: kill -9 an aggregate instance under load on the cluster, and count
demo:
	bash infra/demo.sh

# ------------------------------------------------------------ containers --

DOCKER   ?= docker
COMPOSE  ?= docker-compose
IMAGE    ?= bookshelf
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE   ?= https://github.com/bookshelf/bookshelf

## image: the service image, bookshelf:<version> and bookshelf:dev, from a static binary built here
image:
	@mkdir -p bin/image/tmp
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/image/bookshelf ./cmd/bookshelf
	cp /etc/ssl/certs/ca-certificates.crt bin/image/ca-certificates.crt
	DOCKER_BUILDKIT=0 $(DOCKER) build -q --network host --target prebuilt \
	  --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) --build-arg SOURCE=$(SOURCE) \
	  -t $(IMAGE):$(VERSION) -t $(IMAGE):dev .
	@$(DOCKER) image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' $(IMAGE):$(VERSION)

## images: Kafka, Consul (and the Debian and JRE images under them), built here, cached
images:
	bash infra/images.sh

## up: the compose stack (three Kafka brokers, Consul, every service); API on :8080, Consul UI on :8500
up: image images
	$(COMPOSE) up -d
	@bash infra/compose-wait.sh

## down: stop the compose stack (each service deregisters); CLEAN=1 also removes its volumes
down:
	$(COMPOSE) down --remove-orphans $(if $(CLEAN),--volumes)
