#!/usr/bin/env bash
# gpu-check.sh: the CUDA checks of gorgoclip on a GPU machine that has no Go toolchain.
#
# Build the bundle where Go is (make gpu-check-bundle writes .gpu/: this script, the
# PyTorch baselines, bin.tar.xz with the CUDA binaries and shared.tar.gz with a copy of
# the fixtures), carry .gpu/ to the GPU machine and run .gpu/gpu-check.sh there. Steps,
# each under its own timeout (at most 510 s in all):
#   1. bin/cuda-graph.test -test.run CUDA: every fused op and every backward op on the
#      GPU against the CPU, the copy counter (inputs in, outputs out, weights once), and a built-in gorgonia
#      op refused.
#   2. bin/cuda-clip.test -test.run CUDA: the fixture models (clip-tiny-a, the ResNet
#      clip-tiny-rn in both layouts, openclip-tiny) against their goldens, and ViT-B/32
#      and RN50 (random weights) against the CPU path, within 1e-3; per-batch copies;
#      gradients and attention maps against PyTorch autograd's goldens.
#   3. bin/cuda-cli.test -test.run CUDA: embed and compare with --device cuda against
#      the goldens and the CPU's results.
#   4. compute-sanitizer memcheck and racecheck over the graph tests, when installed.
#   5. gorgoclip-cuda bench --device cuda --batch 256 --json, for ViT-B/32 and RN50, and
#      ViT-B/32 with --precision bf16 and fp16 (cuBLAS GemmEx on tensor cores).
#   6. bench_pytorch_gpu.py --batch 256, for the same two models: PyTorch fp32 eager on
#      the same GPU, and ViT-B/32 under autocast in bf16 and fp16, which gorgoclip's bf16
#      and fp16 runs are judged against; RN50 is OpenAI's ModifiedResNet
#      (modified_resnet.py).
# It writes one JSON object to $OUT/gpu-check.json when $OUT is set, else ./gpu-check.json,
# with the logs beside it, and exits non-zero when a test failed or did not run.
#
# Environment: GORGOCLIP_SHARED and BIN (default: shared.tar.gz and bin.tar.xz beside
# this script, unpacked into a temporary folder, else shared/ and bin/ beside it),
# PYTHON (default python3), BATCH and ITERS (default 256 and 5: the benchmark; make
# gpu-check-emu runs this script on the CPU emulator with 8 and 1), TORCH_DEVICE
# (default cuda; cpu lets the emulated run check the PyTorch steps too), TIMEOUT_SCALE
# (default 1: every step's timeout is multiplied by it, for the emulator's slower
# runs). cuBLAS and NVRTC are found through
# LD_LIBRARY_PATH, to which this script adds PyTorch's nvidia/*/lib folders and
# /usr/local/cuda/lib64; GORGOCLIP_CUBLAS / GORGOCLIP_NVRTC name the files outright.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-.}
mkdir -p "$out"
out=$(cd "$out" && pwd)
PYTHON=${PYTHON:-python3}
BATCH=${BATCH:-256}
ITERS=${ITERS:-5}
TORCH_DEVICE=${TORCH_DEVICE:-cuda}
TIMEOUT_SCALE=${TIMEOUT_SCALE:-1}
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Binaries and fixtures: the archives of scripts/gpu_bundle.py, unpacked with tar, or
# with Python where tar cannot read xz; else plain folders beside this script.
shared=$here/shared bin=$here/bin
for a in bin.tar.xz shared.tar.gz; do
  [ -f "$here/$a" ] || continue
  mkdir -p "$work/bundle"
  tar -xaf "$here/$a" -C "$work/bundle" 2>/dev/null ||
    "$PYTHON" -c 'import sys, tarfile
t = tarfile.open(sys.argv[1])
t.extractall(sys.argv[2], **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' "$here/$a" "$work/bundle" ||
    echo "gpu-check: cannot unpack $here/$a" >&2
done
[ -d "$work/bundle/bin" ] && bin=$work/bundle/bin
[ -d "$work/bundle/shared" ] && shared=$work/bundle/shared
export GORGOCLIP_SHARED=${GORGOCLIP_SHARED:-$shared}
bin=${BIN:-$bin}
for f in gorgoclip-cuda cuda-graph.test cuda-clip.test cuda-cli.test; do
  if [ -x "$bin/$f" ]; then cp "$bin/$f" "$work/$f"
  else echo "gpu-check: $bin/$f missing: run make gpu-check-bundle" >&2; fi
done

# The folders of PyTorch's pip CUDA libraries (nvidia/cu13/lib, or nvidia/cublas/lib and
# nvidia/cuda_nvrtc/lib for CUDA 12): found from the nvidia namespace package and from
# torch's site-packages, without importing torch (seconds, and it may fail to start).
libdirs=$(timeout 60 "$PYTHON" - <<'PY' 2>/dev/null
import glob, importlib.util, os
roots = []
try:
    spec = importlib.util.find_spec("nvidia")
    roots += list(spec.submodule_search_locations or []) if spec else []
except Exception:
    pass
try:
    spec = importlib.util.find_spec("torch")
    if spec and spec.origin:
        roots.append(os.path.join(os.path.dirname(os.path.dirname(spec.origin)), "nvidia"))
except Exception:
    pass
dirs = []
for root in roots:
    for f in sorted(glob.glob(os.path.join(root, "**", "lib*.so*"), recursive=True)):
        d = os.path.dirname(f)
        if ("cublas" in os.path.basename(f) or "nvrtc" in os.path.basename(f)) and d not in dirs:
            dirs.append(d)
print(":".join(dirs))
PY
)
echo "gpu-check: library folders: ${libdirs:-none found}" >&2
export LD_LIBRARY_PATH="${libdirs:+$libdirs:}/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
nvidia-smi -L > "$out/gpu-check-smi.log" 2>&1 || true

# s SECONDS: a step's time limit, times TIMEOUT_SCALE.
s() { echo $(( $1 * TIMEOUT_SCALE )); }

# run NAME SECONDS CMD...: runs CMD under a timeout, logging to $out/gpu-check-NAME.log.
run() {
  local name=$1 secs=$2; shift 2
  local t0=$(date +%s)
  timeout -k 5 "$secs" "$@" > "$out/gpu-check-$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $(( $(date +%s) - t0 ))s" >&2
  echo "$rc" > "$work/$name.rc"
}

run graph-tests "$(s 30)" "$work/cuda-graph.test" -test.run CUDA -test.v -test.count=1 -test.timeout "$(s 25)s"
run clip-tests "$(s 90)" "$work/cuda-clip.test" -test.run CUDA -test.v -test.count=1 -test.timeout "$(s 85)s"
run cli-tests "$(s 25)" "$work/cuda-cli.test" -test.run CUDA -test.v -test.count=1 -test.timeout "$(s 20)s"
# NVIDIA's compute-sanitizer, where the machine has it, over every kernel on small
# inputs: out-of-bounds and misaligned accesses (memcheck), shared-memory hazards such
# as a missing __syncthreads (racecheck).
san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
if [ -n "$san" ]; then
  kernels='CUDAOps|CUDAPatchEmbed|CUDAConv2d|CUDAAvgPool|CUDAPoolTokens|CUDAQueryAttention|CUDAChannelsFirst|CUDAGradients|CUDAAttentionProbs'
  run memcheck "$(s 45)" "$san" --tool memcheck --error-exitcode 3 "$work/cuda-graph.test" -test.run "$kernels" -test.count=1
  run racecheck "$(s 20)" "$san" --tool racecheck --error-exitcode 3 "$work/cuda-graph.test" -test.run 'CUDAOps|CUDAQueryAttention|CUDAGradients' -test.count=1
fi
run bench "$(s 45)" "$work/gorgoclip-cuda" bench --device cuda --model ViT-B/32 --batch "$BATCH" --iters "$ITERS" --json
run pytorch-fp32 "$(s 45)" "$PYTHON" "$here/bench_pytorch_gpu.py" --batch "$BATCH" --iters "$ITERS" --device "$TORCH_DEVICE"
run pytorch-bf16 "$(s 20)" "$PYTHON" "$here/bench_pytorch_gpu.py" --batch "$BATCH" --iters "$ITERS" --device "$TORCH_DEVICE" --amp bf16
for p in bf16 fp16; do
  run "bench-$p" "$(s 35)" "$work/gorgoclip-cuda" bench --device cuda --precision "$p" --model ViT-B/32 --batch "$BATCH" --iters "$ITERS" --json
done
run pytorch-fp16 "$(s 20)" "$PYTHON" "$here/bench_pytorch_gpu.py" --batch "$BATCH" --iters "$ITERS" --device "$TORCH_DEVICE" --amp fp16
run bench-rn50 "$(s 40)" "$work/gorgoclip-cuda" bench --device cuda --model RN50 --batch "$BATCH" --iters "$ITERS" --json
run pytorch-rn50-fp32 "$(s 40)" "$PYTHON" "$here/bench_pytorch_gpu.py" --model RN50 --batch "$BATCH" --iters "$ITERS" --device "$TORCH_DEVICE"
run pytorch-rn50-bf16 "$(s 20)" "$PYTHON" "$here/bench_pytorch_gpu.py" --model RN50 --batch "$BATCH" --iters "$ITERS" --device "$TORCH_DEVICE" --amp bf16

OUTDIR=$out WORK=$work ELAPSED=$(( $(date +%s) - start )) LIBDIRS="$LD_LIBRARY_PATH" "$PYTHON" - <<'PY'
import json, os, re
out, work = os.environ["OUTDIR"], os.environ["WORK"]

def log(name):
    try:
        return open(os.path.join(out, f"gpu-check-{name}.log"), errors="replace").read()
    except OSError:
        return ""

def rc(name):
    try:
        return int(open(os.path.join(work, f"{name}.rc")).read())
    except (OSError, ValueError):
        return None

def tests(name):
    text = log(name)
    res = {"exit": rc(name)}
    for state in ("PASS", "FAIL", "SKIP"):
        res[state.lower()] = re.findall(r"^\s*--- %s: (\S+)" % state, text, re.M)
    res["ok"] = res["exit"] == 0 and not res["fail"] and bool(res["pass"]) and not res["skip"]
    res["log_tail"] = text[-4000:]
    return res

def sanitizer(tool):
    if rc(tool) is None:
        return "not run: no compute-sanitizer"
    text = log(tool)
    m = re.search(r"ERROR SUMMARY: (\d+) error", text)
    return {"exit": rc(tool), "errors": int(m.group(1)) if m else None,
            "clean": rc(tool) == 0 and m is not None and m.group(1) == "0", "log_tail": text[-3000:]}

def last_json(name):
    for line in reversed(log(name).splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return {"exit": rc(name), "log_tail": log(name)[-2000:]}

r = {
    "gpu": log("smi").strip(),
    "ld_library_path": os.environ.get("LIBDIRS", ""),
    "tests": {"graph": tests("graph-tests"), "clip": tests("clip-tests"), "cli": tests("cli-tests")},
    "bench": {"gorgoclip": last_json("bench"), "pytorch_fp32": last_json("pytorch-fp32"),
              "pytorch_bf16": last_json("pytorch-bf16"), "gorgoclip_rn50": last_json("bench-rn50"),
              "gorgoclip_bf16": last_json("bench-bf16"), "gorgoclip_fp16": last_json("bench-fp16"),
              "pytorch_fp16": last_json("pytorch-fp16"),
              "pytorch_rn50_fp32": last_json("pytorch-rn50-fp32"), "pytorch_rn50_bf16": last_json("pytorch-rn50-bf16")},
    "sanitizer": {tool: sanitizer(tool) for tool in ("memcheck", "racecheck")},
    "elapsed_s": int(os.environ.get("ELAPSED", "0")),
}
# Issues #7 and #14's targets: image and text throughput at least PyTorch fp32 eager's,
# for ViT-B/32 and RN50. On the CPU emulator (make gpu-check-emu) the speeds say nothing
# about a GPU.
b = r["bench"]
emulated = any("cudaemu" in b[k].get("device", "") for k in ("gorgoclip", "gorgoclip_rn50"))
targets = {}
for prefix, (gk, pk) in {"": ("gorgoclip", "pytorch_fp32"), "rn50_": ("gorgoclip_rn50", "pytorch_rn50_fp32")}.items():
    gb, pb = b[gk], b[pk]
    for tower in ("image", "text"):
        if f"{tower}_per_s" in gb and f"{tower}_per_s" in pb:
            ratio = r[f"{prefix}{tower}_vs_pytorch_fp32"] = gb[f"{tower}_per_s"] / pb[f"{tower}_per_s"]
            targets[prefix + tower] = ratio >= 1.0
if targets:
    r["meets_target"] = "not judged: gorgoclip ran on the CPU emulator" if emulated else targets
# ViT-B/32 in 16 bits against PyTorch's autocast in the same format (DESIGN.md: >= autocast).
targets16 = {}
for p in ("bf16", "fp16"):
    gb, pb = b["gorgoclip_" + p], b["pytorch_" + p]
    for tower in ("image", "text"):
        if f"{tower}_per_s" in gb and f"{tower}_per_s" in pb:
            ratio = r[f"{tower}_vs_pytorch_{p}"] = gb[f"{tower}_per_s"] / pb[f"{tower}_per_s"]
            targets16[f"{p}_{tower}"] = ratio >= 1.0
if targets16:
    r["meets_target_16bit"] = "not judged: gorgoclip ran on the CPU emulator" if emulated else targets16
r["ok"] = all(t["ok"] for t in r["tests"].values())
path = os.path.join(out, "gpu-check.json")
with open(path, "w") as f:
    json.dump(r, f, indent=1)
summary = {k: r.get(k) for k in ("ok", "meets_target", "image_vs_pytorch_fp32", "text_vs_pytorch_fp32",
                                  "rn50_image_vs_pytorch_fp32", "rn50_text_vs_pytorch_fp32", "meets_target_16bit",
                                  "image_vs_pytorch_bf16", "text_vs_pytorch_bf16", "image_vs_pytorch_fp16",
                                  "text_vs_pytorch_fp16", "elapsed_s")}
summary["sanitizer_clean"] = {k: v["clean"] if isinstance(v, dict) else v for k, v in r["sanitizer"].items()}
for k in ("gorgoclip", "pytorch_fp32", "gorgoclip_rn50", "pytorch_rn50_fp32"):
    summary[k + "_image_per_s"] = b[k].get("image_per_s")
print(path, json.dumps(summary))
raise SystemExit(0 if r["ok"] else 1)
PY
