"""The course's convolutional VAE for 64x64 images.

Encoder: Conv (k3, stride 2) C->32->64->128->256->512, BN, LeakyReLU, then fc_mu / fc_var.
Decoder: mirrored ConvT 512->256->128->64->32, a last upsampling ConvT, Conv 32->C, Tanh.
"""

from __future__ import annotations

import torch
from torch import nn

from genda.targets import register_target


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2))


@register_target
class ConvVAE(nn.Module):
    """x: (B, channels, S, S) in [-1, 1], S = image_size divisible by 32 -> (recon, mu, logvar).

    Training samples z by reparameterisation; eval mode decodes the mean (deterministic recons).
    """

    def __init__(self, channels: int = 3, latent_dim: int = 128, image_size: int = 64,
                 hidden: tuple[int, ...] = (32, 64, 128, 256, 512)) -> None:
        super().__init__()
        hidden = tuple(hidden)
        self.latent_dim, self.hidden = latent_dim, hidden
        self.side = image_size // 2 ** len(hidden)
        dims = (channels, *hidden)
        self.encoder = nn.Sequential(*[_down(a, b) for a, b in zip(dims, dims[1:], strict=False)])
        flat = hidden[-1] * self.side**2
        self.fc_mu, self.fc_var = nn.Linear(flat, latent_dim), nn.Linear(flat, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, flat)
        rev = hidden[::-1]
        self.decoder = nn.Sequential(*[_up(a, b) for a, b in zip(rev, rev[1:], strict=False)])
        self.final = nn.Sequential(_up(hidden[0], hidden[0]), nn.Conv2d(hidden[0], channels, 3, 1, 1), nn.Tanh())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, S, S) -> mu, logvar: (B, latent_dim)."""
        h = self.encoder(x).flatten(1)
        return self.fc_mu(h), self.fc_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> images (B, C, S, S) in [-1, 1]."""
        h = self.decoder_input(z).view(len(z), self.hidden[-1], self.side, self.side)
        return self.final(self.decoder(h))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar
