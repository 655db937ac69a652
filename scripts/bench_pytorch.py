#!/usr/bin/env python3
"""PyTorch reference for `gorgoclip bench`: the same work on the same cores.

Image tower (--model): ViT-B/32 is torchvision's vit_b_32 (224px, 12 layers, width 768)
with its classifier replaced by a 512-wide projection, as CLIP's visual.proj; RN50,
RN101, RN50x4, RN50x16 and RN50x64 are OpenAI's ModifiedResNet (anti-aliased
bottlenecks, three-convolution stem, attention pooling) from scripts/modified_resnet.py,
which reproduces clip-tiny-rn's goldens, BatchNorm in eval mode. Text tower: a
12-layer, 512-wide, 8-head causal nn.TransformerEncoder (pre-LN, 2048 hidden) over
prompts of the same lengths gorgoclip runs (11 positions: it stops at the last
end-of-text token), then ln_final, the end-of-text row and a 512x512 projection.
Random weights, inference_mode, torch.set_num_threads(--threads); --precision bf16
converts both towers and their inputs with .to(torch.bfloat16), the way PyTorch users
run bfloat16 on a CPU (oneDNN runs its GEMMs). Without torchvision the ViT is built
from plain torch modules of equal cost. --frozen runs both towers as PyTorch's fastest
CPU inference path instead of eager mode: torch.jit.trace, torch.jit.freeze and
torch.jit.optimize_for_inference (BatchNorm folded into the convolutions, which then
run in oneDNN's blocked layout; for a ResNet about 4x eager on a Zen 5 core).

Prints one JSON line: {"image_per_s", "text_per_s", "image_cpu_ms", "text_cpu_ms" (CPU
milliseconds per item, every thread, as gorgoclip bench reports them), "torch",
"precision", "threads", "batch", ...}.
"""
import argparse
import json
import time

import torch
from torch import nn

from modified_resnet import PRESETS as RESNETS, modified_resnet


def vit_b_32():
    try:
        from torchvision.models import vit_b_32 as tv_vit

        m = tv_vit(weights=None)
        m.heads = nn.Linear(768, 512, bias=False)
        return m, "torchvision.vit_b_32"
    except ImportError:
        return PlainViT(), "torch.nn ViT-B/32"


class PlainViT(nn.Module):
    """ViT-B/32 from nn modules: conv patchify, class token, 12 pre-LN blocks, proj."""

    def __init__(self, width=768, layers=12, heads=12, patch=32, res=224, out=512):
        super().__init__()
        self.conv = nn.Conv2d(3, width, patch, patch, bias=False)
        self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (res // patch) ** 2 + 1, width) * 0.02)
        self.ln_pre = nn.LayerNorm(width)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, 0.0, nn.GELU(), batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Linear(width, out, bias=False)

    def forward(self, x):
        x = self.conv(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        x = self.blocks(self.ln_pre(x))
        return self.proj(self.ln_post(x[:, 0]))


class TextTower(nn.Module):
    """CLIP's text transformer shape: 12 causal pre-LN blocks of width 512, 8 heads."""

    def __init__(self, width=512, layers=12, heads=8, vocab=49408, ctx=77, out=512):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.randn(ctx, width) * 0.01)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, 0.0, nn.GELU(), batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(width)
        self.proj = nn.Linear(width, out, bias=False)

    def forward(self, ids, eot):
        n = ids.shape[1]
        x = self.tok(ids) + self.pos[:n]
        mask = torch.full((n, n), float("-inf"), dtype=x.dtype).triu(1)
        x = self.ln_final(self.blocks(x, mask=mask))
        return self.proj(x[torch.arange(x.shape[0]), eot])


def per_second(batch, iters, f):
    """Items per second (wall time) and CPU milliseconds per item (every thread)."""
    f()  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(iters):
        f()
    return batch * iters / (time.perf_counter() - start), 1e3 * (time.process_time() - cpu) / (batch * iters)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="ViT-B/32", help="ViT-B/32 or one of " + ", ".join(RESNETS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--text-len", type=int, default=11, help="positions run per prompt (gorgoclip trims to the longest)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="bf16: both towers and the pixels in torch.bfloat16")
    ap.add_argument("--frozen", action="store_true", help="trace, freeze and optimize_for_inference both towers (else eager)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    res = 224
    if args.model in RESNETS:
        vit, res = modified_resnet(args.model)
        vit_name = "ModifiedResNet " + args.model
    elif args.model in ("ViT-B/32", "ViT-B-32"):
        vit, vit_name = vit_b_32()
    else:
        ap.error("unknown --model %r" % args.model)
    text = TextTower()
    vit.eval()
    text.eval()
    pixels = torch.randn(args.batch, 3, res, res)
    if args.precision == "bf16":
        vit, text, pixels = vit.to(torch.bfloat16), text.to(torch.bfloat16), pixels.to(torch.bfloat16)
    ids = torch.randint(1, 49406, (args.batch, args.text_len))
    eot = torch.full((args.batch,), args.text_len - 1)
    eot[::2] = args.text_len - 2  # lengths 10 and 11, as the Imagenette prompts
    mode = "eager"
    if args.frozen:
        mode = "frozen"
        with torch.no_grad():
            vit = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(vit, pixels)))
            text = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(text, (ids, eot))))
    with torch.inference_mode():
        img, img_cpu = per_second(args.batch, args.iters, lambda: vit(pixels))
        txt, txt_cpu = per_second(args.batch, args.iters, lambda: text(ids, eot))
    print(json.dumps({"image_per_s": img, "text_per_s": txt, "image_cpu_ms": img_cpu, "text_cpu_ms": txt_cpu, "torch": torch.__version__, "precision": args.precision,
                      "vit": vit_name, "model": args.model, "mode": mode,
                      "threads": args.threads, "batch": args.batch, "text_len": args.text_len}))


if __name__ == "__main__":
    main()
