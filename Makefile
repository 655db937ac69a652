# gorgoclip: thin targets over the go tool. See README.md.
GO       ?= go
BIN      := bin/gorgoclip
PKGS     := ./...
# Where the main job keeps downloads and results.
DATA     ?= data
MODELS   ?= models
RESULTS  ?= results

.PHONY: all build test test-short race bench lint experiment notebooks cuda test-cuda clean fuzz

all: build

# OpenBLAS (cgo, -tags openblas) is the fast CPU path; without libopenblas the build
# falls back to gonum's pure-Go BLAS (about 5x slower GEMMs) and says so.
OPENBLAS := $(shell ldconfig -p 2>/dev/null | grep -q libopenblas && echo 1)
BLASTAGS := $(if $(OPENBLAS),-tags openblas,)

build:
	@$(if $(OPENBLAS),echo "build: OpenBLAS (-tags openblas)",echo "build: libopenblas not found, using gonum's pure-Go BLAS (slower)")
	$(GO) build $(BLASTAGS) -o $(BIN) ./experiments/cmd/gorgoclip

# The whole suite, with the shared fixtures from $$GORGOCLIP_SHARED or ../shared, in the
# default (pure-Go) build; then the graph and layers packages again with OpenBLAS
# when it is installed (a few seconds).
test:
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(if $(OPENBLAS),$(GO) test -count=1 -tags openblas ./graph ./layers/...,)

test-short:
	$(GO) test -short $(PKGS)

# The race detector over the packages with concurrency (loaders, the extraction
# pipeline and its cache, probes, downloads).
race:
	$(GO) test -race -short -count=1 ./graph/ ./loaders/... ./probes/... ./experiments/ ./experiments/results/ ./internal/...

# Go benchmarks (OpenBLAS when installed); scripts/bench.sh compares the towers with PyTorch.
bench:
	@$(if $(OPENBLAS),echo "bench: OpenBLAS (-tags openblas)",echo "bench: libopenblas not found, using gonum's pure-Go BLAS (slower)")
	$(GO) test $(BLASTAGS) -run '^$$' -bench . -benchtime 3x $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# The main job: fetch ViT-B/32 and Imagenette-160, zero-shot + k-shot probes, results/ and plots.
experiment: build
	GORGOCLIP=$(BIN) RESULTS=$(RESULTS)/imagenette DATA=$(DATA) scripts/experiment.sh

clean:
	rm -rf bin

# Run every notebook on the shared fixtures (tiny model, Fashion-MNIST subsets) and
# rewrite its rendered page, notebooks/NN-name/README.md, with its figures.
notebooks:
	@for nb in notebooks/[0-9]*/; do nb=$${nb%/}; echo "== $$nb"; $(GO) run ./$$nb || exit 1; done

# Every go test -fuzz target for FUZZTIME each, one at a time (go test fuzzes one
# target of one package per run). A crasher is written to the package's
# testdata/fuzz/FuzzXxx/, which plain go test then replays: commit it with the fix.
FUZZTIME ?= 20s
FUZZ_TARGETS := \
	./loaders/images:FuzzDecodePreprocess ./loaders/idx:FuzzIdx \
	./loaders/weights:FuzzSafetensors ./loaders/weights:FuzzTorchBin ./loaders/weights:FuzzTorchPickle \
	./loaders/download:FuzzExtract ./loaders/tokenizer:FuzzEncode \
	./loaders/npy:FuzzReadFloat32 ./loaders/npy:FuzzReadInt64 \
	./loaders/datasets:FuzzCIFAR ./loaders/datasets:FuzzWDS ./loaders/datasets:FuzzParquet \
	./loaders/prompts:FuzzParseOpenAI

fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "== $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg || exit 1; \
	done

# ---- CUDA -------------------------------------------------------------------------
# The GPU build: build tag gorgoclip_cuda (not "cuda", which switches gorgonia v0.9.18 to
# its own CUDA engine, importing gorgonia.org/cu/dnn and so needing cuDNN). It compiles
# gorgonia.org/cu against the CUDA headers (Debian: nvidia-cuda-dev, sections contrib
# non-free) and links only libcuda.so.1; cuBLAS and NVRTC are loaded at run time, any of
# CUDA 11 to 13 (graph/cudalib_cuda.go says why), and the kernels are compiled by NVRTC
# for the GPU in use, so no nvcc and no GPU are needed here. bin/gorgoclip-cuda
# (bench/embed/zeroshot/compare --device cuda) and the test binaries bin/cuda-*.test
# run on the GPU machine (see scripts/gpu-check.sh and make gpu-check-bundle).
CUDATAGS  := gorgoclip_cuda
CUDAENV   := CGO_CFLAGS="-O2 -Wno-deprecated-declarations -Wno-implicit-function-declaration"
SHARED    ?= $(or $(GORGOCLIP_SHARED),../shared)
.PHONY: cuda-vet gpu-check-bundle

cuda:
	$(CUDAENV) $(GO) build -tags $(CUDATAGS) -ldflags "-s -w" -o bin/gorgoclip-cuda ./experiments/cmd/gorgoclip
	$(CUDAENV) $(GO) test -c -tags $(CUDATAGS) -ldflags "-s -w" -o bin/cuda-graph.test ./graph
	$(CUDAENV) $(GO) test -c -tags $(CUDATAGS) -ldflags "-s -w" -o bin/cuda-clip.test ./layers/clip

cuda-vet:
	$(CUDAENV) $(GO) vet -tags $(CUDATAGS) ./...

# On a GPU machine with a Go toolchain: the CUDA tests in place.
test-cuda:
	$(CUDAENV) $(GO) test -count=1 -tags $(CUDATAGS) -run CUDA ./graph ./layers/clip

# .gpu/: what the GPU machine needs (no Go there): the CUDA binaries (gzipped: the
# whole folder stays under 64 MiB), scripts/gpu-check.sh, the PyTorch baseline and the
# fixtures the CUDA tests read. Run .gpu/gpu-check.sh there.
gpu-check-bundle: cuda
	rm -rf .gpu
	mkdir -p .gpu/bin .gpu/shared/fixtures/clip-tiny-a .gpu/shared/clip
	for f in gorgoclip-cuda cuda-graph.test cuda-clip.test; do gzip -9c bin/$$f > .gpu/bin/$$f.gz; done
	cp scripts/gpu-check.sh scripts/bench_pytorch_gpu.py scripts/bench_pytorch.py .gpu/
	cp -r $(SHARED)/fixtures/clip-tiny-a/openai $(SHARED)/fixtures/clip-tiny-a/golden .gpu/shared/fixtures/clip-tiny-a/
	cp $(SHARED)/fixtures/README.md .gpu/shared/fixtures/
	cp $(SHARED)/clip/bpe_simple_vocab_16e6.txt.gz .gpu/shared/clip/
	@du -sh .gpu
