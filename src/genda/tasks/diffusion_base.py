"""What the diffusion tasks share (genda.tasks.diffusion: the digit DDPM; genda.tasks.ddim_faces:
the DDIM face problem): the noise schedule, the eps-loss step, the sampler and a fixed-seed val loss.

The noise schedule is a non-persistent buffer plus a `NoiseSchedule` (tables computed once, cached
per device, used by the loss); the loop's EMA copy of `net` is what validate/sample/finalize see.
Sampling is `genda.diffusion.sample` with a scheduler object (`sampler.kind` ddim | ddpm | dpmsolver,
or `sampler._target_` naming a scheduler class) and hooks for guidance, x_0 clipping and tracing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from genda.diffusion import NoiseSchedule, Trace, clip_x0, eps_loss, sample, sampler_from_config
from genda.diffusion.process import EpsFromV
from genda.diffusion.schedules import make_betas
from genda.errors import ConfigError
from genda.tasks.base import StepContext, Task


class DiffusionBase(Task):
    """Shared parts: the schedule, the eps-loss step, the sampler choice and a fixed-seed val loss.
    `prediction` is what `net` outputs: "eps", or "v" (a subclass that trains v-nets sets it;
    `eps_model` is then the eps view every sampler takes)."""

    prediction = "eps"
    min_snr_gamma: float | None = None  # Min-SNR-gamma loss weights (a subclass sets it; None: plain MSE)

    def __init__(self, net: nn.Module, optimizer: Callable, schedule: Mapping[str, Any],
                 sampler: Mapping[str, Any], ema_decay: float, seed: int, lr_schedule: str = "cosine",
                 warmup_steps: int = 0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("betas", make_betas(**dict(schedule)), persistent=False)
        self.noise_schedule = NoiseSchedule(self.betas)
        self._optimizer, self.lr_schedule, self.warmup_steps = optimizer, lr_schedule, warmup_steps
        self.sampler, self.scheduler = sampler_from_config(sampler, self.noise_schedule)
        self.ema = {"net": float(ema_decay)} if ema_decay else {}
        self.seed = seed

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": self._optimizer(self.net.parameters())}

    def configure_schedulers(self, optimizers, max_steps):
        if self.lr_schedule == "none":
            return {}
        if self.lr_schedule != "cosine":
            raise ConfigError(f"model.lr_schedule={self.lr_schedule!r}: use 'cosine' or 'none'")
        warm, total = self.warmup_steps, max(1, max_steps)

        def lam(s: int) -> float:
            if s < warm:
                return (s + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(s, total) / total))  # a Python float: checkpoints load weights_only

        return {"net": torch.optim.lr_scheduler.LambdaLR(optimizers["net"], lam)}

    def _device(self) -> torch.device:
        return self.betas.device

    @property
    def eps_model(self) -> Callable[..., torch.Tensor]:
        """`net` as an eps-model for the samplers (a v-net through `EpsFromV`)."""
        return self.net if self.prediction == "eps" else EpsFromV(self.net, self.noise_schedule)

    def _noise(self, shape: Sequence[int], seed: int) -> torch.Tensor:
        """Standard normal noise, identical on every device for a seed."""
        return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(self._device())

    def run_sampler(self, eps_model: Callable, x_T: torch.Tensor, seed: int, eta: float | None = None,
                    return_steps: Sequence[int] = ()):
        """The configured scheduler from x_T (DDIM at `eta` if given), with the x_0-clip hook if
        `clip_x0`; with `return_steps`, also {t: x_t} for those timesteps."""
        sched = self.scheduler
        if eta is not None and hasattr(sched, "eta") and float(eta) != sched.eta:
            sched = sched.replace(eta=float(eta))
        trace = Trace(return_steps) if return_steps else None
        hook = clip_x0() if self.sampler["clip_x0"] else None
        x = sample(sched, eps_model, x_T, torch.Generator().manual_seed(seed), x0_hook=hook, callback=trace)
        return (x, trace.states) if trace is not None else x

    def visited_timesteps(self) -> list[int]:
        """Timesteps the configured sampler feeds the model, descending."""
        return list(self.scheduler.timesteps)

    def _val_loss(self, ctx: StepContext, max_batches: int, conditional: bool) -> dict[str, float]:
        """The training loss (its target and Min-SNR weights, so train and val read alike) on up to
        `max_batches` val batches with fixed t and noise (comparable across steps)."""
        gen = torch.Generator().manual_seed(self.seed + 7)
        total, n = 0.0, 0
        for i, b in enumerate(ctx.batches("val")):
            if i >= max_batches:
                break
            kw = {"y": b["label"]} if conditional else {}
            loss = eps_loss(self.net, b["image"].float(), self.noise_schedule, gen, self.min_snr_gamma,
                            self.prediction, **kw)
            total += float(loss) * len(b["image"])
            n += len(b["image"])
        return {"loss": total / max(1, n)}


def describe_net(net: nn.Module) -> str:
    """Parameter count and module tree (the eps-models take (x, t[, y]), beyond torchinfo's probe)."""
    from genda.viz.summary import count_params

    net = getattr(net, "module", net)
    return f"{type(net).__name__}: {count_params(net):,} parameters\n{net}"
