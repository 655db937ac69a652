#!/usr/bin/env python3
"""Writes loaders/weights/testdata/openai-tiny.pt and its goldens.

A tiny CLIP with OpenAI's module tree and attribute names (visual.conv1, ...,
transformer.resblocks.N.attn, mlp.c_fc, ln_final, text_projection, logit_scale),
random weights, traced with torch.jit.trace and saved with torch.jit.save in half
precision, as OpenAI's own .pt files (what clip.load downloads) are: a TorchScript
archive. The goldens are the traced module's image and text features of fixed
inputs, in float32, for gorgoclip's loader to reproduce. The architecture follows
CLIP's paper and OpenAI's published model description (pre-LN residual attention
blocks with QuickGELU, class-token pooling, end-of-text pooling); it is written here
from that description, at sizes small enough for a test file (about 250 kB).

Usage: /usr/bin/python3 scripts/make_openai_pt.py  (needs python3-torch)
"""
import os
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

OUT = os.path.join(os.path.dirname(__file__), "..", "loaders", "weights", "testdata")
WIDTH, LAYERS, PATCH, RES, EMBED, CTX, VOCAB = 64, 1, 8, 16, 16, 8, 64


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d, heads, mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d, 4 * d)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * d, d))]))
        self.ln_2 = nn.LayerNorm(d)
        self.attn_mask = mask  # a plain attribute, not a buffer: not in the state dict

    def forward(self, x):  # x: [T, B, D]
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=self.attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, d, layers, heads, mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(d, heads, mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        scale = WIDTH ** -0.5
        self.conv1 = nn.Conv2d(3, WIDTH, PATCH, PATCH, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(WIDTH))
        self.positional_embedding = nn.Parameter(scale * torch.randn((RES // PATCH) ** 2 + 1, WIDTH))
        self.ln_pre = nn.LayerNorm(WIDTH)
        self.transformer = Transformer(WIDTH, LAYERS, WIDTH // 64)
        self.ln_post = nn.LayerNorm(WIDTH)
        self.proj = nn.Parameter(scale * torch.randn(WIDTH, EMBED))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)  # [B, G*G, D]
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = VisionTransformer()
        mask = torch.full((CTX, CTX), float("-inf")).triu_(1)
        self.transformer = Transformer(WIDTH, LAYERS, WIDTH // 64, mask)
        self.token_embedding = nn.Embedding(VOCAB, WIDTH)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(CTX, WIDTH))
        self.ln_final = nn.LayerNorm(WIDTH)
        self.text_projection = nn.Parameter(WIDTH ** -0.5 * torch.randn(WIDTH, EMBED))
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))
        # OpenAI's TorchScript files carry these three as tensors; build_model drops them.
        self.register_buffer("input_resolution", torch.tensor(RES))
        self.register_buffer("context_length", torch.tensor(CTX))
        self.register_buffer("vocab_size", torch.tensor(VOCAB))

    def forward(self, image, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.ln_final(self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2))
        txt = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return self.visual(image), txt


def main():
    torch.manual_seed(0)
    m = CLIP().eval()
    with torch.no_grad():  # perturb LayerNorm gains and biases so a wrong mapping cannot hide
        for name, p in m.named_parameters():
            if "ln" in name:
                p.add_(0.1 * torch.randn_like(p))
    image = torch.sin(torch.arange(2 * 3 * RES * RES, dtype=torch.float32) * 0.01).reshape(2, 3, RES, RES)
    text = torch.tensor([[VOCAB - 2, 5, 9, VOCAB - 1, 0, 0, 0, 0], [VOCAB - 2, 7, 3, 11, 2, 13, VOCAB - 1, 0]])
    m = m.half().float()  # the weights rounded as a half-precision file holds them
    with torch.no_grad():
        img, txt = m(image, text)
    traced = torch.jit.trace(m, (image, text)).half()  # stored in half, as OpenAI's files are
    os.makedirs(OUT, exist_ok=True)
    traced.save(os.path.join(OUT, "openai-tiny.pt"))
    np.save(os.path.join(OUT, "openai-tiny-image-features.npy"), img.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "openai-tiny-text-features.npy"), txt.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "openai-tiny-pixels.npy"), image.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "openai-tiny-tokens.npy"), text.numpy().astype(np.int32))
    print(sorted(traced.state_dict().keys()))


if __name__ == "__main__":
    main()
