"""The forward process q(x_t | x_0), its posterior q(x_{t-1} | x_t, x_0) and the eps loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """Cumulative products alpha_bar_t = prod_{s<=t} (1 - beta_s), (T,) float64 on the CPU."""
    return torch.cumprod(1.0 - betas.detach().double().cpu(), 0)


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] for a batch of timesteps t (B,), shaped (B, 1, 1, 1) like `like`."""
    v = values.to(like.device, like.dtype)[t.to(like.device)]
    return v.view(-1, *([1] * (like.ndim - 1)))


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps. x0, noise: (B, C, H, W); t: (B,) int64."""
    ab = alpha_bars(betas)
    return _at(ab.sqrt(), t, x0) * x0 + _at((1 - ab).sqrt(), t, x0) * noise


def posterior_coefs(betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c0, ct, var), each (T,) float64: q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, var) (DDPM eq. 7)."""
    ab = alpha_bars(betas)
    ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
    b = betas.detach().double().cpu()
    c0 = ab_prev.sqrt() * b / (1 - ab)
    ct = (1 - b).sqrt() * (1 - ab_prev) / (1 - ab)
    return c0, ct, b * (1 - ab_prev) / (1 - ab)


def posterior(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
              betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, C, H, W) and variance (B, 1, 1, 1) of q(x_{t-1} | x_t, x_0); t: (B,) int64."""
    c0, ct, var = posterior_coefs(betas)
    return _at(c0, t, x0) * x0 + _at(ct, t, x_t) * x_t, _at(var, t, x0)


def min_snr_weights(betas: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma weights for eps-prediction, min(SNR_t, gamma) / SNR_t with
    SNR_t = ab_t / (1 - ab_t) (Hang et al. 2023), (T,) float64: they damp the low-noise steps
    whose gradients conflict with the rest, which speeds convergence several-fold."""
    ab = alpha_bars(betas)
    snr = ab / (1 - ab)
    return snr.clamp(max=gamma) / snr


def eps_loss(eps_model: Callable[..., torch.Tensor], x0: torch.Tensor, betas: torch.Tensor,
             generator: torch.Generator | None = None, min_snr_gamma: float | None = None,
             **model_kwargs) -> torch.Tensor:
    """DDPM's simple loss: MSE between eps and eps_model(x_t, t, **kw), t ~ U{0..T-1};
    with `min_snr_gamma`, each image's MSE is weighted by `min_snr_weights` (None: uniform)."""
    gen_dev = generator.device if generator is not None else x0.device
    t = torch.randint(0, len(betas), (len(x0),), generator=generator, device=gen_dev).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=gen_dev, dtype=x0.dtype).to(x0.device)
    pred = eps_model(q_sample(x0, t, noise, betas), t, **model_kwargs)
    if not min_snr_gamma:
        return F.mse_loss(pred, noise)
    per_image = (pred.float() - noise.float()).pow(2).flatten(1).mean(1)
    w = min_snr_weights(betas, float(min_snr_gamma)).to(per_image.device, per_image.dtype)[t]
    return (w * per_image).mean()
