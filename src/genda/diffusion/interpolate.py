"""Interpolation between noises: spherical (slerp) and linear (lerp)."""

from __future__ import annotations

import torch


def slerp(x0: torch.Tensor, x1: torch.Tensor, alpha: float) -> torch.Tensor:
    """sin((1-a)θ)/sin θ · x0 + sin(aθ)/sin θ · x1, θ the angle between flattened x0 and x1."""
    a, b = x0.flatten().double(), x1.flatten().double()
    theta = torch.arccos((a @ b / (a.norm() * b.norm())).clamp(-1.0, 1.0))
    if float(theta) < 1e-6:  # (nearly) parallel: slerp degenerates to lerp
        return lerp(x0, x1, alpha)
    w0 = torch.sin((1 - alpha) * theta) / torch.sin(theta)
    w1 = torch.sin(alpha * theta) / torch.sin(theta)
    return (float(w0) * x0 + float(w1) * x1).to(x0.dtype)


def lerp(x0: torch.Tensor, x1: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1 - a) x0 + a x1."""
    return (1 - alpha) * x0 + alpha * x1
