# gorgoclip: thin targets over the go tool. See README.md.
GO       ?= go
BIN      := bin/gorgoclip
PKGS     := ./...
# Where the main job keeps downloads and results.
DATA     ?= data
MODELS   ?= models
RESULTS  ?= results

.PHONY: all build test test-short race bench lint experiment notebooks cuda test-cuda clean

all: build

build:
	$(GO) build -o $(BIN) ./experiments/cmd/gorgoclip

# The whole suite, with the shared fixtures from $$GORGOCLIP_SHARED or ../shared.
test:
	$(GO) test -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -short $(PKGS)

# The race detector over the packages with concurrency (preprocessing, cache, probes, downloads).
race:
	$(GO) test -race -short -count=1 ./loaders/... ./probes/... ./experiments/results/ ./internal/...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# The main job: fetch ViT-B/32 and Imagenette-160, zero-shot + k-shot probes, results/ and plots.
experiment: build
	GORGOCLIP=$(BIN) RESULTS=$(RESULTS)/imagenette DATA=$(DATA) scripts/experiment.sh

clean:
	rm -rf bin
