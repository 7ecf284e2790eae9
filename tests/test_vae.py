"""The course VAE: loss pieces against closed forms and torch.distributions, shapes, KL warm-up."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from genda.errors import ConfigError
from genda.models.vae import ConvVAE
from genda.tasks.base import StepContext
from genda.tasks.vae import VAETask, kl_divergence, recon_mse


def test_kl_of_the_standard_normal_is_zero():
    assert kl_divergence(torch.zeros(4, 8), torch.zeros(4, 8)).item() == 0.0


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    ref = torch_kl(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1).mean()
    assert kl_divergence(mu, logvar).item() == pytest.approx(ref.item(), rel=1e-5)
    assert kl_divergence(mu, logvar) > 0


def test_recon_mse_is_per_image_and_averages_to_mse_loss():
    x, y = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    per = recon_mse(x, y)
    assert per.shape == (3,)
    assert per[1].item() == pytest.approx(F.mse_loss(x[1], y[1]).item())
    assert per.mean().item() == pytest.approx(F.mse_loss(x, y).item())


def test_course_vae_shapes_and_deterministic_eval():
    net = ConvVAE()
    assert [m[0].out_channels for m in net.encoder] == [32, 64, 128, 256, 512]
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    recon, mu, logvar = net(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 128)
    assert recon.abs().max() <= 1
    net.eval()
    assert torch.equal(net(x)[0], net(x)[0])  # eval decodes the mean


def test_kl_warmup_ramps_the_weight():
    task = VAETask(ConvVAE(latent_dim=8), torch.optim.Adam, kl_weight=1e-4, kl_warmup=0.5)
    assert [task.beta(p) for p in (0.0, 0.25, 0.5, 1.0)] == pytest.approx([0.0, 5e-5, 1e-4, 1e-4])
    assert VAETask(ConvVAE(latent_dim=8), torch.optim.Adam, kl_weight=1e-4).beta(0.0) == 1e-4
    with pytest.raises(ConfigError, match="kl_warmup"):
        VAETask(ConvVAE(latent_dim=8), torch.optim.Adam, kl_warmup=2.0)


def test_training_steps_lower_the_reconstruction_error():
    torch.manual_seed(0)
    task = VAETask(ConvVAE(latent_dim=8, image_size=32, hidden=(8, 16)), torch.optim.Adam, kl_weight=1e-4)
    opt = task.configure_optimizers()["net"]

    def update(name: str, loss: torch.Tensor) -> None:
        opt.zero_grad()
        loss.backward()
        opt.step()

    x = torch.rand(8, 3, 32, 32) * 2 - 1
    logs = [task.training_step({"image": x}, StepContext(update=update, step=i, max_steps=30)) for i in range(30)]
    assert logs[-1]["recon"] < 0.85 * logs[0]["recon"]
    assert logs[0]["loss"].item() == pytest.approx((logs[0]["recon"] + 1e-4 * logs[0]["kl"]).item(), rel=1e-5)
