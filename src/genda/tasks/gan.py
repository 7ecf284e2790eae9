"""GANs on 64x64 images: the course DCGAN (method A), its method-B tricks, SN-GAN, WGAN, WGAN-GP.

Every loss works on logits (BCE-with-logits, hinge, Wasserstein), so autocast is safe. The
generator's EMA copy is what validate/sample/finalize see; validation FID picks the best checkpoint.
"""

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

LOSSES = ("bce", "hinge", "wasserstein")


def fixed_noise(n: int, dim: int, seed: int, device: torch.device) -> torch.Tensor:
    """(n, dim) standard normal noise, identical on every device for a seed."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)).to(device)


def unwrap(net: nn.Module) -> nn.Module:
    """The user's network inside a loop wrapper (Fabric/DDP keep it as `.module`), for summaries."""
    return getattr(net, "module", net)


@register_target
class GANTask(Task):
    """Adversarial training of `generator` (z -> image) against `discriminator` (image -> logits).

    loss: 'bce' (non-saturating, the course's), 'hinge' (SN-GAN) or 'wasserstein' (WGAN, WGAN-GP).
    Method-B switches (bce only): real_label < 1 (one-sided soft labels), label_noise (targets
    jittered by U(0, label_noise)), flip_prob (swap real/fake targets per sample). instance_noise:
    N(0, s^2) added to D's inputs, s annealed linearly to 0. clip_value: WGAN weight clipping;
    gp_weight: WGAN-GP penalty; n_critic: D updates per G update.
    """

    ARTEFACTS = {"gan_grid": ("first32.png",)}  # the report's roles (artifacts/index.json)
    monitor = "fid"
    monitor_mode = "min"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, g_optimizer: Callable,
                 d_optimizer: Callable, loss: str = "bce", nz: int = 100, n_critic: int = 1,
                 real_label: float = 1.0, label_noise: float = 0.0, flip_prob: float = 0.0,
                 instance_noise: float = 0.0, clip_value: float | None = None, gp_weight: float = 0.0,
                 ema_decay: float = 0.999, fid: Mapping[str, Any] | None = None, n_real: int | None = None,
                 n_images: int = 1000, face_score: bool | None = None, cache_dir: str | None = None,
                 face: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"model.loss={loss!r}: use one of {', '.join(LOSSES)}")
        if loss != "bce" and (real_label != 1.0 or label_noise or flip_prob):
            raise ConfigError("model.real_label/label_noise/flip_prob apply to loss=bce only")
        if n_critic < 1:
            raise ConfigError(f"model.n_critic={n_critic}: must be >= 1")
        self.generator, self.discriminator = generator, discriminator
        self._g_opt, self._d_opt = g_optimizer, d_optimizer
        self.loss, self.nz, self.n_critic = loss, nz, n_critic
        self.real_label, self.label_noise, self.flip_prob = real_label, label_noise, flip_prob
        self.instance_noise, self.clip_value, self.gp_weight = instance_noise, clip_value, gp_weight
        self.ema = {"generator": ema_decay} if ema_decay else {}
        self.evaluator = ImageEvaluator(ImageProtocol.from_config(fid, n_real, face_score, cache_dir, face))
        self.n_images, self.seed = n_images, seed
        self._last_g: torch.Tensor | float = 0.0

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self._g_opt(self.generator.parameters()),
                "discriminator": self._d_opt(self.discriminator.parameters())}

    # -- losses ------------------------------------------------------------------
    def _targets(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """BCE targets for real and fake samples (soft, noisy, occasionally flipped)."""
        real = torch.full((n,), self.real_label, device=device)
        fake = torch.zeros(n, device=device)
        if self.label_noise:
            real = real - self.label_noise * torch.rand(n, device=device)
            fake = fake + self.label_noise * torch.rand(n, device=device)
        if self.flip_prob:
            flip = torch.rand(n, device=device) < self.flip_prob
            real, fake = torch.where(flip, fake, real), torch.where(flip, real, fake)
        return real, fake

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Discriminator/critic loss from logits (B,) on real and fake images (penalties excluded)."""
        if self.loss == "bce":
            t_real, t_fake = self._targets(len(real_logits), real_logits.device)
            return (F.binary_cross_entropy_with_logits(real_logits.float(), t_real)
                    + F.binary_cross_entropy_with_logits(fake_logits.float(), t_fake))
        if self.loss == "hinge":
            return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()
        return fake_logits.float().mean() - real_logits.float().mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """Generator loss: non-saturating BCE (bce) or -D(G(z)) (hinge, wasserstein)."""
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(fake_logits.float(), torch.ones_like(fake_logits.float()))
        return -fake_logits.float().mean()

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """WGAN-GP: mean (||grad_x D(x_hat)||_2 - 1)^2 over x_hat = e*real + (1-e)*fake, e ~ U(0, 1)."""
        eps = torch.rand(len(real), 1, 1, 1, device=real.device, dtype=real.dtype)
        x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        out = self.discriminator(x_hat)
        (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
        return ((grad.float().flatten(1).norm(2, dim=1) - 1) ** 2).mean()

    def _noisy(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        if not self.instance_noise:
            return x
        return x + self.instance_noise * (1.0 - ctx.progress) * torch.randn_like(x)

    # -- steps -------------------------------------------------------------------
    def training_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        real = batch["image"]
        g_step = (ctx.step + 1) % self.n_critic == 0
        with torch.enable_grad() if g_step else torch.no_grad():
            fake = self.generator(torch.randn(len(real), self.nz, device=real.device, dtype=real.dtype))
        real_logits = self.discriminator(self._noisy(real, ctx))
        fake_logits = self.discriminator(self._noisy(fake.detach(), ctx))
        d_loss = self.d_loss(real_logits, fake_logits)
        logs: dict[str, torch.Tensor | float] = {"d_real": real_logits.detach().float().mean(),
                                                 "d_fake": fake_logits.detach().float().mean()}
        if self.gp_weight:
            gp = self.gradient_penalty(real, fake)
            logs["gp"] = gp.detach()
            d_loss = d_loss + self.gp_weight * gp
        ctx.update("discriminator", d_loss)
        logs["d_loss"] = d_loss.detach()
        if self.clip_value:
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-self.clip_value, self.clip_value)
        if g_step:
            g_loss = self.g_loss(self.discriminator(self._noisy(fake, ctx)))
            ctx.update("generator", g_loss)
            self._last_g = g_loss.detach()
        logs["g_loss"] = self._last_g  # the latest G update's loss (G steps every n_critic)
        return logs

    # -- evaluation ----------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @torch.no_grad()
    def generate(self, n: int, seed: int, chunk: int = 250) -> torch.Tensor:
        """n images (n, C, H, W) in [-1, 1] from fixed noise `seed` (EMA weights under the loop)."""
        z = fixed_noise(n, self.nz, seed, self._device())
        return torch.cat([self.generator(c).float()
                          for c in progress(z.split(chunk), f"generating {n} images")])

    def export_images(self, n: int, seed: int, noise_dir: str | None = None):
        """`python -m genda.sample`: n images named 0000.png, ... from noise `seed`."""
        if noise_dir is not None:
            raise ConfigError("--noise-dir is for DDIM runs; this run samples its own noise")
        return self.generate(n, seed), [f"{i:04d}.png" for i in range(n)], "clamp"

    @torch.no_grad()
    def validate(self, ctx: StepContext) -> dict[str, float]:
        return self.evaluator(self.generate(self.evaluator.protocol.n_fake, self.seed + 1), ctx.data)

    @torch.no_grad()
    def sample(self, ctx: StepContext) -> None:
        ctx.out.grid(f"samples/step_{ctx.step:07d}", self.generate(32, self.seed))

    @torch.no_grad()
    def finalize(self, ctx: StepContext) -> dict[str, float]:
        """First-32 grid, `n_images` PNGs (0000.png...), FID, KID (+ face score) of those images."""
        ctx.out.grid("first32", self.generate(32, self.seed))
        t0 = time.perf_counter()
        images = self.generate(self.n_images, self.seed)
        timing = sampling_time(len(images), time.perf_counter() - t0)
        ctx.out.folder("generated", images, [f"{i:04d}.png" for i in range(len(images))])
        metrics = self.evaluator(images, ctx.data)
        ctx.out.json("eval", {**metrics, **timing, **self.evaluator.record(), "data": ctx.data.info,
                              "images": "generated/ (EMA generator)"})
        return metrics

    def summaries(self) -> dict[str, str]:
        from genda.viz.summary import summarize

        was_training = self.training
        self.eval()  # a probe forward must not touch BN running statistics
        with torch.no_grad():
            image = self.generator(fixed_noise(1, self.nz, 0, self._device())).shape[1:]
        out = {"generator": summarize(unwrap(self.generator), (1, self.nz)),
               "discriminator": summarize(unwrap(self.discriminator), (1, *image))}
        self.train(was_training)
        return out
