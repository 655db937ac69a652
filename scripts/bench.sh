#!/bin/sh
# Times gorgoclip's towers and the PyTorch reference back to back on the same cores
# and prints both JSON lines and the ratios. Usage: scripts/bench.sh [THREADS [BATCH
# [MODEL]]] (defaults 2, 32 and ViT-B/32; MODEL RN50, RN101, RN50x4, ... compares
# OpenAI's ModifiedResNet). Needs bin/gorgoclip (make build) and a python3 with torch
# ($PYTHON, else python3, else Debian's /usr/bin/python3 with python3-torch).
set -eu
threads=${1:-2}
batch=${2:-32}
model=${3:-ViT-B/32}
bin=${GORGOCLIP:-bin/gorgoclip}
py=${PYTHON:-python3}
"$py" -c 'import torch' 2>/dev/null || py=/usr/bin/python3
echo "load before: $(cat /proc/loadavg 2>/dev/null || uptime)"
go_json=$("$bin" bench --model "$model" --batch "$batch" --threads "$threads" --json)
# PyTorch runs the same number of text positions as gorgoclip did (its longest prompt).
text_len=$(printf '%s' "$go_json" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["text_tokens"])')
py_json=$("$py" "$(dirname "$0")/bench_pytorch.py" --model "$model" --batch "$batch" --threads "$threads" --text-len "$text_len")
echo "load after:  $(cat /proc/loadavg 2>/dev/null || uptime)"
echo "gorgoclip: $go_json"
echo "pytorch:   $py_json"
"$py" - "$go_json" "$py_json" <<'PY'
import json, sys
g, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
gflop = g["image_gflop_per_s"] / g["image_per_s"]  # per image (8.82 for ViT-B/32)
ceiling = g.get("sgemm_gflop_per_s", 0) / gflop   # images/s if the tower ran at the BLAS's SGEMM rate
target = "1.0x, OpenAI's ModifiedResNet" if g["model"].startswith("RN") else "1.5x"
print("image: %s %.2f vs %.2f img/s = %.2fx PyTorch (target %s)" % (g["model"], g["image_per_s"], p["image_per_s"], g["image_per_s"] / p["image_per_s"], target))
if ceiling:
    print("       SGEMM alone (this run, block shapes): %.1f GFLOP/s = a ceiling of %.1f img/s; the tower reaches %.0f%% of it,"
          " and 1.5x PyTorch would need %.0f%%" % (g["sgemm_gflop_per_s"], ceiling, 100 * g["image_per_s"] / ceiling, 150 * p["image_per_s"] / ceiling))
print("text:  %.1f vs %.1f prompts/s = %.2fx PyTorch (target 1.5x), %d tokens (%s)"
      % (g["text_per_s"], p["text_per_s"], g["text_per_s"] / p["text_per_s"], g["text_tokens"], g["text_source"]))
print("peak RSS: %.0f MB (target <= 1500)" % g["peak_rss_mb"])
PY
