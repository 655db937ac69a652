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
# oneDNN (cgo, -tags dnnl; Debian's libdnnl-dev) runs the GEMMs of --precision bf16;
# without it bf16 gives the same results through the float32 BLAS, at float32 speed.
DNNL     := $(shell test -f /usr/include/oneapi/dnnl/dnnl.h && ldconfig -p 2>/dev/null | grep -q libdnnl && echo 1)
# libjpeg-turbo (cgo, -tags libjpeg; Debian's libjpeg62-turbo-dev) decodes JPEGs as PIL
# does, bit for bit and 3x faster than Go's image/jpeg, which is used without it.
LIBJPEG  := $(shell test -f /usr/include/jpeglib.h && ldconfig -p 2>/dev/null | grep -q 'libjpeg\.so ' && echo 1)
comma    := ,
TAGLIST  := $(strip $(if $(OPENBLAS),openblas) $(if $(DNNL),dnnl) $(if $(LIBJPEG),libjpeg))
TAGS     := $(if $(TAGLIST),-tags $(subst $() ,$(comma),$(TAGLIST)),)
TAGSAY    = $(if $(OPENBLAS),OpenBLAS,libopenblas not found: gonum's pure-Go BLAS (slower)); $(if $(DNNL),oneDNN for bf16,libdnnl-dev not found: bf16 on the float32 BLAS (no speed-up)); $(if $(LIBJPEG),libjpeg-turbo for JPEGs,libjpeg62-turbo-dev not found: Go's JPEG decoder (slower, not bit-identical to PIL)) ($(or $(TAGS),no tags))

build:
	@echo "build: $(TAGSAY)"
	$(GO) build $(TAGS) -o $(BIN) ./experiments/cmd/gorgoclip

# The whole suite, with the shared fixtures from $$GORGOCLIP_SHARED or ../shared, in the
# default (pure-Go) build; then again with OpenBLAS, oneDNN and libjpeg-turbo when they
# are installed, as make build links the command (its float32 GEMMs then run on oneDNN).
test:
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(if $(TAGLIST),$(GO) test -count=1 -timeout 20m $(TAGS) $(PKGS),)

test-short:
	$(GO) test -short $(PKGS)

# The race detector over the packages with concurrency (loaders, the extraction
# pipeline and its cache, probes, downloads).
race:
	$(GO) test -race -short -count=1 ./graph/ ./loaders/... ./probes/... ./experiments/ ./internal/...

# Go benchmarks (OpenBLAS when installed); scripts/bench.sh compares the towers with PyTorch.
bench:
	@echo "bench: $(TAGSAY)"
	$(GO) test $(TAGS) -run '^$$' -bench . -benchtime 3x $(PKGS)

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
.PHONY: cuda-vet cuda-graph-test gpu-check-bundle cuda-emu gpu-check-emu cuda-emu-selftest

cuda: cuda-graph-test
	$(CUDAENV) $(GO) build -tags $(CUDATAGS) -ldflags "-s -w" -o bin/gorgoclip-cuda ./experiments/cmd/gorgoclip
	$(CUDAENV) $(GO) test -c -tags $(CUDATAGS) -ldflags "-s -w" -o bin/cuda-clip.test ./layers/clip
	$(CUDAENV) $(GO) test -c -tags $(CUDATAGS) -ldflags "-s -w" -o bin/cuda-cli.test ./experiments/cli

# bin/cuda-graph.test alone (graph/cudaemu/selftest.sh builds only this one).
cuda-graph-test:
	$(CUDAENV) $(GO) test -c -tags $(CUDATAGS) -ldflags "-s -w" -o bin/cuda-graph.test ./graph

cuda-vet:
	$(CUDAENV) $(GO) vet -tags $(CUDATAGS) ./...

# The CUDA build run without a GPU: graph/cudaemu is a CUDA driver and cuBLAS on the
# CPU (graph/cuda/*.cu compiled for the host and run as CUDA threads, warps and blocks;
# OpenBLAS for the GEMMs; every copy and operand bounds-checked), and Debian's NVRTC
# 11.8 compiles the kernels for the emulated sm_90. The binaries are the ones the GPU
# check runs. Needs g++, libopenblas-dev and nvidia-cuda-dev (cuda.h, cublas_v2.h,
# libnvrtc.so.11.2). These run the fixture-sized CUDA tests with every check on; the
# ViT-B/32 ones run in gpu-check-emu, without the host-access check, whose cost grows
# with device memory (graph/cudaemu/driver.cc).
EMU       := bin/cudaemu
NVRTC     ?= $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libnvrtc.so.11.2 /usr/lib/*/libnvrtc.so.1[0-9]* /usr/local/cuda/lib64/libnvrtc.so))
EMUENV    := LD_LIBRARY_PATH=$(CURDIR)/$(EMU) GORGOCLIP_CUBLAS=$(CURDIR)/$(EMU)/libcublas.so.13 GORGOCLIP_NVRTC=$(NVRTC) OPENBLAS_NUM_THREADS=1
EMUCXX    := g++ -std=c++17 -O2 -fPIC -Wall -Werror
# The binaries whose driver calls the stubs cover (all link the whole of gorgonia.org/cu).
EMUBINS   ?= bin/cuda-graph.test bin/cuda-clip.test bin/cuda-cli.test bin/gorgoclip-cuda

$(EMU)/driver.o: graph/cudaemu/driver.cc graph/cudaemu/emu.h
	mkdir -p $(EMU)
	$(EMUCXX) -c $< -o $@

# The kernels as the device compiles them: common.cuh, then every op's .cu file.
CUDASRC   := graph/cuda/common.cuh $(sort $(wildcard graph/cuda/*.cu))
$(EMU)/kernels.cu: $(CUDASRC)
	mkdir -p $(EMU)
	cat $(CUDASRC) > $@
	sed -n 's/^extern "C" __global__ void \([a-z_0-9]*\)(.*/KERNEL(\1),/p' $@ > $(EMU)/kernel_table.inc

$(EMU)/simt.o: graph/cudaemu/simt.cc graph/cudaemu/simt.h graph/cudaemu/emu.h $(EMU)/kernels.cu
	$(EMUCXX) -I$(EMU) -c $< -o $@

# Only the stubs depend on the binaries (the driver calls they link), so a rebuilt
# binary costs a relink, not a recompile of the emulator.
$(EMU)/libcuda.so.1: $(EMU)/driver.o $(EMU)/simt.o graph/cudaemu/stubs.sh $(EMUBINS)
	graph/cudaemu/stubs.sh $(EMU)/driver.o $(EMUBINS) > $(EMU)/stubs.c
	gcc -O2 -fPIC -c $(EMU)/stubs.c -o $(EMU)/stubs.o
	g++ -shared -o $@ -Wl,-soname,libcuda.so.1 -Wl,-Bsymbolic -Wl,--no-undefined $(EMU)/driver.o $(EMU)/simt.o $(EMU)/stubs.o

$(EMU)/libcublas.so.13: graph/cudaemu/cublas.cc graph/cudaemu/emu.h $(EMU)/libcuda.so.1
	$(EMUCXX) -shared -o $@ -Wl,-soname,libcublas.so.13 -Wl,--no-undefined graph/cudaemu/cublas.cc -L$(EMU) -l:libcuda.so.1 -lopenblas

cuda-emu: cuda $(EMU)/libcuda.so.1 $(EMU)/libcublas.so.13
	@test -n "$(NVRTC)" || { echo "cuda-emu: no libnvrtc found (install nvidia-cuda-dev or set NVRTC=)"; exit 1; }
	cd graph && $(EMUENV) ../bin/cuda-graph.test -test.run CUDA -test.v -test.count=1
	cd layers/clip && $(EMUENV) ../../bin/cuda-clip.test -test.run 'CUDAParityGolden|CUDAGradients|CUDATextLoss' -test.v -test.count=1
	cd experiments/cli && $(EMUENV) ../../bin/cuda-cli.test -test.run CUDA -test.v -test.count=1

# The emulator's checks shown to fail: graph/cudaemu/selftest.sh plants one bug at a
# time in a copy of the tree (a missing barrier, swapped leading dimensions, a short
# scratch buffer, a host read of device memory, kernel parameters out of order, the
# device held across a run, an off-by-one in im2col's padding) and expects the CUDA
# graph tests to fail on each.
cuda-emu-selftest:
	NVRTC=$(NVRTC) graph/cudaemu/selftest.sh

# The GPU check rehearsed on the emulator: the bundle as it will travel (.gpu/, its
# binaries and its copy of the fixtures), .gpu/gpu-check.sh end to end at batch 8
# (timeouts 4x the GPU's: the emulator is slower and CI's cores are shared), with
# PyTorch on the CPU (TORCH_DEVICE=cpu) where a python3 with torch is found, and
# graph/cudaemu/compute-sanitizer (the emulator's checks) for NVIDIA's. The verdict is
# the CUDA tests', and gorgoclip's and PyTorch fp32's figures for ViT-B/32 and RN50 must
# be there (bf16 autocast on the CPU fails in old PyTorch; it is only recorded).
TORCHPY   ?= $(firstword $(foreach p,python3 /usr/bin/python3,$(shell $(p) -c 'import torch' 2>/dev/null && echo $(p))))
gpu-check-emu: gpu-check-bundle $(EMU)/libcuda.so.1 $(EMU)/libcublas.so.13
	rm -rf $(EMU)/check && mkdir -p $(EMU)/check
	$(EMUENV) CUDAEMU_PROTECT=0 BATCH=8 ITERS=1 TIMEOUT_SCALE=4 PYTHON=$(or $(TORCHPY),python3) TORCH_DEVICE=cpu \
		PATH=$(CURDIR)/graph/cudaemu:$$PATH OUT=$(EMU)/check .gpu/gpu-check.sh
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); b=r["bench"]; \
		assert r["ok"], r["tests"]; \
		assert all(v["clean"] for v in r["sanitizer"].values()), r["sanitizer"]; \
		gs=[b["gorgoclip"], b["gorgoclip_rn50"]]; \
		assert all(g.get("batch") == 8 and g["image_per_s"] > 0 and g["device"].startswith("cuda:0") for g in gs), gs; \
		assert sys.argv[2] == "" or min(r.get(k, 0) for k in ("image_vs_pytorch_fp32", "rn50_image_vs_pytorch_fp32", "image_vs_pytorch_bf16")) > 0, \
			(b["pytorch_fp32"], b["pytorch_rn50_fp32"], b["pytorch_bf16"])' \
		$(EMU)/check/gpu-check.json "$(TORCHPY)"

# On a GPU machine with a Go toolchain: the CUDA tests in place.
test-cuda:
	$(CUDAENV) $(GO) test -count=1 -tags $(CUDATAGS) -run CUDA ./graph ./layers/clip ./experiments/cli

# .gpu/: what the GPU machine needs (no Go there): scripts/gpu-check.sh, the PyTorch
# baselines, bin.tar.xz (the CUDA binaries) and shared.tar.gz (the fixtures the CUDA
# tests read, clip-tiny-rn's and openclip-tiny's with the token-embedding rows no
# golden prompt uses zeroed; scripts/gpu_bundle.py says how they stay small). The
# folder must stay under 60 MiB: a device run carries at most 64 MiB with the tree.
# Run .gpu/gpu-check.sh there.
GPUSTAGE    := bin/gpu-bundle
GPUFIXTURES := clip-tiny-a/openai clip-tiny-a/golden clip-tiny-rn/openai clip-tiny-rn/open_clip clip-tiny-rn/golden \
	openclip-tiny/open_clip openclip-tiny/golden
gpu-check-bundle: cuda
	rm -rf .gpu $(GPUSTAGE)
	mkdir -p .gpu $(GPUSTAGE)/bin $(GPUSTAGE)/shared/clip
	cp bin/gorgoclip-cuda bin/cuda-graph.test bin/cuda-clip.test bin/cuda-cli.test $(GPUSTAGE)/bin/
	for f in $(GPUFIXTURES); do mkdir -p $(GPUSTAGE)/shared/fixtures/$$(dirname $$f) && \
		cp -r $(SHARED)/fixtures/$$f $(GPUSTAGE)/shared/fixtures/$$f || exit 1; done
	cp $(SHARED)/fixtures/README.md $(GPUSTAGE)/shared/fixtures/
	cp $(SHARED)/clip/bpe_simple_vocab_16e6.txt.gz $(GPUSTAGE)/shared/clip/
	chmod -R u+w $(GPUSTAGE)
	python3 scripts/gpu_bundle.py --thin clip-tiny-rn --thin openclip-tiny $(GPUSTAGE) .gpu
	rm -rf $(GPUSTAGE)
	cp scripts/gpu-check.sh scripts/bench_pytorch_gpu.py scripts/bench_pytorch.py scripts/modified_resnet.py .gpu/
	@du -sh .gpu
	@test $$(du -sm .gpu | cut -f1) -lt 60 || { echo "gpu-check-bundle: .gpu/ is over 60 MiB; a device run carries at most 64 MiB with the tree"; exit 1; }
