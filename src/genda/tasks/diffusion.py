"""Diffusion tasks: the class-conditional digit DDPM (eps-prediction, classifier-free guidance)
and the DDIM face problem (fixed noises, eta grid, slerp/lerp, MSE against ground truth).

The noise schedule is a non-persistent buffer; the loop's EMA copy of `net` is what
validate/sample/finalize see. Samplers come from `genda.diffusion`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from genda.diffusion import classifier_free_guidance, ddim_sample, ddim_timesteps, ddpm_sample, eps_loss, lerp, slerp
from genda.diffusion.schedules import make_betas
from genda.errors import CheckpointError, ConfigError, DataError
from genda.tasks.base import StepContext, Task


class _DiffusionBase(Task):
    """Shared parts: the schedule, the eps-loss step, the sampler choice and a fixed-seed val loss."""

    def __init__(self, net: nn.Module, optimizer: Callable, schedule: Mapping[str, Any],
                 sampler: Mapping[str, Any], ema_decay: float, seed: int, lr_schedule: str = "cosine",
                 warmup_steps: int = 0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("betas", make_betas(**dict(schedule)), persistent=False)
        self._optimizer, self.lr_schedule, self.warmup_steps = optimizer, lr_schedule, warmup_steps
        self.sampler = {"kind": "ddim", "num_steps": 50, "eta": 0.0, "guidance": 0.0, **dict(sampler)}
        if self.sampler["kind"] not in ("ddim", "ddpm"):
            raise ConfigError(f"sampler.kind={self.sampler['kind']!r}: use 'ddim' or 'ddpm'")
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
            return 0.5 * (1 + np.cos(np.pi * min(s, total) / total))

        return {"net": torch.optim.lr_scheduler.LambdaLR(optimizers["net"], lam)}

    def _device(self) -> torch.device:
        return self.betas.device

    def _noise(self, shape: Sequence[int], seed: int) -> torch.Tensor:
        """Standard normal noise, identical on every device for a seed."""
        return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(self._device())

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    def run_sampler(self, eps_model: Callable, x_T: torch.Tensor, seed: int, eta: float | None = None,
                    return_steps: Sequence[int] = ()):
        """The configured sampler (DDIM `num_steps`/`eta`, or DDPM over all T) from x_T."""
        gen = self._generator(seed)
        if self.sampler["kind"] == "ddpm":
            return ddpm_sample(eps_model, x_T, self.betas, gen, return_steps)
        eta = self.sampler["eta"] if eta is None else eta
        return ddim_sample(eps_model, x_T, self.betas, int(self.sampler["num_steps"]), float(eta), gen, return_steps)

    def visited_timesteps(self) -> list[int]:
        """Timesteps the configured sampler feeds the model, descending."""
        if self.sampler["kind"] == "ddpm":
            return list(range(len(self.betas)))[::-1]
        return ddim_timesteps(int(self.sampler["num_steps"]), len(self.betas))

    def _val_loss(self, ctx: StepContext, max_batches: int, conditional: bool) -> dict[str, float]:
        """eps-loss on up to `max_batches` val batches with fixed t and noise (comparable across steps)."""
        gen = torch.Generator().manual_seed(self.seed + 7)
        total, n = 0.0, 0
        for i, b in enumerate(ctx.batches("val")):
            if i >= max_batches:
                break
            kw = {"y": b["label"]} if conditional else {}
            total += float(eps_loss(self.net, b["image"].float(), self.betas, gen, **kw)) * len(b["image"])
            n += len(b["image"])
        return {"loss": total / max(1, n)}


def _describe(net: nn.Module) -> str:
    """Parameter count and module tree (the eps-models take (x, t[, y]), beyond torchinfo's probe)."""
    from genda.report.summary import count_params

    net = getattr(net, "module", net)
    return f"{type(net).__name__}: {count_params(net):,} parameters\n{net}"


def _grid_order(images: torch.Tensor, classes: int, per_class: int, cols: int) -> torch.Tensor:
    """First `cols` images of each class, class-major: a grid with rows = classes."""
    return images.view(classes, per_class, *images.shape[1:])[:, :cols].reshape(-1, *images.shape[1:])


class ConditionalDDPMTask(_DiffusionBase):
    """Class-conditional eps-prediction DDPM (course digits problem). Labels are dropped to the
    null class with probability `p_uncond` so sampling can use classifier-free guidance.

    sampler: {kind: ddim|ddpm, num_steps, eta, guidance}; evaluator: {ckpt, scale} (LeNet).
    """

    def __init__(self, net: nn.Module, optimizer: Callable, schedule: Mapping[str, Any],
                 sampler: Mapping[str, Any], evaluator: Mapping[str, Any], ema_decay: float = 0.999,
                 p_uncond: float = 0.1, num_classes: int = 10, images_per_class: int = 100,
                 sample_batch: int = 500, strip_points: int = 6, val_batches: int = 2, seed: int = 0,
                 lr_schedule: str = "cosine", warmup_steps: int = 0) -> None:
        super().__init__(net, optimizer, schedule, sampler, ema_decay, seed, lr_schedule, warmup_steps)
        self.p_uncond, self.num_classes = float(p_uncond), int(num_classes)
        self.images_per_class, self.sample_batch = int(images_per_class), int(sample_batch)
        self.strip_points, self.val_batches = int(strip_points), int(val_batches)
        self.evaluator = dict(evaluator)

    def training_step(self, batch: dict, ctx: StepContext) -> dict:
        y = batch["label"]
        drop = torch.rand(len(y), device=y.device) < self.p_uncond
        y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        loss = eps_loss(self.net, batch["image"], self.betas, y=y)
        ctx.update("net", loss)
        return {"loss": loss}

    def generate(self, labels: torch.Tensor, shape: Sequence[int], seed: int,
                 return_steps: Sequence[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Images (N, *shape) in [-1, 1] for `labels` (N,) with guidance; trace of the first chunk."""
        noise = self._noise((len(labels), *shape), seed)
        labels = labels.to(self._device())
        out, trace = [], {}
        for i, (z, y) in enumerate(zip(noise.split(self.sample_batch), labels.split(self.sample_batch), strict=True)):
            eps = classifier_free_guidance(self.net, y, self.num_classes, float(self.sampler["guidance"]))
            steps = return_steps if i == 0 else ()
            res = self.run_sampler(eps, z, seed + 1 + i, return_steps=steps)
            x, tr = res if steps else (res, {})
            out.append(x.float().clamp(-1, 1))
            trace.update(tr)
        return torch.cat(out), trace

    @staticmethod
    def _shape(ctx: StepContext) -> tuple[int, ...]:
        return tuple(ctx.data.split("val").images.shape[1:])

    @torch.no_grad()
    def validate(self, ctx: StepContext) -> dict[str, float]:
        return self._val_loss(ctx, self.val_batches, conditional=True)

    @torch.no_grad()
    def sample(self, ctx: StepContext) -> None:
        labels = torch.arange(self.num_classes).repeat_interleave(self.num_classes)
        x, _ = self.generate(labels, self._shape(ctx), self.seed)
        ctx.out.grid(f"samples/step_{ctx.step:07d}", x, nrow=self.num_classes)

    def _strip_steps(self) -> list[int]:
        """strip_points - 1 timesteps evenly over the sampler's path (the last point is the output)."""
        visited = self.visited_timesteps()
        idx = np.linspace(0, len(visited) - 1, self.strip_points - 1).round().astype(int)
        return [visited[i] for i in idx]

    @torch.no_grad()
    def finalize(self, ctx: StepContext) -> dict[str, float]:
        """`images/<digit>_<nnn>.png`, the digits x noises grid, the reverse-process strip of the
        first "0", and the LeNet evaluator's accuracy on the (8-bit) images."""
        k, n = self.num_classes, self.images_per_class
        labels = torch.arange(k).repeat_interleave(n)
        steps = self._strip_steps()
        x, trace = self.generate(labels, self._shape(ctx), self.seed, return_steps=steps)
        ctx.out.folder("images", x, [f"{d}_{j + 1:03d}.png" for d in range(k) for j in range(n)])
        cols = min(10, n)
        ctx.out.grid("grid", _grid_order(x, k, n, cols), nrow=cols)
        strip = torch.stack([trace[t][0].float() for t in steps] + [x[0]])
        ctx.out.grid("reverse_process", strip.clamp(-1, 1), nrow=len(strip))
        u8 = ctx.data.to_uint8(x).float() / 127.5 - 1.0  # what the saved PNGs hold
        pred = self._evaluator(ctx).predict(u8)
        correct = (pred == labels).float()
        per_digit = {str(d): float(correct[labels == d].mean()) for d in range(k)}
        metrics = {"accuracy": float(correct.mean()), "n_images": len(x)}
        ctx.out.json("eval", {**metrics, "per_digit": per_digit, "sampler": self.sampler,
                              "reverse_process_timesteps": [*steps, "output"],
                              "evaluator": self._evaluator_source, "data": ctx.data.info})
        return metrics

    def _evaluator(self, ctx: StepContext):
        from genda.data.domain import default_cache_dir
        from genda.metrics.accuracy import DigitEvaluator

        if self.evaluator.get("ckpt"):
            ev = DigitEvaluator.from_checkpoint(self.evaluator["ckpt"], self._device())
        else:
            d = ctx.data
            ev = DigitEvaluator.for_domain(d.domain_name, d.cache_dir or default_cache_dir(), self._device(),
                                           scale=str(self.evaluator.get("scale", "cpu")), data_dir=d.data_dir)
        self._evaluator_source = ev.source
        return ev

    def summaries(self) -> dict[str, str]:
        return {"net": _describe(self.net)}
