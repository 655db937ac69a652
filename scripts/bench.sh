#!/bin/sh
# Times gorgoclip's towers and the PyTorch reference back to back on the same cores,
# in each precision (fp32, then bf16: gorgoclip --precision bf16 against PyTorch's
# .to(torch.bfloat16)), and prints the JSON lines and the ratios. Usage:
# scripts/bench.sh [THREADS [BATCH [MODEL]]] (defaults 2, 32 and ViT-B/32; MODEL RN50,
# RN101, RN50x4, ... compares OpenAI's ModifiedResNet); PRECISIONS="bf16" (or "fp32")
# runs one precision only, ITERS (default 5) timed batches per tower on each side.
# TORCH_MODES (default "eager frozen") are the PyTorch references timed after gorgoclip:
# eager mode, as OpenAI's code runs, and frozen TorchScript (bench_pytorch.py --frozen,
# PyTorch's fastest CPU inference path); each ratio is printed. The machine's load is
# printed before and after each set:
# on shared cores, only ratios within one pair mean anything. ROUNDS (default 1) repeats
# each set that many times, back to back, and then prints each ratio's median and range
# over the rounds: the load of shared cores drifts over minutes, and one round can land
# on either side of a target. Needs bin/gorgoclip
# (make build) and a python3 with torch ($PYTHON, else python3, else Debian's
# /usr/bin/python3 with python3-torch).
set -eu
threads=${1:-2}
batch=${2:-32}
model=${3:-ViT-B/32}
precisions=${PRECISIONS:-fp32 bf16}
iters=${ITERS:-5}
rounds=${ROUNDS:-1}
case $rounds in '' | *[!0-9]* | 0) echo "bench.sh: ROUNDS=$rounds: want a whole number of at least 1" >&2; exit 2 ;; esac
ratios=$(mktemp)
trap 'rm -f "$ratios"' EXIT
modes=${TORCH_MODES:-eager frozen}
bin=${GORGOCLIP:-bin/gorgoclip}
py=${PYTHON:-python3}
"$py" -c 'import torch' 2>/dev/null || py=/usr/bin/python3
load() { cat /proc/loadavg 2>/dev/null || uptime; }
for prec in $precisions; do
	: >"$ratios"
	for round in $(seq "$rounds"); do
		echo "== $prec$([ "$rounds" -gt 1 ] && echo ", round $round of $rounds")"
		echo "load before: $(load)"
		go_json=$("$bin" bench --model "$model" --precision "$prec" --batch "$batch" --threads "$threads" --iters "$iters" --json)
		# PyTorch runs the same number of text positions as gorgoclip did (its longest prompt).
		text_len=$(printf '%s' "$go_json" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["text_tokens"])')
		set --
		for mode in $modes; do
			flag=
			[ "$mode" = frozen ] && flag=--frozen
			set -- "$@" "$("$py" "$(dirname "$0")/bench_pytorch.py" --model "$model" --precision "$prec" --batch "$batch" --threads "$threads" --iters "$iters" --text-len "$text_len" $flag 2>/dev/null)"
		done
		echo "load after:  $(load)"
		echo "gorgoclip: $go_json"
		for p in "$@"; do echo "pytorch:   $p"; done
		RATIOS=$ratios "$py" - "$go_json" "$@" <<'PY'
import json, os, sys
g, ps = json.loads(sys.argv[1]), [json.loads(a) for a in sys.argv[2:]]
with open(os.environ["RATIOS"], "a") as f:  # for the summary over rounds
    for p in ps:
        for tower in ("image", "text"):
            f.write("%s %s %s %.4f\n" % (tower, p["mode"], p["precision"], g[tower + "_per_s"] / p[tower + "_per_s"]))
bf16 = g["precision"] == "bf16"
gflop = g["image_gflop_per_s"] / g["image_per_s"]  # per image (8.30 for ViT-B/32)
if g["model"].startswith("RN"):
    target = "1.0x, OpenAI's ModifiedResNet"
else:
    target = "1.3x" if bf16 else "1.5x"
for p in ps:
    print("image: %s %s %.2f vs %.2f img/s = %.2fx PyTorch %s %s (target %s)" % (
        g["model"], g["precision"], g["image_per_s"], p["image_per_s"], g["image_per_s"] / p["image_per_s"], p["precision"], p["mode"], target))
for key, name in (("sgemm_gflop_per_s", "SGEMM"), ("bf16_gemm_gflop_per_s", "bf16 GEMM")):
    if g.get(key):
        ceiling = g[key] / gflop  # images/s if the tower ran at that GEMM rate
        print("       %s alone (this run, block shapes): %.1f GFLOP/s = a ceiling of %.1f img/s; the tower reaches %.0f%% of it"
              % (name, g[key], ceiling, 100 * g["image_per_s"] / ceiling))
if g.get("bf16_gemm_gflop_per_s") and g.get("sgemm_gflop_per_s"):
    print("       bf16 GEMM / SGEMM on the block shapes: %.2fx (%s)" % (g["bf16_gemm_gflop_per_s"] / g["sgemm_gflop_per_s"], g.get("bf16_gemm", "")))
for p in ps:
    print("text:  %.1f vs %.1f prompts/s = %.2fx PyTorch %s %s (target 1.5x), %d tokens (%s)"
          % (g["text_per_s"], p["text_per_s"], g["text_per_s"] / p["text_per_s"], p["precision"], p["mode"], g["text_tokens"], g["text_source"]))
for p in ps:
    if g.get("image_cpu_ms") and p.get("image_cpu_ms"):
        # CPU time per item hardly moves when other jobs share the cores; PyTorch's OpenMP
        # threads spin while they wait, which counts against it (with THREADS=1 they do not).
        print("CPU per item vs %s: image %.1f vs %.1f ms = %.2fx, text %.2f vs %.2f ms = %.2fx (PyTorch's / gorgoclip's)"
              % (p["mode"], g["image_cpu_ms"], p["image_cpu_ms"], p["image_cpu_ms"] / g["image_cpu_ms"],
                 g["text_cpu_ms"], p["text_cpu_ms"], p["text_cpu_ms"] / g["text_cpu_ms"]))
print("float32 GEMMs: %s" % g.get("fp32_gemm", "?"))
print("peak RSS: %.0f MB, %.0f MB while encoding (target <= %d)" % (g["peak_rss_mb"], g.get("run_peak_rss_mb", 0), 450 if bf16 else 1500))
PY
	done
	if [ "$rounds" -gt 1 ]; then "$py" - "$ratios" "$rounds" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tower, mode, prec, ratio = line.split()
    runs[(tower, mode, prec)].append(float(ratio))
for (tower, mode, prec), rs in runs.items():
    print("%s over %s rounds: median %.2fx PyTorch %s %s (%.2fx to %.2fx)" % (tower, sys.argv[2], statistics.median(rs), prec, mode, min(rs), max(rs)))
PY
	fi
done
