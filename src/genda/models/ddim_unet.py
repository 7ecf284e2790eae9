"""The eps-UNet of the course's DDIM problem, with the module names of the checkpoint `UNet.pt`.

Layout follows rosinality's denoising-diffusion-pytorch `UNet` (DDPM-style: ch 128,
ch_mult [1, 1, 2, 2, 4, 4], 2 res blocks, attention where the downsampling stride is in
`attn_strides`, i.e. 16x16 for 256x256 inputs), so the state dict in `UNet.pt`
matches key for key. Written from the architecture description; `net(x, t) -> eps`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genda.targets import register_target


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding (B,) -> (B, dim) = [sin(t f), cos(t f)]; `inv_freq` is a saved buffer."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("inv_freq", torch.exp(torch.arange(0, dim, 2, dtype=torch.float32)
                                                   * (-math.log(10000.0) / dim)))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t.reshape(-1).float()[:, None] * self.inv_freq[None]
        return torch.cat([args.sin(), args.cos()], dim=-1)


class ResBlock(nn.Module):
    """norm1-SiLU-conv1, + time projection, norm2-SiLU-dropout-conv2, + skip (1x1 if channels change)."""

    def __init__(self, cin: int, cout: int, time_dim: int, dropout: float, groups: int = 32) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, cout))
        self.norm2 = nn.GroupNorm(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + (x if self.skip is None else self.skip(x))


class SelfAttention(nn.Module):
    """One-head attention over all positions: qkv 1x1 conv (C -> 3C), softmax(q k / sqrt C) v, out conv."""

    def __init__(self, ch: int, groups: int = 32) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.out = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)  # (B, HW, C) each
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, c, h, w)
        return x + self.out(out)


class ResBlockWithAttention(nn.Module):
    def __init__(self, cin: int, cout: int, time_dim: int, dropout: float, attention: bool,
                 groups: int = 32) -> None:
        super().__init__()
        self.resblocks = ResBlock(cin, cout, time_dim, dropout, groups)
        self.attention = SelfAttention(cout, groups) if attention else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.resblocks(x, temb)
        return h if self.attention is None else self.attention(h)


@register_target
class DDIMUNet(nn.Module):
    """eps-model `net(x, t)`: x (B, in_channel, H, W), t (B,) timesteps; H, W divisible by
    2^(len(channel_multiplier) - 1). Channel counts must be multiples of `norm_groups`.

    norm_groups: GroupNorm's groups (32, the course's; the parameter names and shapes do not depend
    on it, so any value loads `UNet.pt`). With as many groups as channels GroupNorm is instance
    norm: it erases each channel's spatial mean, so a net of 32 channels with 32 groups cannot
    carry an input's mean colour to its output, and at high noise that mean is what eps is made of
    (DDIM's x0 estimate divides the error by sqrt(alpha_bar)). 4 channels per group (the DDPM
    paper's 128 / 32) keeps it."""

    def __init__(self, in_channel: int = 3, channel: int = 128,
                 channel_multiplier: tuple[int, ...] = (1, 1, 2, 2, 4, 4), n_res_blocks: int = 2,
                 attn_strides: tuple[int, ...] = (16,), dropout: float = 0.0, norm_groups: int = 32) -> None:
        super().__init__()
        g = int(norm_groups)
        time_dim, n = 4 * channel, len(channel_multiplier)
        self.time = nn.Sequential(TimeEmbedding(channel), nn.Linear(channel, time_dim), nn.SiLU(),
                                  nn.Linear(time_dim, time_dim))
        down: list[nn.Module] = [nn.Conv2d(in_channel, channel, 3, padding=1)]
        feats, ch = [channel], channel
        for i, mult in enumerate(channel_multiplier):
            for _ in range(n_res_blocks):
                down.append(ResBlockWithAttention(ch, channel * mult, time_dim, dropout, 2**i in attn_strides, g))
                ch = channel * mult
                feats.append(ch)
            if i != n - 1:
                down.append(nn.Sequential(nn.Conv2d(ch, ch, 3, stride=2, padding=1)))
                feats.append(ch)
        self.down = nn.ModuleList(down)
        self.mid = nn.ModuleList([ResBlockWithAttention(ch, ch, time_dim, dropout, True, g),
                                  ResBlockWithAttention(ch, ch, time_dim, dropout, False, g)])
        up: list[nn.Module] = []
        for i in reversed(range(n)):
            for _ in range(n_res_blocks + 1):
                up.append(ResBlockWithAttention(ch + feats.pop(), channel * channel_multiplier[i], time_dim,
                                                dropout, 2**i in attn_strides, g))
                ch = channel * channel_multiplier[i]
            if i != 0:
                up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)))
        self.up = nn.ModuleList(up)
        self.out = nn.Sequential(nn.GroupNorm(g, ch), nn.SiLU(), nn.Conv2d(ch, in_channel, 3, padding=1))
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time(t)
        h, feats = x, []
        for layer in self.down:
            h = layer(h, temb) if isinstance(layer, ResBlockWithAttention) else layer(h)
            feats.append(h)
        for layer in self.mid:
            h = layer(h, temb)
        for layer in self.up:
            h = layer(torch.cat([h, feats.pop()], 1), temb) if isinstance(layer, ResBlockWithAttention) else layer(h)
        return self.out(h)
