"""Diffusion tasks: the class-conditional digit DDPM (eps-prediction, classifier-free guidance)
and the DDIM face problem (fixed noises, eta grid, slerp/lerp, MSE against ground truth).

The noise schedule is a non-persistent buffer plus a `NoiseSchedule` (tables computed once, cached
per device, used by the loss); the loop's EMA copy of `net` is what validate/sample/finalize see.
Sampling is `genda.diffusion.sample` with a scheduler object (`sampler.kind` ddim | ddpm | dpmsolver,
or `sampler._target_` naming a scheduler class) and hooks for guidance, x_0 clipping and tracing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from genda.diffusion import (
    NoiseSchedule,
    Trace,
    classifier_free_guidance,
    clip_x0,
    eps_loss,
    lerp,
    sample,
    sampler_from_config,
    slerp,
)
from genda.diffusion.schedules import make_betas
from genda.errors import CheckpointError, ConfigError, DataError
from genda.kernel import progress
from genda.targets import register_target
from genda.tasks.base import StepContext, Task, sampling_time


class _DiffusionBase(Task):
    """Shared parts: the schedule, the eps-loss step, the sampler choice and a fixed-seed val loss."""

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
        """eps-loss on up to `max_batches` val batches with fixed t and noise (comparable across steps)."""
        gen = torch.Generator().manual_seed(self.seed + 7)
        total, n = 0.0, 0
        for i, b in enumerate(ctx.batches("val")):
            if i >= max_batches:
                break
            kw = {"y": b["label"]} if conditional else {}
            total += float(eps_loss(self.net, b["image"].float(), self.noise_schedule, gen, **kw)) * len(b["image"])
            n += len(b["image"])
        return {"loss": total / max(1, n)}


def _describe(net: nn.Module) -> str:
    """Parameter count and module tree (the eps-models take (x, t[, y]), beyond torchinfo's probe)."""
    from genda.viz.summary import count_params

    net = getattr(net, "module", net)
    return f"{type(net).__name__}: {count_params(net):,} parameters\n{net}"


def _grid_order(images: torch.Tensor, classes: int, per_class: int, cols: int) -> torch.Tensor:
    """First `cols` images of each class, class-major: a grid with rows = classes."""
    return images.view(classes, per_class, *images.shape[1:])[:, :cols].reshape(-1, *images.shape[1:])


@register_target
class ConditionalDDPMTask(_DiffusionBase):
    """Class-conditional eps-prediction DDPM (course digits problem). Labels are dropped to the
    null class with probability `p_uncond` so sampling can use classifier-free guidance.

    sampler: {kind: ddim|ddpm|dpmsolver, num_steps, eta, guidance, clip_x0}; evaluator: {ckpt, scale} (LeNet).
    """

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
        pred = self._evaluator(ctx).predict(u8)
        correct = (pred == labels).float()
        per_digit = {str(d): float(correct[labels == d].mean()) for d in range(k)}
        metrics = {"accuracy": float(correct.mean()), "n_images": len(x)}
        ctx.out.json("eval", {**metrics, **timing, "per_digit": per_digit, "sampler": self.sampler,
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


def _minmax(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max normalisation to [0, 1] (the course's way of saving DDIM outputs)."""
    flat = x.float().flatten(1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    return (x.float() - lo) / (hi - lo).clamp_min(1e-12)


def _to_u8(unit: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> uint8 exactly as torchvision's save_image quantises."""
    return (unit * 255 + 0.5).clamp(0, 255).to(torch.uint8)


def read_noise(path: Path, image_size: int | None = None) -> torch.Tensor:
    """One noise file -> (1, 3, H, W) float; a corrupt, non-tensor, misshapen or non-finite file
    is one DataError naming it (H = W = `image_size`, the run's noise size, when given)."""
    want = f"(1, 3, {image_size}, {image_size})" if image_size else "(1, 3, H, W)"
    try:
        z = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or a pickle of something else
        raise DataError(f"{path}: not a readable torch tensor file ({type(e).__name__}); expected a {want} "
                        f"noise saved with torch.save") from None
    if not isinstance(z, torch.Tensor):
        raise DataError(f"{path}: holds a {type(z).__name__}, not a tensor; expected a {want} noise tensor")
    if z.ndim not in (3, 4) or (z.ndim == 4 and z.shape[0] != 1) or z.shape[-3] != 3 or not z.is_floating_point():
        raise DataError(f"{path}: a {z.dtype} tensor of shape {tuple(z.shape)}; expected a float {want} noise")
    if image_size and tuple(z.shape[-2:]) != (image_size, image_size):
        raise DataError(f"{path}: noise of size {tuple(z.shape[-2:])}, this run samples {want} "
                        f"(model.image_size={image_size})")
    if not torch.isfinite(z).all():
        raise DataError(f"{path}: noise holds NaN or inf values; use finite noise (e.g. torch.randn)")
    return z.float().reshape(1, *z.shape[-3:])


def read_noise_dir(noise_dir: str | Path, image_size: int | None = None) -> tuple[list[Path], torch.Tensor]:
    """Every `*.pt` of a noise folder (sorted) -> files, (N, 3, H, W); all of one size."""
    folder = Path(noise_dir)
    if not folder.is_dir():
        raise DataError(f"--noise-dir {noise_dir}: folder not found")
    files = sorted(folder.glob("*.pt"))
    if not files:
        raise DataError(f"--noise-dir {noise_dir}: no .pt noise files")
    noises = [read_noise(f, image_size) for f in files]
    for f, z in zip(files, noises, strict=True):
        if z.shape != noises[0].shape:
            raise DataError(f"{f}: noise of shape {tuple(z.shape)} differs from {files[0].name}'s "
                            f"{tuple(noises[0].shape)} (mixed sizes in one noise folder)")
    return files, torch.cat(noises)


def load_course_unet(net: nn.Module, path: str) -> None:
    """Load eps-UNet weights strictly into `net`: the course's `UNet.pt` (a plain state dict), or a
    trained genda `ddim_faces` run (its run dir or a `.ckpt`; EMA weights where kept), so runs that
    differ only in sampling keys (an eta sweep) reuse one trained model. Only tensors are read."""
    p = Path(path)
    if p.is_dir():
        from genda.train import checkpoint as ckpt_io

        state = _net_of_run(ckpt_io.load(ckpt_io.resolve_in_run_dir(p, "last")), path)
        return _strict_load(net, state, path)
    if not p.is_file():
        raise CheckpointError(f"model.ckpt: file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"model.ckpt: cannot read {path}: {type(e).__name__}") from None
    if isinstance(state, dict) and "modules" in state and "format" in state:  # a genda checkpoint
        from genda.train import checkpoint as ckpt_io

        state = _net_of_run(ckpt_io.load(p), path)
    _strict_load(net, state, path)


def _net_of_run(ckpt: dict, path: str) -> dict:
    state = (ckpt.get("ema") or {}).get("net") or ckpt["modules"].get("net")
    if state is None:
        raise CheckpointError(f"model.ckpt: {path} holds no network 'net' (not a diffusion run?)")
    return state


def _strict_load(net: nn.Module, state: dict, path: str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise CheckpointError(f"model.ckpt: {path} does not match DDIMUNet with the configured model.net "
                              f"sizes (the course's UNet.pt needs model=ddim): {first}") from None


@register_target
class DDIMFaceTask(_DiffusionBase):
    """The course's DDIM problem: an eps-UNet (the course `UNet.pt` via `ckpt`, else trained here as a
    small unconditional face DDPM), 10 fixed noises, DDIM images, the eta grid, slerp/lerp rows and
    the MSE against ground-truth PNGs. With `ckpt` set, training steps do nothing."""

    def __init__(self, net: nn.Module, optimizer: Callable, schedule: Mapping[str, Any],
                 sampler: Mapping[str, Any], ckpt: str | None = None, noise_dir: str | None = None,
                 gt_dir: str | None = None, num_noises: int = 10, image_size: int = 64,
                 eta_grid: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), eta_grid_noises: int = 4,
                 interp_points: int = 11, ema_decay: float = 0.999, val_batches: int = 2, seed: int = 0,
                 lr_schedule: str = "cosine", warmup_steps: int = 0) -> None:
        super().__init__(net, optimizer, schedule, sampler, 0.0 if ckpt else ema_decay, seed,
                         lr_schedule, warmup_steps)
        self.ckpt, self.noise_dir, self.gt_dir = ckpt, noise_dir, gt_dir
        self.num_noises, self.image_size = int(num_noises), int(image_size)
        self.eta_grid, self.eta_grid_noises = [float(e) for e in eta_grid], int(eta_grid_noises)
        self.interp_points, self.val_batches = int(interp_points), int(val_batches)
        if ckpt:
            load_course_unet(self.net, ckpt)

    def training_step(self, batch: dict, ctx: StepContext) -> dict:
        if self.ckpt:
            return {}
        loss = eps_loss(self.net, batch["image"], self.noise_schedule)
        ctx.update("net", loss)
        return {"loss": loss}

    @torch.no_grad()
    def validate(self, ctx: StepContext) -> dict[str, float]:
        return {} if self.ckpt else self._val_loss(ctx, self.val_batches, conditional=False)

    def noises(self, ctx: StepContext) -> torch.Tensor:
        """(N, 3, H, W): the user's `noise_dir/00.pt...` or fresh seeded noises saved as `noise/00.pt...`."""
        if self.noise_dir:
            return torch.cat([self._read_noise(Path(self.noise_dir) / f"{i:02d}.pt")
                              for i in range(self.num_noises)]).to(self._device())
        z = self._noise((self.num_noises, 3, self.image_size, self.image_size), self.seed)
        for i in range(self.num_noises):
            torch.save(z[i:i + 1].cpu().clone(), ctx.out.path(f"noise/{i:02d}.pt"))
        return z

    def _read_noise(self, path: Path) -> torch.Tensor:
        if not path.is_file():
            raise DataError(f"model.noise_dir: missing noise file {path}")
        return read_noise(path)  # any H x W the UNet takes: the course's noises are 256x256

    def export_images(self, n: int, seed: int, noise_dir: str | None = None):
        """`python -m genda.sample`: one DDIM image per `noise_dir/NN.pt` (min-max normalised), or
        n images from seeded noise when no noise folder is given."""
        if noise_dir:
            files, z = read_noise_dir(noise_dir)
            z = z.to(self._device())
            names = [f"{f.stem}.png" for f in files]
        else:
            z = self._noise((n, 3, self.image_size, self.image_size), seed)
            names = [f"{i:02d}.png" if n <= 100 else f"{i:04d}.png" for i in range(n)]
        try:
            images = self._ddim(z)
        except RuntimeError as e:  # a noise size the UNet's down/up-sampling cannot take
            if not noise_dir:
                raise
            raise DataError(f"--noise-dir {noise_dir}: noises of size {tuple(z.shape[-2:])} do not fit this "
                            f"UNet ({str(e).splitlines()[0][:80]}); its own noises are {self.image_size}x"
                            f"{self.image_size}") from None
        if not torch.isfinite(images).all():
            raise DataError(f"--noise-dir {noise_dir}: sampling gave NaN/inf images (check the noises and the run)")
        return _minmax(images) * 2 - 1, names, "minmax"

    def _ddim(self, z: torch.Tensor, eta: float | None = None) -> torch.Tensor:
        return torch.cat([self.run_sampler(self.net, c, self.seed + 1 + i, eta=eta).float()
                          for i, c in enumerate(z.split(self.num_noises))])

    @torch.no_grad()
    def sample(self, ctx: StepContext) -> None:
        z = self._noise((min(8, self.num_noises), 3, self.image_size, self.image_size), self.seed)
        ctx.out.grid(f"samples/step_{ctx.step:07d}", _minmax(self._ddim(z)), value_range=(0, 1))

    @torch.no_grad()
    def finalize(self, ctx: StepContext) -> dict[str, float]:
        """`ddim/00.png...` at sampler.eta, the eta grid, slerp/lerp rows, MSE vs `gt_dir` if given."""
        z = self.noises(ctx)
        t0 = time.perf_counter()
        x = _minmax(self._ddim(z))
        timing = sampling_time(len(x), time.perf_counter() - t0)
        ctx.out.folder("ddim", x, [f"{i:02d}.png" for i in range(len(x))], value_range=(0, 1))
        k = min(self.eta_grid_noises, len(z))
        rows = [_minmax(self._ddim(z[:k], eta=e)) for e in self.eta_grid]
        ctx.out.grid("eta_grid", torch.cat(rows), nrow=k, value_range=(0, 1))
        ctx.out.labelled("eta_grid", torch.cat(rows), k, row_labels=[f"η = {e:g}" for e in self.eta_grid],
                         col_labels=[f"noise {i:02d}" for i in range(k)], value_range=(0, 1),
                         title=f"DDIM-{int(self.sampler['num_steps'])}: rows = η, columns = noise")
        alphas = np.linspace(0.0, 1.0, self.interp_points).tolist()
        for name, fn in (("slerp", slerp), ("lerp", lerp)):
            zs = torch.cat([fn(z[0:1], z[1:2], a) for a in alphas])
            row = _minmax(self._ddim(zs, eta=0.0))
            ctx.out.grid(name, row, nrow=len(alphas), value_range=(0, 1))
            ctx.out.labelled(name, row, len(alphas), col_labels=[f"α={a:.1f}" for a in alphas],
                             value_range=(0, 1), title=f"{name} between noise 00 (α=0) and 01 (α=1), η = 0")
        metrics: dict[str, float] = {"eta": float(self.sampler["eta"]), "num_steps": int(self.sampler["num_steps"])}
        if self.gt_dir:
            metrics["mse"] = self._mse(_to_u8(x.cpu()))
        ctx.out.json("eval", {**metrics, **timing, "eta_grid": self.eta_grid, "interp_alphas": alphas,
                              "noise": self.noise_dir or f"noise/ (generated, seed {self.seed})",
                              "weights": self.ckpt or "trained in this run (EMA)", "gt_dir": self.gt_dir})
        return metrics

    def _mse(self, pred: torch.Tensor) -> float:
        """Mean over images of the per-image MSE on 0-255 pixels against `gt_dir/00.png...`."""
        errs = []
        for i, p in enumerate(pred):
            path = Path(self.gt_dir) / f"{i:02d}.png"
            if not path.is_file():
                raise DataError(f"model.gt_dir: missing ground-truth image {path}")
            with Image.open(path) as im:
                gt = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)
            if gt.shape != p.shape:
                raise DataError(f"{path}: size {tuple(gt.shape)} differs from the DDIM output {tuple(p.shape)}")
            errs.append(float(((gt.double() - p.double()) ** 2).mean()))
        return float(np.mean(errs))

    def summaries(self) -> dict[str, str]:
        return {"net": _describe(self.net)}
