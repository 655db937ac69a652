#!/usr/bin/env python3
"""PyTorch GPU reference for `gorgoclip-cuda bench --device cuda`: the same towers as
scripts/bench_pytorch.py (torchvision's vit_b_32 with a 512-wide projection; a 12-layer
512-wide causal text tower over 11 positions), random weights, eager mode, on one GPU.
--model RN50 runs OpenAI's ModifiedResNet RN50 instead (scripts/modified_resnet.py:
BatchNorm in eval mode, not folded, as OpenAI's model runs) with RN50's text tower
(the same transformer, projected to 1024).

fp32 by default, with TF32 switched off for matmuls and convolutions (PyTorch's own
default for matmuls), so both sides do exact float32 GEMMs; --amp fp16|bf16 runs under
torch.autocast instead, for context. image_per_s counts what gorgoclip's EncodeImages
does per batch: pixels copied from host memory to the GPU, the tower, features copied
back; image_per_s_device_only leaves the two copies out. Each figure is the mean over
--iters batches after --warmup untimed ones, with torch.cuda.synchronize around them.

Prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_pytorch  # noqa: E402
from bench_pytorch import PlainViT  # noqa: E402
from modified_resnet import modified_resnet  # noqa: E402


def vit_b_32():
    """torchvision's vit_b_32 when it imports and builds (a torchvision built for another
    torch can fail with more than ImportError), else the equal-cost torch.nn ViT-B/32."""
    try:
        return bench_pytorch.vit_b_32()
    except Exception as e:  # noqa: BLE001
        print(f"torchvision unusable ({type(e).__name__}: {e}); using the torch.nn ViT-B/32", file=sys.stderr)
        return PlainViT(), "torch.nn ViT-B/32"


def towers(model):
    """The image tower, its name and input resolution, and the text tower of model."""
    if model == "RN50":
        image, res = modified_resnet(model)
        return image, "ModifiedResNet RN50", res, TextTower(out=1024)
    image, name = vit_b_32()
    return image, name, 224, TextTower()


class TextTower(bench_pytorch.TextTower):
    """bench_pytorch.TextTower with its causal mask built on the input's device (the CPU
    version builds it in host memory, which a CUDA attention refuses). A boolean mask
    (True: masked) is the same mask for every dtype, autocast included."""

    def forward(self, ids, eot):
        n = ids.shape[1]
        x = self.tok(ids) + self.pos[:n]
        mask = torch.ones(n, n, dtype=torch.bool, device=ids.device).triu(1)
        x = self.ln_final(self.blocks(x, mask=mask))
        return self.proj(x[torch.arange(x.shape[0], device=x.device), eot])


def exact_fp32():
    """No TF32 in matmuls or convolutions: the fp32_precision settings of recent PyTorch
    (2.9 and later), else the allow_tf32 flags of older versions, each on its own."""
    for new, old in ((torch.backends.cuda.matmul, torch.backends.cuda.matmul),
                     (getattr(torch.backends.cudnn, "conv", None), torch.backends.cudnn)):
        try:
            new.fp32_precision = "ieee"
            continue
        except Exception:  # noqa: BLE001
            pass
        try:
            old.allow_tf32 = False
        except Exception as e:  # noqa: BLE001
            print(f"cannot switch TF32 off: {e}", file=sys.stderr)


def cpu_autocast_slow_path(*modules):
    """Under CPU autocast, PyTorch 1.13's nn.MultiheadAttention takes its fused fast
    path, which fails ("expected scalar type BFloat16 but found Float"): it checks
    torch.is_autocast_enabled(), CUDA's flag only. In training mode it takes the plain
    path instead, the same computation here (no dropout in these towers). The CPU runs
    only rehearse this script; CUDA autocast is not affected."""
    for m in modules:
        for a in m.modules():
            if isinstance(a, torch.nn.MultiheadAttention):
                if a.dropout:
                    raise SystemExit(f"attention dropout {a.dropout}: training mode would change the results")
                a.train()


def per_second(dev, batch, iters, warmup, f):
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        f()
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        f()
    sync()
    return batch * iters / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["ViT-B/32", "RN50"], default="ViT-B/32")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--text-len", type=int, default=11)
    ap.add_argument("--amp", choices=["fp16", "bf16"], default=None)
    ap.add_argument("--device", default="cuda",
                    help="cuda (the reference); cpu only tests this script where there is no GPU")
    args = ap.parse_args()
    exact_fp32()
    torch.manual_seed(0)
    dev = torch.device(args.device)
    image, image_name, res, text = towers(args.model)
    image = image.eval().to(dev)
    text = text.eval().to(dev)
    pixels = torch.randn(args.batch, 3, res, res)  # host memory, as gorgoclip's input
    pixels_dev = pixels.to(dev)
    ids = torch.randint(1, 49406, (args.batch, args.text_len))
    eot = torch.full((args.batch,), args.text_len - 1)
    eot[::2] = args.text_len - 2
    ids_dev, eot_dev = ids.to(dev), eot.to(dev)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.amp)
    if dtype and dev.type == "cpu":
        if dtype != torch.bfloat16 and int(torch.__version__.split(".")[0]) < 2:
            raise SystemExit(f"--amp {args.amp} --device cpu: PyTorch {torch.__version__}'s CPU autocast runs bf16 only")
        cpu_autocast_slow_path(image, text)
    ctx = (lambda: torch.autocast(dev.type, dtype=dtype)) if dtype else torch.inference_mode
    with torch.inference_mode(), ctx():
        img = per_second(dev, args.batch, args.iters, args.warmup, lambda: image(pixels.to(dev)).float().cpu())
        img_dev = per_second(dev, args.batch, args.iters, args.warmup, lambda: image(pixels_dev))
        txt = per_second(dev, args.batch, args.iters, args.warmup, lambda: text(ids.to(dev), eot.to(dev)).float().cpu())
        txt_dev = per_second(dev, args.batch, args.iters, args.warmup, lambda: text(ids_dev, eot_dev))
    print(json.dumps({
        "image_per_s": img, "image_per_s_device_only": img_dev,
        "text_per_s": txt, "text_per_s_device_only": txt_dev,
        "precision": args.amp or "fp32", "torch": torch.__version__, "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else args.device,
        "model": args.model, "image_tower": image_name, "batch": args.batch, "iters": args.iters, "text_len": args.text_len,
    }))


if __name__ == "__main__":
    main()
