"""The course's VAE: reconstruction MSE + kl_weight * KL(q(z|x) || N(0, I)), optional KL warm-up."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genda.errors import ConfigError
from genda.kernel import progress
from genda.metrics.images import ImageEvaluator, ImageProtocol
from genda.targets import register_target
from genda.tasks.base import StepContext, Task, sampling_time
from genda.tasks.gan import fixed_noise, unwrap

PREFERRED_ATTRIBUTE = "Blond_Hair"


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dims, averaged over the batch. mu: (B, D)."""
    kl = -0.5 * (1 + logvar.float() - mu.float() ** 2 - logvar.float().exp()).sum(1)
    return kl.mean()


def recon_mse(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error over pixels: (B, C, H, W) x2 -> (B,)."""
    return (recon.float() - x.float()).pow(2).flatten(1).mean(1)


@register_target
class VAETask(Task):
    """Trains `net` (x -> recon, mu, logvar). kl_warmup: fraction of training over which the KL
    weight ramps linearly from 0 to `kl_weight` (0: no warm-up)."""

    ARTEFACTS = {  # the report's roles (artifacts/index.json)
        "vae_recon": ("reconstructions.png",),
        "vae_recon_mse": ("reconstruction_mse.json",),
        "vae_samples": ("samples32.png",),
        "vae_tsne": ("tsne.png",),
        "vae_curves": ("curves.png",),
        "vae_latents": ("latents.npz",),
    }
    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, net: nn.Module, optimizer: Callable, kl_weight: float = 1e-4, kl_warmup: float = 0.0,
                 fid: Mapping[str, Any] | None = None, n_real: int | None = None, n_images: int = 1000,
                 face_score: bool | None = None, cache_dir: str | None = None, n_show: int = 10,
                 seed: int = 0, face: Mapping[str, Any] | None = None,
                 tsne_attribute: str | None = PREFERRED_ATTRIBUTE) -> None:
        super().__init__()
        if not 0.0 <= kl_warmup <= 1.0:
            raise ConfigError(f"model.kl_warmup={kl_warmup}: a fraction of training in [0, 1]")
        self.net, self._optimizer = net, optimizer
        self.kl_weight, self.kl_warmup = kl_weight, kl_warmup
        self.evaluator = ImageEvaluator(ImageProtocol.from_config(fid, n_real, face_score, cache_dir, face))
        self.n_images, self.n_show, self.seed = n_images, n_show, seed
        self.tsne_attribute = tsne_attribute

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": self._optimizer(self.net.parameters())}

    def beta(self, progress: float) -> float:
        """KL weight at training progress p in [0, 1]."""
        if not self.kl_warmup:
            return self.kl_weight
        return self.kl_weight * min(1.0, progress / self.kl_warmup)

    def training_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        x = batch["image"]
        recon, mu, logvar = self.net(x)
        rec = F.mse_loss(recon.float(), x.float())
        kl = kl_divergence(mu, logvar)
        beta = self.beta(ctx.progress)
        loss = rec + beta * kl
        ctx.update("net", loss)
        return {"loss": loss.detach(), "recon": rec.detach(), "kl": kl.detach(), "kl_weight": beta}

    @torch.no_grad()
    def validate(self, ctx: StepContext) -> dict[str, float]:
        """Val recon MSE (decoding the mean), KL and the loss at full KL weight."""
        rec = kl = 0.0
        n = 0
        for b in ctx.batches("val"):
            recon, mu, logvar = self.net(b["image"])
            rec += float(recon_mse(recon, b["image"]).sum())
            kl += float(kl_divergence(mu, logvar)) * len(mu)
            n += len(mu)
        return {"recon": rec / n, "kl": kl / n, "loss": (rec + self.kl_weight * kl) / n}

    # -- final artefacts -------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def generate(self, n: int, seed: int, chunk: int = 250) -> torch.Tensor:
        """n decoded prior samples z ~ N(0, I): (n, C, H, W) in [-1, 1]."""
        z = fixed_noise(n, self.net.latent_dim, seed, self._device())
        return torch.cat([self.net.decode(c).float()
                          for c in progress(z.split(chunk), f"decoding {len(z)} samples")])

    def export_images(self, n: int, seed: int, noise_dir: str | None = None):
        """`python -m genda.sample`: n images named 0000.png, ... from noise `seed`."""
        if noise_dir is not None:
            raise ConfigError("--noise-dir is for DDIM runs; this run samples its own noise")
        return self.generate(n, seed), [f"{i:04d}.png" for i in range(n)], "clamp"

    def _reconstructions(self, ctx: StepContext) -> dict[str, float]:
        x = next(iter(ctx.batches("val")))["image"][: self.n_show]
        recon = self.net(x)[0].float()
        mse = recon_mse(recon, x)
        ctx.out.grid("reconstructions", torch.cat([x.float(), recon]), nrow=len(x))
        ctx.out.json("reconstruction_mse", {
            "note": "top row: val images, bottom row: reconstructions (decoded mean); MSE per image over "
                    "pixels in the model's [-1, 1] range and on 0-255 pixels",
            "mse": mse.tolist(), "mse_255": (mse * (255 / 2) ** 2).tolist(), "mean_mse": float(mse.mean())})
        return {"recon_mse_shown": float(mse.mean())}

    def _latents(self, ctx: StepContext) -> dict[str, float]:
        """Latent means of every val image (+ the `tsne_attribute` column, if the data has attributes)
        for the t-SNE plot. An attribute the data lacks falls back to its first one, said in the note."""
        mus, attrs, light = [], {}, []
        for b in ctx.batches("val"):
            mus.append(self.net.encode(b["image"])[0].float())
            light.append(b["image"].float().mean(dim=tuple(range(1, b["image"].dim()))))
            for k, v in b.items():
                if k.startswith("attr_"):
                    attrs.setdefault(k, []).append(v)
        names = sorted(attrs)
        want = f"attr_{self.tsne_attribute}" if self.tsne_attribute else None
        key = want if want in attrs else (names or [None])[0]
        domain = ctx.data.domain_name
        if key is None:
            note = (f"domain {domain!r} has no attributes: coloured by image brightness (mean pixel "
                    "value, in thirds), computed from the pixels")
        elif want is not None and key != want:
            note = (f"domain {domain!r} has no attribute {self.tsne_attribute!r} (it has "
                    f"{', '.join(n.removeprefix('attr_') for n in names)}); coloured by {key.removeprefix('attr_')}")
        else:
            note = None
        arrays = {"mu": torch.cat(mus), "brightness": torch.cat(light)}
        if key is not None:
            arrays[key] = torch.cat(attrs[key])
        ctx.out.arrays("latents", **arrays)
        ctx.out.json("latents", {"n": len(arrays["mu"]), "attribute": key and key.removeprefix("attr_"),
                                 "requested_attribute": self.tsne_attribute, "note": note})
        if getattr(ctx.out, "enabled", True) and len(arrays["mu"]) >= 5:
            from genda.viz.tsne import _scatter, embed, latent_colouring

            mu = arrays["mu"].cpu().numpy()
            xy = embed(mu.reshape(len(mu), -1))
            name = key.removeprefix("attr_") if key else None
            groups, legend, cmap = latent_colouring(len(xy), name, key and arrays[key].cpu().numpy(),
                                                    arrays["brightness"].cpu().numpy())
            title = (f"by {name}" + (f" ({self.tsne_attribute} not in the data)" if note else "") if name
                     else f"by image brightness ({domain} has no attributes)")
            path = ctx.out.path("tsne.png")
            _scatter(xy, groups, legend, f"VAE latent means, t-SNE, {title}", path, cmap)
            ctx.out.log_figure("tsne", path)
        return {}

    @torch.no_grad()
    def finalize(self, ctx: StepContext) -> dict[str, float]:
        """Reconstructions + MSE, 32 samples, latent means, FID, KID (+ face score) of `n_images` samples."""
        metrics = {**self.validate(ctx), **self._reconstructions(ctx), **self._latents(ctx)}
        ctx.out.curves("curves", ["train/recon", "train/kl", "val/recon", "val/kl"],
                       "VAE learning curves: reconstruction MSE and KL")
        ctx.out.grid("samples32", self.generate(32, self.seed))
        t0 = time.perf_counter()
        images = self.generate(self.n_images, self.seed)
        timing = sampling_time(len(images), time.perf_counter() - t0)
        ctx.out.folder("generated", images, [f"{i:04d}.png" for i in range(len(images))])
        metrics.update(self.evaluator(images, ctx.data))
        ctx.out.json("eval", {**metrics, **timing, **self.evaluator.record(), "data": ctx.data.info})
        return metrics

    def summaries(self) -> dict[str, str]:
        from genda.viz.summary import summarize

        side = self.net.side * 2 ** len(self.net.hidden)
        channels = self.net.final[-2].out_channels
        return {"vae": summarize(unwrap(self.net), (1, channels, side, side))}
