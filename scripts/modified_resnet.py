"""OpenAI's ModifiedResNet image tower (CLIP's RN50, RN101, RN50x4, RN50x16, RN50x64) in
plain PyTorch, written from the architecture of OpenAI's clip/model.py, for the PyTorch
baselines of `gorgoclip bench --model RN50` (scripts/bench_pytorch_gpu.py --model RN50).

What makes it "modified" next to torchvision's ResNet:
  - the stem is three 3x3 convolutions (3 -> width/2 with stride 2, width/2 -> width/2,
    width/2 -> width), each with BatchNorm and ReLU, then a 2x2 average pool;
  - every convolution has stride 1; a bottleneck that downsamples does it with an
    average pool of its stride after its 3x3 convolution, and its skip path pools the
    same way before a 1x1 convolution and BatchNorm (anti-aliased strides);
  - global average pooling is replaced by attention pooling: the flattened last stage
    with its mean prepended, plus a learned positional embedding, attended to by one
    query (the mean token) with separate q/k/v projections, then c_proj to the
    embedding.

Random weights, initialised as OpenAI's CLIP.initialize_parameters does for a ResNet:
the attention pool's four projections N(0, C^-0.5), each bottleneck's last BatchNorm
gain zero, PyTorch's defaults elsewhere. Eval mode: BatchNorm uses its running
statistics, as at inference. Layer names follow OpenAI's state dict (conv1, bn1, ...,
layer1.0.downsample.0, attnpool.q_proj, ...).
"""
import torch
import torch.nn.functional as F
from torch import nn

# name -> (stage blocks, width, input resolution, embedding), as in the CLIP paper and
# gorgoclip's layers/presets; attention-pool heads are width*32/64.
PRESETS = {
    "RN50": ((3, 4, 6, 3), 64, 224, 1024),
    "RN101": ((3, 4, 23, 3), 64, 224, 512),
    "RN50x4": ((4, 6, 10, 6), 80, 288, 640),
    "RN50x16": ((6, 8, 18, 8), 96, 384, 768),
    "RN50x64": ((3, 15, 36, 10), 128, 448, 1024),
}


def conv_bn(cin, cout, kernel, stride=1):
    """A bias-free convolution (padding kernel//2) and its BatchNorm."""
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout)


class Bottleneck(nn.Module):
    """1x1, 3x3, average pool of the stride, 1x1 to 4*planes; ReLU after each
    BatchNorm, the last one after the skip connection is added."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        out = planes * self.expansion
        self.conv1, self.bn1 = conv_bn(inplanes, planes, 1)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3, self.bn3 = conv_bn(planes, out, 1)
        self.downsample = None
        if stride > 1 or inplanes != out:
            conv, bn = conv_bn(inplanes, out, 1)
            # Index names match OpenAI's: downsample.-1 is the pool, .0 the conv, .1 the BN.
            self.downsample = nn.Sequential()
            self.downsample.add_module("-1", nn.AvgPool2d(stride) if stride > 1 else nn.Identity())
            self.downsample.add_module("0", conv)
            self.downsample.add_module("1", bn)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.avgpool(F.relu(self.bn2(self.conv2(h))))
        h = self.bn3(self.conv3(h))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(h + skip)


class AttentionPool2d(nn.Module):
    """One query (the mean of the S spatial tokens) attending over the mean and the
    tokens, each plus its positional row; heads of width C/heads; c_proj to out."""

    def __init__(self, spatial, channels, heads, out):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spatial + 1, channels) / channels**0.5)
        self.q_proj = nn.Linear(channels, channels)
        self.k_proj = nn.Linear(channels, channels)
        self.v_proj = nn.Linear(channels, channels)
        self.c_proj = nn.Linear(channels, out)
        self.heads = heads

    def forward(self, x):
        x = x.flatten(2).permute(2, 0, 1)  # [B, C, H, W] -> [S, B, C]
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)  # [S+1, B, C]
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        y, _ = F.multi_head_attention_forward(
            query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=self.heads,
            q_proj_weight=self.q_proj.weight, k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight,
            in_proj_weight=None, in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=self.c_proj.weight, out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True, training=False, need_weights=False)
        return y[0]  # [B, out]


class ModifiedResNet(nn.Module):
    """CLIP's ResNet image tower: pixels [B, 3, R, R] -> image features [B, out]."""

    def __init__(self, stage_blocks, width, resolution, out):
        super().__init__()
        half = width // 2
        self.conv1, self.bn1 = conv_bn(3, half, 3, stride=2)
        self.conv2, self.bn2 = conv_bn(half, half, 3)
        self.conv3, self.bn3 = conv_bn(half, width, 3)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = width
        for i, blocks in enumerate(stage_blocks):
            planes, stride = width << i, 1 if i == 0 else 2
            stage = []
            for b in range(blocks):
                stage.append(Bottleneck(inplanes, planes, stride if b == 0 else 1))
                inplanes = planes * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.attnpool = AttentionPool2d((resolution // 32) ** 2, width * 32, width * 32 // 64, out)
        self.init_like_openai()

    def init_like_openai(self):
        std = self.attnpool.c_proj.in_features**-0.5
        for proj in (self.attnpool.q_proj, self.attnpool.k_proj, self.attnpool.v_proj, self.attnpool.c_proj):
            nn.init.normal_(proj.weight, std=std)
        for name, p in self.named_parameters():
            if name.startswith("layer") and name.endswith("bn3.weight"):
                nn.init.zeros_(p)

    def forward(self, x):
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = F.relu(bn(conv(x)))
        x = self.avgpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


def modified_resnet(name):
    """The tower of preset name (RN50, ...) and its input resolution."""
    blocks, width, resolution, out = PRESETS[name]
    return ModifiedResNet(blocks, width, resolution, out), resolution
