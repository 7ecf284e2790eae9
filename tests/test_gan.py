"""GAN networks and losses: the course DCGAN's shapes and sizes, each loss moving D (and G) the
right way, WGAN clipping, and the gradient penalty on interpolates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genda.errors import ConfigError
from genda.models.dcgan import Discriminator, Generator
from genda.tasks.base import StepContext
from genda.tasks.gan import GANTask


def make_task(loss: str = "bce", lr: float = 1e-3, d_kw: dict | None = None, **kw) -> GANTask:
    torch.manual_seed(0)
    g = Generator(nz=16, ngf=8)
    d = Discriminator(ndf=8, **(d_kw or {}))
    opt = lambda params: torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))  # noqa: E731
    return GANTask(g, d, opt, opt, loss=loss, nz=16, ema_decay=0, **kw)


def ctx_for(task: GANTask, step: int = 0) -> StepContext:
    """A loop stand-in: update() does zero_grad -> backward -> step on the named optimiser."""
    opts = task.configure_optimizers()

    def update(name: str, loss: torch.Tensor) -> None:
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    return StepContext(update=update, step=step, max_steps=100)


def real_batch(n: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(n, 3, 64, 64, generator=g) * 0.5 + 0.5).clamp(-1, 1)  # bright images: far from G's


def test_course_dcgan_sizes_match_the_pytorch_dcgan_tutorial():
    # the PyTorch DCGAN tutorial (nz=100, ngf=ndf=64, 3 channels) prints these parameter counts
    g, d = Generator(), Discriminator()
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert sum(p.numel() for p in d.parameters()) == 2_765_568
    x = g(torch.randn(4, 100))
    assert x.shape == (4, 3, 64, 64) and x.abs().max() <= 1
    assert d(x).shape == (4,)


def test_spectral_norm_bounds_the_discriminator_layers():
    d = Discriminator(ndf=8, norm="none", spectral=True)
    for _ in range(20):  # power iterations run in train-mode forwards
        d(torch.randn(4, 3, 64, 64))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(hasattr(m, "parametrizations") for m in convs)
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("loss,kw", [
    ("bce", {}),
    ("bce", {"real_label": 0.9, "label_noise": 0.1, "flip_prob": 0.05, "instance_noise": 0.1}),
    ("hinge", {}),
    ("wasserstein", {"clip_value": 0.01}),
    ("wasserstein", {"gp_weight": 10.0}),
])
def test_one_step_moves_the_discriminator_the_right_way(loss, kw):
    d_kw = {"norm": "layer"} if kw.get("gp_weight") else {}
    task = make_task(loss, d_kw=d_kw, **kw)
    if kw.get("clip_value"):  # start inside the box: clipping alone shrinks every output towards 0
        with torch.no_grad():
            for p in task.discriminator.parameters():
                p.clamp_(-0.01, 0.01)
    ctx, real = ctx_for(task), real_batch()
    torch.manual_seed(5)
    fake = task.generator(torch.randn(len(real), 16)).detach()  # the step draws the same z
    before = task.discriminator(real).mean() - task.discriminator(fake).mean()
    d_real0, d_fake0 = task.discriminator(real).mean(), task.discriminator(fake).mean()
    torch.manual_seed(5)
    logs = task.training_step({"image": real}, ctx)
    d_real1, d_fake1 = task.discriminator(real).mean(), task.discriminator(fake).mean()
    assert d_real1 > d_real0 and d_fake1 < d_fake0
    assert (d_real1 - d_fake1) > before
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(logs)


@pytest.mark.parametrize("loss", ["bce", "hinge", "wasserstein"])
def test_generator_step_raises_the_discriminator_score_of_fakes(loss):
    task = make_task(loss, lr=1e-3)
    opts = task.configure_optimizers()
    z = torch.randn(16, 16)
    task.discriminator.eval()  # a fixed D: eval-mode BN, no running-stat drift between the two reads
    before = task.discriminator(task.generator(z)).mean()
    opts["generator"].zero_grad()
    task.g_loss(task.discriminator(task.generator(z))).backward()
    opts["generator"].step()
    assert task.discriminator(task.generator(z)).mean() > before


def test_wgan_clipping_bounds_every_critic_weight():
    task = make_task("wasserstein", clip_value=0.01, lr=1e-2)
    assert max(p.abs().max() for p in task.discriminator.parameters()) > 0.01  # init exceeds the box
    task.training_step({"image": real_batch()}, ctx_for(task))
    assert max(p.abs().max() for p in task.discriminator.parameters()) <= 0.01


def test_n_critic_updates_the_generator_every_nth_step():
    task = make_task("wasserstein", n_critic=3, gp_weight=10.0, d_kw={"norm": "layer"})
    ctx = ctx_for(task)
    g0 = [p.detach().clone() for p in task.generator.parameters()]
    changed = []
    for step in range(3):
        ctx.step = step
        task.training_step({"image": real_batch()}, ctx)
        changed.append(any(not torch.equal(a, b) for a, b in zip(g0, task.generator.parameters(), strict=True)))
    assert changed == [False, False, True]


class SquareCritic(nn.Module):
    """D(x) = a/2 * ||x||^2 per sample, so grad_x D = a * x: the penalty has a closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.a * x.flatten(1).pow(2).sum(1)


def test_gradient_penalty_is_taken_on_interpolates_and_is_differentiable():
    task = GANTask(Generator(nz=16, ngf=8), SquareCritic(), torch.optim.Adam, torch.optim.Adam,
                   loss="wasserstein", nz=16, gp_weight=10.0, ema_decay=0)
    real = torch.zeros(6, 3, 8, 8)
    fake = torch.full((6, 3, 8, 8), 0.05)
    torch.manual_seed(3)
    eps = torch.rand(6, 1, 1, 1)
    torch.manual_seed(3)
    gp = task.gradient_penalty(real, fake)
    # x_hat = (1 - eps) * fake, ||grad|| = ||x_hat|| = (1 - eps) * 0.05 * sqrt(192)
    norms = (1 - eps.flatten()) * 0.05 * 192**0.5
    assert gp.item() == pytest.approx(((norms - 1) ** 2).mean().item(), rel=1e-5)
    (grad_a,) = torch.autograd.grad(gp, task.discriminator.a)
    assert grad_a.item() == pytest.approx((2 * (norms - 1) * norms).mean().item(), rel=1e-4)


def test_gradient_penalty_reaches_every_critic_weight():
    task = make_task("wasserstein", gp_weight=10.0, d_kw={"norm": "layer"})
    fake = task.generator(torch.randn(8, 16))
    task.gradient_penalty(real_batch(8), fake).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in task.discriminator.parameters())
    convs = [m.weight for m in task.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(w.grad.abs().sum() > 0 for w in convs)  # through the double backward
    assert all(p.grad is None for p in task.generator.parameters())  # fakes enter detached


def test_label_tricks_refuse_non_bce_losses():
    with pytest.raises(ConfigError, match="loss=bce"):
        make_task("hinge", real_label=0.9)
    with pytest.raises(ConfigError, match="model.loss"):
        make_task("lsgan")
