"""Noise schedules beta_1..beta_T."""

from __future__ import annotations

import math

import torch

from genda.errors import ConfigError


def make_betas(kind: str = "linear", num_timesteps: int = 1000, beta_start: float = 1e-4,
               beta_end: float = 0.02, cosine_s: float = 0.008) -> torch.Tensor:
    """Betas (T,) float32. 'linear': DDPM (Ho et al. 2020); 'cosine': Nichol & Dhariwal 2021."""
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64).float()
    if kind == "cosine":
        steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
        f = torch.cos((steps + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999).float()
    raise ConfigError(f"model.schedule.kind={kind!r}: use 'linear' or 'cosine'")
