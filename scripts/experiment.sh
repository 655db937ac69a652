#!/usr/bin/env bash
# The main job (make experiment): fetch ViT-B/32, Imagenette-160, OpenAI's prompt
# templates and BPE vocabulary, then run zero-shot with bare labels, "a photo of a {}.", the article's
# "a photo of a {}" and the 80-template ImageNet ensemble, and the k-shot linear-probe
# comparison. Results, plots and report.md go to $RESULTS.
#
# Environment: GORGOCLIP (the binary), MODEL (hub repo), DATASET (imagenette-160,
# imagenette-320, imagenette), DATA (dataset parent dir), RESULTS, SEEDS, SHOTS,
# HF_ENDPOINT/HF_TOKEN (hub), GORGOCLIP_CACHE (download cache), and mirrors:
# IMAGENETTE_URL, TEMPLATES_URL, NOTEBOOK_URL, VOCAB_URL (default: the public sources).
set -euo pipefail
GORGOCLIP=${GORGOCLIP:-bin/gorgoclip}
MODEL=${MODEL:-openai/clip-vit-base-patch32}
DATASET=${DATASET:-imagenette-160}
DATA=${DATA:-data}
RESULTS=${RESULTS:-results/imagenette}
SEEDS=${SEEDS:-3}
SHOTS=${SHOTS:-1,2,4,8,16}

echo "== fetching $MODEL" >&2
weights=$("$GORGOCLIP" fetch model "$MODEL")
echo "== fetching $DATASET into $DATA" >&2
data=$("$GORGOCLIP" fetch dataset "$DATASET" --dir "$DATA" ${IMAGENETTE_URL:+--url "$IMAGENETTE_URL"})
echo "== fetching OpenAI's prompt templates" >&2
"$GORGOCLIP" fetch templates ${TEMPLATES_URL:+--url "$TEMPLATES_URL"} ${NOTEBOOK_URL:+--notebook-url "$NOTEBOOK_URL"} >/dev/null
echo "== fetching OpenAI's BPE vocabulary (used when the model brings none)" >&2
"$GORGOCLIP" fetch vocab ${VOCAB_URL:+--url "$VOCAB_URL"} >/dev/null
echo "== zero-shot and k-shot probes on $data (results in $RESULTS)" >&2
"$GORGOCLIP" compare --weights "$weights" --dataset "imagefolder:$data" \
  --prompts bare,photo,article,imagenet80 --shots "$SHOTS" --seeds "$SEEDS" \
  --model-name ViT-B/32 --pretrained openai --out "$RESULTS"
echo "== done: $RESULTS/results.json, $RESULTS/report.md" >&2
