"""The one sampling loop and its hooks: classifier-free guidance, x_0 clipping, tracing.

An eps-model is `eps_model(x, t) -> eps` with x (B, C, H, W) and t (B,) int64 timesteps in
[0, T). `sample(scheduler, eps_model, x_T)` runs any scheduler (`genda.diffusion.schedulers`)
under `torch.inference_mode`; behaviour is added by hooks rather than flags:

- guidance wraps the model: `classifier_free_guidance(net, labels, null_label, w)` is an eps-model;
- `x0_hook=clip_x0()` clamps each predicted x_0 to [-1, 1] inside the scheduler's step;
- `callback(t, x_t)` sees every model input; `Trace(steps)` is one that keeps x_t at chosen t.

`ddpm_sample` / `ddim_sample` are the former one-call samplers, now thin wrappers of `sample`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch

from genda.diffusion.schedulers import (
    DDIMScheduler,
    DDPMScheduler,
    Scheduler,
    X0Hook,
    ddim_sigma,
    ddim_timesteps,
)

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Sampled = torch.Tensor | tuple[torch.Tensor, dict[int, torch.Tensor]]

__all__ = ["Trace", "classifier_free_guidance", "clip_x0", "ddim_sample", "ddim_sigma", "ddim_timesteps",
           "ddpm_sample", "sample"]


def _t(t: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((len(x),), t, dtype=torch.long, device=x.device)


@torch.inference_mode()
def sample(scheduler: Scheduler, eps_model: EpsModel, x_T: torch.Tensor,
           generator: torch.Generator | None = None, x0_hook: X0Hook | None = None,
           callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """x_0 from x_T: for each of `scheduler.timesteps`, callback(t, x_t), eps = eps_model(x_t, t),
    x = scheduler.step(eps, t, x_t, generator, x0_hook). Noise is drawn from `generator`."""
    scheduler.reset()
    x = x_T
    for t in scheduler.timesteps:
        if callback is not None:
            callback(t, x)
        x = scheduler.step(eps_model(x, _t(t, x)), t, x, generator, x0_hook=x0_hook)
    scheduler.reset()  # drop the multistep history (tensors) between samples
    return x


def clip_x0(lo: float = -1.0, hi: float = 1.0) -> X0Hook:
    """An x0_hook clamping the predicted x_0 to [lo, hi]."""
    return lambda x0: x0.clamp(lo, hi)


class Trace:
    """A callback keeping clones of the model inputs x_t at `steps`: `.states` = {t: x_t}."""

    def __init__(self, steps: Collection[int]) -> None:
        self.steps, self.states = set(steps), {}

    def __call__(self, t: int, x: torch.Tensor) -> None:
        if t in self.steps:
            self.states[t] = x.clone()


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


def _run(scheduler: Scheduler, eps_model: EpsModel, x_T: torch.Tensor, generator: torch.Generator | None,
         return_steps: Collection[int], clip: bool) -> Sampled:
    trace = Trace(return_steps) if return_steps else None
    x = sample(scheduler, eps_model, x_T, generator, clip_x0() if clip else None, trace)
    return (x, trace.states) if trace is not None else x


def ddpm_sample(eps_model: EpsModel, x_T: torch.Tensor, betas, generator: torch.Generator | None = None,
                return_steps: Collection[int] = (), clip_x0: bool = False) -> Sampled:
    """Ancestral sampling over all T steps (`DDPMScheduler`); `return_steps`: also return
    {t: x_t} for those timesteps; `clip_x0`: clamp the predicted x_0 to [-1, 1]."""
    return _run(DDPMScheduler(betas), eps_model, x_T, generator, return_steps, clip_x0)


def ddim_sample(eps_model: EpsModel, x_T: torch.Tensor, betas, num_steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, return_steps: Collection[int] = (),
                clip_x0: bool = False) -> Sampled:
    """DDIM over `ddim_timesteps(num_steps)` (`DDIMScheduler`), the last step to alpha_bar = 1."""
    return _run(DDIMScheduler(betas, num_steps, eta), eps_model, x_T, generator, return_steps, clip_x0)
