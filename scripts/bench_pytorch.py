#!/usr/bin/env python3
"""PyTorch reference for `gorgoclip bench`: the same work on the same cores.

Image tower: torchvision's vit_b_32 (ViT-B/32, 224px, 12 layers, width 768) with its
classifier replaced by a 512-wide projection, as CLIP's visual.proj. Text tower: a
12-layer, 512-wide, 8-head causal nn.TransformerEncoder (pre-LN, 2048 hidden) over
prompts of the same lengths gorgoclip runs (11 positions: it stops at the last
end-of-text token), then ln_final, the end-of-text row and a 512x512 projection.
Random weights, fp32, inference_mode, torch.set_num_threads(--threads). Without
torchvision the ViT is built from plain torch modules of equal cost.

Prints one JSON line: {"image_per_s", "text_per_s", "torch", "threads", "batch", ...}.
"""
import argparse
import json
import time

import torch
from torch import nn


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
        mask = torch.full((n, n), float("-inf")).triu(1)
        x = self.ln_final(self.blocks(x, mask=mask))
        return self.proj(x[torch.arange(x.shape[0]), eot])


def per_second(batch, iters, f):
    f()  # warm-up
    start = time.perf_counter()
    for _ in range(iters):
        f()
    return batch * iters / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--text-len", type=int, default=11, help="positions run per prompt (gorgoclip trims to the longest)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    vit, vit_name = vit_b_32()
    text = TextTower()
    vit.eval()
    text.eval()
    pixels = torch.randn(args.batch, 3, 224, 224)
    ids = torch.randint(1, 49406, (args.batch, args.text_len))
    eot = torch.full((args.batch,), args.text_len - 1)
    eot[::2] = args.text_len - 2  # lengths 10 and 11, as the Imagenette prompts
    with torch.inference_mode():
        img = per_second(args.batch, args.iters, lambda: vit(pixels))
        txt = per_second(args.batch, args.iters, lambda: text(ids, eot))
    print(json.dumps({"image_per_s": img, "text_per_s": txt, "torch": torch.__version__, "vit": vit_name,
                      "threads": args.threads, "batch": args.batch, "text_len": args.text_len}))


if __name__ == "__main__":
    main()
