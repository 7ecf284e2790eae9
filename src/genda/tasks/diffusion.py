"""The class-conditional digit DDPM (course digits problem): eps-prediction with classifier-free
guidance, the 10x10 grid, the reverse-process strip and the LeNet evaluator's digit accuracy.

The evaluator is only loaded here, never trained: `metrics.classifier.ckpt=PATH` (a genda
classifier checkpoint or the course's Classifier.pth), else the cached LeNet that
`python -m genda.evaluate train-evaluator --domain D --scale S` trained; without it the
accuracy is skipped with one line and a note in eval.json. The shared base is
genda.tasks.diffusion_base; the DDIM face task is genda.tasks.ddim_faces (re-exported here under
its former name, which configs stored in older checkpoints use).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from genda.diffusion import classifier_free_guidance, eps_loss
from genda.errors import ConfigError
from genda.kernel import progress
from genda.targets import register_target
from genda.tasks import ddim_faces
from genda.tasks.base import StepContext, sampling_time
from genda.tasks.ddim_faces import load_course_unet, read_noise, read_noise_dir  # noqa: F401 - former home
from genda.tasks.diffusion_base import DiffusionBase, describe_net

_log = logging.getLogger("genda")


def _grid_order(images: torch.Tensor, classes: int, per_class: int, cols: int) -> torch.Tensor:
    """First `cols` images of each class, class-major: a grid with rows = classes."""
    return images.view(classes, per_class, *images.shape[1:])[:, :cols].reshape(-1, *images.shape[1:])


@register_target
class ConditionalDDPMTask(DiffusionBase):
    """Class-conditional eps-prediction DDPM (course digits problem). Labels are dropped to the
    null class with probability `p_uncond` so sampling can use classifier-free guidance.

    sampler: {kind: ddim|ddpm|dpmsolver, num_steps, eta, guidance, clip_x0}; evaluator: {ckpt, scale} (LeNet).
    """

    ARTEFACTS = {  # the report's roles (artifacts/index.json); the labelled grid when drawn
        "ddpm_grid": ("grid_labelled.png", "grid.png"),
        "ddpm_strip": ("reverse_process_labelled.png", "reverse_process.png"),
    }

    def __init__(self, net: nn.Module, optimizer: Callable, schedule: Mapping[str, Any],
                 sampler: Mapping[str, Any], evaluator: Mapping[str, Any], ema_decay: float = 0.999,
                 p_uncond: float = 0.1, num_classes: int = 10, images_per_class: int = 100,
                 sample_batch: int = 500, strip_points: int = 6, val_batches: int = 2, seed: int = 0,
                 lr_schedule: str = "cosine", warmup_steps: int = 0, image_size: int = 28,
                 min_snr_gamma: float | None = None) -> None:
        super().__init__(net, optimizer, schedule, sampler, ema_decay, seed, lr_schedule, warmup_steps)
        self.min_snr_gamma = min_snr_gamma
        self.image_size = int(image_size)
        self.p_uncond, self.num_classes = float(p_uncond), int(num_classes)
        self.images_per_class, self.sample_batch = int(images_per_class), int(sample_batch)
        self.strip_points, self.val_batches = int(strip_points), int(val_batches)
        self.evaluator = dict(evaluator)

    def training_step(self, batch: dict, ctx: StepContext) -> dict:
        y = batch["label"]
        drop = torch.rand(len(y), device=y.device) < self.p_uncond
        y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        loss = eps_loss(self.net, batch["image"], self.noise_schedule, y=y, min_snr_gamma=self.min_snr_gamma)
        ctx.update("net", loss)
        return {"loss": loss}

    def generate(self, labels: torch.Tensor, shape: Sequence[int], seed: int,
                 return_steps: Sequence[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Images (N, *shape) in [-1, 1] for `labels` (N,) with guidance; trace of the first chunk."""
        noise = self._noise((len(labels), *shape), seed)
        labels = labels.to(self._device())
        out, trace = [], {}
        chunks = list(zip(noise.split(self.sample_batch), labels.split(self.sample_batch), strict=True))
        for i, (z, y) in enumerate(progress(chunks, f"sampling {len(labels)} images")):
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

    def export_images(self, n: int, seed: int, noise_dir: str | None = None):
        """`python -m genda.sample`: n/10 images per digit named `<digit>_<nnn>.png`."""
        if noise_dir is not None:
            raise ConfigError("--noise-dir is for DDIM runs; the DDPM samples its own noise")
        per = max(1, n // self.num_classes)
        labels = torch.arange(self.num_classes).repeat_interleave(per)
        shape = (self.net.in_channels, self.image_size, self.image_size)
        x, _ = self.generate(labels, shape, seed)
        names = [f"{d}_{j + 1:03d}.png" for d in range(self.num_classes) for j in range(per)]
        return x, names, "clamp"

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
        t0 = time.perf_counter()
        x, trace = self.generate(labels, self._shape(ctx), self.seed, return_steps=steps)
        timing = sampling_time(len(x), time.perf_counter() - t0)
        ctx.out.folder("images", x, [f"{d}_{j + 1:03d}.png" for d in range(k) for j in range(n)])
        cols = min(10, n)
        grid = _grid_order(x, k, n, cols)
        ctx.out.grid("grid", grid, nrow=cols)
        ctx.out.labelled("grid", grid, cols, row_labels=[f"digit {d}" for d in range(k)],
                         col_labels=[f"noise {j}" for j in range(cols)],
                         title=f"Conditional DDPM: rows = digit, columns = noise "
                               f"(guidance w={float(self.sampler['guidance']):g})")
        strip = torch.stack([trace[t][0].float() for t in steps] + [x[0]])
        ctx.out.grid("reverse_process", strip.clamp(-1, 1), nrow=len(strip))
        ctx.out.labelled("reverse_process", strip.clamp(-1, 1), len(strip),
                         col_labels=[f"t={t}" for t in steps] + ["output"],
                         title='Reverse process of the first "0" (x_t per timestep)')
        u8 = ctx.data.to_uint8(x).float() / 127.5 - 1.0  # what the saved PNGs hold
        ev, skipped = self._evaluator(ctx)
        record: dict[str, Any]
        if ev is None:  # no trained evaluator: everything but the score
            metrics: dict[str, float] = {"n_images": len(x)}
            record = {"accuracy": None, "n_images": len(x), **timing, "sampler": self.sampler,
                      "reverse_process_timesteps": [*steps, "output"], "evaluator": None,
                      "accuracy_skipped": skipped}
        else:
            correct = (ev.predict(u8) == labels).float()
            per_digit = {str(d): float(correct[labels == d].mean()) for d in range(k)}
            metrics = {"accuracy": float(correct.mean()), "n_images": len(x)}
            record = {**metrics, **timing, "per_digit": per_digit, "sampler": self.sampler,
                      "reverse_process_timesteps": [*steps, "output"], "evaluator": ev.source}
        ctx.out.json("eval", {**record, "data": ctx.data.info})
        return metrics

    def _evaluator(self, ctx: StepContext):
        """(the LeNet evaluator, None) or (None, why the accuracy is skipped). `evaluator.ckpt` (the
        user's metrics.classifier.ckpt) must load; the cached one is only looked up, never trained."""
        from genda.data.domain import default_cache_dir
        from genda.metrics.accuracy import DigitEvaluator, EvaluatorNotTrained

        if self.evaluator.get("ckpt"):
            return DigitEvaluator.from_checkpoint(self.evaluator["ckpt"], self._device()), None
        d = ctx.data
        try:
            return DigitEvaluator.for_domain(d.domain_name, d.cache_dir or default_cache_dir(), self._device(),
                                             scale=str(self.evaluator.get("scale", "cpu")), data_dir=d.data_dir), None
        except EvaluatorNotTrained as e:
            why = (f"digit accuracy skipped: {e}; then re-score this run with "
                   f"`python -m genda.evaluate run RUN_DIR`")
            if getattr(ctx.out, "enabled", True):
                print(f"[genda] {why}", file=sys.stderr, flush=True)
                _log.warning(why)
            return None, why

    def summaries(self) -> dict[str, str]:
        return {"net": describe_net(self.net)}



@register_target
class DDIMFaceTask(ddim_faces.DDIMFaceTask):
    """genda.tasks.ddim_faces.DDIMFaceTask under its former name: configs stored in checkpoints
    written before the split name `genda.tasks.diffusion.DDIMFaceTask`, and still build."""
