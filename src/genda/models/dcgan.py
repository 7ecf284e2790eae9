"""The course's DCGAN networks (64x64) and their method-B / SN-GAN / WGAN variants.

Generator: z (B, nz, 1, 1) -> ConvT nz->512->256->128->64->C, BN, ReLU (or LeakyReLU), optional
dropout, Tanh.
Discriminator: (B, C, 64, 64) -> Conv C->64->128->256->512->1 -> logits (B,) (no sigmoid).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genda.errors import ConfigError
from genda.targets import register_target

NORMS = ("batch", "instance", "layer", "none")


def _act(kind: str, slope: float = 0.2) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leaky":
        return nn.LeakyReLU(slope, inplace=True)
    raise ConfigError(f"model.generator.activation={kind!r}: use 'relu' or 'leaky'")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":  # LayerNorm over (C, H, W), per sample: safe with a gradient penalty
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"model.discriminator.norm={kind!r}: use one of {', '.join(NORMS)}")


def init_dcgan_(module: nn.Module) -> None:
    """DCGAN init (Radford et al.): conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@register_target
class Generator(nn.Module):
    """z: (B, nz) or (B, nz, 1, 1) -> images (B, channels, 64, 64) in [-1, 1].

    activation 'relu' (course) or 'leaky' with slope `leaky_slope` (method B; 0.2, the course
    report 0.01); `dropout` > 0 follows each hidden activation (active in train mode only)."""

    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3, activation: str = "relu",
                 leaky_slope: float = 0.2, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.generator.dropout={dropout}: use a probability in [0, 1)")
        if leaky_slope < 0:
            raise ConfigError(f"model.generator.leaky_slope={leaky_slope}: use a slope >= 0")
        self.nz = nz
        widths = [ngf * 8, ngf * 4, ngf * 2, ngf]

        def act() -> list[nn.Module]:  # no Dropout module at 0: older checkpoints' layer indices hold
            return [_act(activation, leaky_slope), *([nn.Dropout(dropout)] if dropout else [])]

        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), *act()]
        for cin, cout in zip(widths, widths[1:], strict=False):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), *act()]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan_(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(len(z), self.nz, 1, 1))


@register_target
class Discriminator(nn.Module):
    """images (B, channels, 64, 64) -> logits (B,).

    norm: 'batch' (course), 'instance', 'layer' (WGAN-GP), 'none' (SN-GAN); `spectral`
    wraps every conv in spectral normalisation; `dropout` follows each hidden activation.
    """

    def __init__(self, ndf: int = 64, channels: int = 3, norm: str = "batch", spectral: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        widths = [ndf, ndf * 2, ndf * 4, ndf * 8]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, inplace=True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        for cin, cout in zip(widths, widths[1:], strict=False):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=norm == "none"), _norm(norm, cout),
                       nn.LeakyReLU(0.2, inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        init_dcgan_(self)
        if spectral:  # after init: the parametrisation then wraps the initialised weights
            for m in self.net:
                if isinstance(m, nn.Conv2d):
                    spectral_norm(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
