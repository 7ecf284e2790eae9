"""The course's DDIM face problem: an eps-UNet (the course's `UNet.pt`, a trained genda run, or
trained here as a small unconditional face DDPM), fixed noises, DDIM images, the eta grid,
slerp/lerp rows and the MSE against ground-truth PNGs; plus the noise-file and UNet readers
`python -m genda.sample` uses. The shared base is genda.tasks.diffusion_base.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genda.diffusion import eps_loss, lerp, slerp
from genda.diffusion.process import PREDICTIONS
from genda.errors import CheckpointError, ConfigError, DataError
from genda.kernel import load_checkpoint, resolve_in_run_dir
from genda.metrics.mse import mse_to_reference
from genda.targets import register_target
from genda.tasks.base import Every, StepContext, sampling_time
from genda.tasks.diffusion_base import DiffusionBase, describe_net
from genda.viz.images import to_unit


def _minmax(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max normalisation to [0, 1] (the course's way of saving DDIM outputs)."""
    return to_unit(x, normalize="minmax")


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


def load_course_unet(net: nn.Module, path: str) -> str | None:
    """Load eps-UNet weights strictly into `net`: the course's `UNet.pt` (a plain state dict), or a
    trained genda `ddim_faces` run (its run dir or a `.ckpt`; EMA weights where kept), so runs that
    differ only in sampling keys (an eta sweep) reuse one trained model. Only tensors are read.
    Returns what a genda run's net predicts (its saved `model.prediction`: "eps" or "v"), None for
    a plain state dict (the course's UNet.pt, an eps-net); the task samples the net as that."""
    p = Path(path)
    if p.is_dir():
        return _load_run(net, load_checkpoint(resolve_in_run_dir(p, "last")), path)
    if not p.is_file():
        raise CheckpointError(f"model.ckpt: file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"model.ckpt: cannot read {path}: {type(e).__name__}") from None
    if isinstance(state, dict) and "modules" in state and "format" in state:  # a genda checkpoint
        return _load_run(net, load_checkpoint(p), path)
    _strict_load(net, state, path)
    return None


def _load_run(net: nn.Module, ckpt: dict, path: str) -> str:
    """A genda run's EMA (else live) net into `net`; returns what it predicts."""
    _strict_load(net, _net_of_run(ckpt, path), path)
    return _prediction_of_run(ckpt)


def _net_of_run(ckpt: dict, path: str) -> dict:
    state = (ckpt.get("ema") or {}).get("net") or ckpt["modules"].get("net")
    if state is None:
        raise CheckpointError(f"model.ckpt: {path} holds no network 'net' (not a diffusion run?)")
    return state


def _prediction_of_run(ckpt: dict) -> str:
    """The saved run's `model.prediction` (runs from before the key predict eps). The config is
    read as plain YAML data: nothing in it is instantiated."""
    import yaml

    try:
        model = (yaml.safe_load(ckpt.get("config") or "") or {}).get("model") or {}
    except yaml.YAMLError:
        model = {}
    prediction = str(model.get("prediction", "eps")) if isinstance(model, dict) else "eps"
    if prediction not in PREDICTIONS:
        raise CheckpointError(f"model.ckpt: the run's saved model.prediction={prediction!r} is none of "
                              f"{', '.join(PREDICTIONS)}")
    return prediction


def _strict_load(net: nn.Module, state: dict, path: str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise CheckpointError(f"model.ckpt: {path} does not match DDIMUNet with the configured model.net "
                              f"sizes (the course's UNet.pt needs model=ddim): {first}") from None


@register_target
class DDIMFaceTask(DiffusionBase):
    """The course's DDIM problem: an eps-UNet (the course `UNet.pt` via `ckpt`, else trained here as a
    small unconditional face DDPM), 10 fixed noises, DDIM images, the eta grid, slerp/lerp rows and
    the MSE against ground-truth PNGs. With `ckpt` set, training steps do nothing."""

    ARTEFACTS = {  # the report's roles (artifacts/index.json)
        "ddim_images": Every("ddim/*.png"),  # ddim/00.png...: the rows of the assembled eta grid
        "ddim_eta_grid": ("eta_grid_labelled.png", "eta_grid.png"),
        "ddim_slerp": ("slerp_labelled.png", "slerp.png"),
        "ddim_lerp": ("lerp_labelled.png", "lerp.png"),
    }

    def __init__(self, net: nn.Module, optimizer: Callable, schedule: Mapping[str, Any],
                 sampler: Mapping[str, Any], ckpt: str | None = None, noise_dir: str | None = None,
                 gt_dir: str | None = None, num_noises: int = 10, image_size: int = 64,
                 eta_grid: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), eta_grid_noises: int = 4,
                 interp_points: int = 11, ema_decay: float = 0.999, val_batches: int = 2, seed: int = 0,
                 lr_schedule: str = "cosine", warmup_steps: int = 0, face_samples: int = 0,
                 min_snr_gamma: float | None = None, prediction: str = "eps") -> None:
        super().__init__(net, optimizer, schedule, sampler, 0.0 if ckpt else ema_decay, seed,
                         lr_schedule, warmup_steps)
        if prediction not in PREDICTIONS:
            raise ConfigError(f"model.prediction={prediction!r}: use one of {', '.join(PREDICTIONS)}")
        self.min_snr_gamma = min_snr_gamma
        self.face_samples = int(face_samples)  # extra eta=0 samples for the face score (0: the ddim/ images)
        self.ckpt, self.noise_dir, self.gt_dir = ckpt, noise_dir, gt_dir
        self.num_noises, self.image_size = int(num_noises), int(image_size)
        self.eta_grid, self.eta_grid_noises = [float(e) for e in eta_grid], int(eta_grid_noises)
        self.interp_points, self.val_batches = int(interp_points), int(val_batches)
        saved = load_course_unet(self.net, ckpt) if ckpt else None  # None: the course's UNet.pt or none
        # a loaded net predicts what it was trained to (a genda run's saved setting; UNet.pt: eps)
        self.prediction = saved or ("eps" if ckpt else prediction)
        if self.sampler.get("clip_x0") is None:  # auto: clip x0 for a net genda trained, never for UNet.pt
            self.sampler["clip_x0"] = saved is not None or not ckpt

    def training_step(self, batch: dict, ctx: StepContext) -> dict:
        if self.ckpt:
            return {}
        loss = eps_loss(self.net, batch["image"], self.noise_schedule, min_snr_gamma=self.min_snr_gamma,
                        prediction=self.prediction)
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
        return torch.cat([self.run_sampler(self.eps_model, c, self.seed + 1 + i, eta=eta).float()
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
            metrics["mse"] = mse_to_reference(_to_u8(x.cpu()), self.gt_dir, key="model.gt_dir")
        from genda.metrics.face_score import FaceScore

        detector = FaceScore(x.device, detector="hog")
        metrics.update(self._face_score(x, z, detector))
        metrics.update(self._real_face_score(ctx.data, detector))
        ctx.out.json("eval", {**metrics, **timing, "face_detector": "hog", "eta_grid": self.eta_grid, "interp_alphas": alphas,
                              "noise": self.noise_dir or f"noise/ (generated, seed {self.seed})",
                              "weights": self.ckpt or "trained in this run (EMA)", "prediction": self.prediction,
                              "gt_dir": self.gt_dir})
        return metrics

    def _face_score(self, x: torch.Tensor, z: torch.Tensor, detector) -> dict[str, float]:
        """The course's HOG face score (% of images with exactly one face) of η = 0 samples: the
        ddim/ images `x` of the noises `z` when `face_samples` is 0, else that many fresh seeded noises sampled at η = 0."""
        if self.face_samples:
            z = self._noise((self.face_samples, 3, self.image_size, self.image_size), self.seed + 1)
            x = torch.cat([_minmax(self._ddim(c, eta=0.0)) for c in z.split(50)])
        elif float(self.sampler["eta"]) != 0.0:
            x = _minmax(self._ddim(z, eta=0.0))
        score = detector(_to_u8(x.cpu()))["face_score"]
        return {"face_score_hog": float(score), "face_scored": len(x)}

    def _real_face_score(self, data, detector) -> dict[str, float]:
        """The same HOG score of the first 500 real val images at this run's image size (the
        ceiling for its samples: 64x64 faces score about 62 %, the same faces at 32x32 about 39 %),
        cached like the GANs' reference score; {} without a data module."""
        from genda.metrics.images import val_reference

        if data is None:
            return {}
        fields, real = val_reference(data, 500)
        score = detector.reference_score(fields, lambda: real, data.cache_dir)
        return {"face_score_real_hog": float(score["face_score"])}

    def summaries(self) -> dict[str, str]:
        return {"net": describe_net(self.net)}
