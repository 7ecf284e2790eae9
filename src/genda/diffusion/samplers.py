"""Reverse-process samplers: DDPM ancestral sampling and DDIM, plus classifier-free guidance.

An eps-model is `eps_model(x, t) -> eps` with x (B, C, H, W) and t (B,) int64 timesteps in
[0, T). Samplers run under `torch.inference_mode`; `return_steps` names timesteps whose
model inputs x_t are also returned, as `(x_0, {t: x_t})`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

import torch

from genda.diffusion.process import alpha_bars, posterior_coefs

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Sampled = torch.Tensor | tuple[torch.Tensor, dict[int, torch.Tensor]]


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like `like`, drawn on the generator's device."""
    dev = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def _t(t: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((len(x),), t, dtype=torch.long, device=x.device)


@torch.inference_mode()
def ddpm_sample(eps_model: EpsModel, x_T: torch.Tensor, betas: torch.Tensor,
                generator: torch.Generator | None = None, return_steps: Collection[int] = (),
                clip_x0: bool = False) -> Sampled:
    """Ancestral sampling over all T steps, variance = posterior variance (beta tilde).
    `clip_x0` clamps the predicted x_0 to [-1, 1] before the posterior (Ho et al.'s
    `clip_denoised`, diffusers' `clip_sample`)."""
    sqrt_ab = alpha_bars(betas).sqrt().tolist()
    sqrt_1mab = (1 - alpha_bars(betas)).sqrt().tolist()
    c0, ct, var = (c.tolist() for c in posterior_coefs(betas))
    x, trace = x_T, {}
    for t in reversed(range(len(betas))):
        if t in return_steps:
            trace[t] = x.clone()
        eps = eps_model(x, _t(t, x))
        x0 = (x - sqrt_1mab[t] * eps) / sqrt_ab[t]
        if clip_x0:
            x0 = x0.clamp(-1.0, 1.0)
        x = c0[t] * x0 + ct[t] * x
        if t > 0:
            x = x + math.sqrt(var[t]) * _noise(x, generator)
    return (x, trace) if return_steps else x


def ddim_timesteps(num_steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """The course's (diffusers' 'leading') rule, descending: k·(n-1), ..., k, 0 with k = T // n."""
    k = num_train_timesteps // num_steps
    return list(range(0, num_steps * k, k))[::-1]


def ddim_sigma(ab_t: float, ab_prev: float, eta: float) -> float:
    """sigma = eta sqrt((1 - ab_prev) / (1 - ab_t)) sqrt(1 - ab_t / ab_prev) (DDIM eq. 16)."""
    return eta * math.sqrt((1 - ab_prev) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_prev)


@torch.inference_mode()
def ddim_sample(eps_model: EpsModel, x_T: torch.Tensor, betas: torch.Tensor, num_steps: int = 50,
                eta: float = 0.0, generator: torch.Generator | None = None,
                return_steps: Collection[int] = (), clip_x0: bool = False) -> Sampled:
    """DDIM over `ddim_timesteps(num_steps)`; the last step goes to alpha_bar = 1 (x_0 itself).
    `clip_x0` clamps the predicted x_0 to [-1, 1] and re-derives eps from it, as diffusers'
    `DDIMScheduler(clip_sample=True)` with `step(use_clipped_model_output=True)`; off for the
    course's DDIM problem (clip_sample=False)."""
    ab = alpha_bars(betas).tolist()
    ts = ddim_timesteps(num_steps, len(betas))
    x, trace = x_T, {}
    for i, t in enumerate(ts):
        if t in return_steps:
            trace[t] = x.clone()
        ab_t = ab[t]
        ab_prev = ab[ts[i + 1]] if i + 1 < len(ts) else 1.0
        eps = eps_model(x, _t(t, x))
        x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        if clip_x0:
            x0 = x0.clamp(-1.0, 1.0)
            eps = (x - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)
        sigma = ddim_sigma(ab_t, ab_prev, eta)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(0.0, 1 - ab_prev - sigma**2)) * eps
        if sigma > 0:
            x = x + sigma * _noise(x, generator)
    return (x, trace) if return_steps else x


def classifier_free_guidance(eps_model: Callable[..., torch.Tensor], labels: torch.Tensor,
                             null_label: int, weight: float) -> EpsModel:
    """eps = (1 + w) eps(x, t, y) - w eps(x, t, null) (Ho & Salimans 2022); one batched call."""

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if weight == 0:
            return eps_model(x, t, labels)
        null = torch.full_like(labels, null_label)
        cond, uncond = eps_model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
        return cond + weight * (cond - uncond)

    return guided
