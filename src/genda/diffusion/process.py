"""The forward process q(x_t | x_0), its posterior q(x_{t-1} | x_t, x_0) and the eps loss.

Every function takes the schedule as a `NoiseSchedule` (tables computed once, cached per device:
what the tasks pass each training step) or as plain betas (T,) (tables built for that call)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from genda.diffusion.schedules import NoiseSchedule, as_schedule

Schedule = NoiseSchedule | torch.Tensor


def alpha_bars(betas: Schedule) -> torch.Tensor:
    """Cumulative products alpha_bar_t = prod_{s<=t} (1 - beta_s), (T,) float64 on the CPU."""
    if isinstance(betas, NoiseSchedule):
        return betas.alpha_bars
    return torch.cumprod(1.0 - betas.detach().double().cpu(), 0)


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: Schedule) -> torch.Tensor:
    """x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps. x0, noise: (B, C, H, W); t: (B,) int64."""
    s = as_schedule(betas)
    return s.at("sqrt_ab", t, x0) * x0 + s.at("sqrt_1mab", t, x0) * noise


def posterior_coefs(betas: Schedule) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c0, ct, var), each (T,) float64: q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, var) (DDPM eq. 7)."""
    s = as_schedule(betas)
    return s.post_c0, s.post_ct, s.post_var


def posterior(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
              betas: Schedule) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, C, H, W) and variance (B, 1, 1, 1) of q(x_{t-1} | x_t, x_0); t: (B,) int64."""
    s = as_schedule(betas)
    return s.at("post_c0", t, x0) * x0 + s.at("post_ct", t, x_t) * x_t, s.at("post_var", t, x0)


def min_snr_weights(betas: Schedule, gamma: float, prediction: str = "eps") -> torch.Tensor:
    """Min-SNR-gamma weights, min(SNR_t, gamma) / SNR_t for eps-prediction and
    min(SNR_t, gamma) / (SNR_t + 1) for v-prediction, with SNR_t = ab_t / (1 - ab_t) (Hang et
    al. 2023), (T,) float64: they damp the low-noise steps whose gradients conflict with the rest,
    which speeds convergence several-fold."""
    ab = alpha_bars(betas)
    snr = ab / (1 - ab)
    return snr.clamp(max=gamma) / (snr + 1 if prediction == "v" else snr)


PREDICTIONS = ("eps", "v")


def eps_loss(eps_model: Callable[..., torch.Tensor], x0: torch.Tensor, betas: Schedule,
             generator: torch.Generator | None = None, min_snr_gamma: float | None = None,
             prediction: str = "eps", **model_kwargs) -> torch.Tensor:
    """DDPM's simple loss: MSE between eps and eps_model(x_t, t, **kw), t ~ U{0..T-1};
    with `min_snr_gamma`, each image's MSE is weighted by `min_snr_weights` (None: uniform).
    `prediction="v"` trains a v-model instead (target `v_target`, Salimans & Ho 2022); sample it
    through `EpsFromV`. Pass a `NoiseSchedule` (as the tasks do) so no table is recomputed per step."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction={prediction!r}: use one of {', '.join(PREDICTIONS)}")
    s = as_schedule(betas)
    gen_dev = generator.device if generator is not None else x0.device
    t = torch.randint(0, len(s), (len(x0),), generator=generator, device=gen_dev).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=gen_dev, dtype=x0.dtype).to(x0.device)
    pred = eps_model(q_sample(x0, t, noise, s), t, **model_kwargs)
    target = noise if prediction == "eps" else v_target(x0, noise, t, s)
    if not min_snr_gamma:
        return F.mse_loss(pred, target)
    per_image = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    w = s.cached(f"min_snr_{prediction}_{float(min_snr_gamma)!r}",
                 lambda: min_snr_weights(s, float(min_snr_gamma), prediction), per_image.device, per_image.dtype)
    return (w[t] * per_image).mean()


def v_target(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, betas: Schedule) -> torch.Tensor:
    """v = sqrt(ab_t) eps - sqrt(1 - ab_t) x_0 (Salimans & Ho 2022; diffusers' `get_velocity`)."""
    s = as_schedule(betas)
    return s.at("sqrt_ab", t, x0) * noise - s.at("sqrt_1mab", t, x0) * x0


class EpsFromV:
    """An eps-model made of a v-model: eps = sqrt(ab_t) v + sqrt(1 - ab_t) x_t, so every genda
    scheduler, hook and guidance wrapper samples a v-trained net unchanged. At high noise a
    v-net's x_0 estimate is its own output (x_0 = sqrt(ab_t) x_t - sqrt(1 - ab_t) v) instead of
    eps's error amplified by 1 / sqrt(ab_t) (x 158 at t = 980 of the linear schedule)."""

    def __init__(self, v_model: Callable[..., torch.Tensor], betas: Schedule) -> None:
        self.v_model, self.schedule = v_model, as_schedule(betas)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        v = self.v_model(x, t, *args, **kwargs)
        return self.schedule.at("sqrt_ab", t, x) * v + self.schedule.at("sqrt_1mab", t, x) * x
