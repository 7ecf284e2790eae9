"""Sampling speed: DDIM-50 vs DDPM-1000 for the same UNet and batch, and genda's DDIM loop vs a
loop of diffusers' DDIMScheduler steps driving the same UNet (same x_T, outputs compared).
The UNet is ddpm_digits' cpu-scale eps-model (28x28x3, 16 base channels), in eval mode."""

from __future__ import annotations

import torch

from benchmarks.common import Comparison, compare, default_device
from genda.diffusion import ddim_sample, ddpm_sample, make_betas
from genda.models.unet import ConditionalUNet


def _model(device: torch.device) -> ConditionalUNet:
    torch.manual_seed(0)
    net = ConditionalUNet(base_channels=16, channel_mult=(1, 2, 4), num_res_blocks=1)
    for p in net.parameters():  # random non-zero weights: the zero-initialised output layers would make eps = 0
        torch.nn.init.normal_(p, std=0.05)
    return net.eval().to(device)


def _diffusers_ddim(eps, x_T: torch.Tensor, num_steps: int) -> torch.Tensor:
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(beta_schedule="linear", clip_sample=False, set_alpha_to_one=True,
                          timestep_spacing="leading")
    sched.set_timesteps(num_steps)
    x = x_T
    with torch.inference_mode():
        for t in sched.timesteps:
            x = sched.step(eps(x, t.expand(len(x)).to(x.device)), int(t), x, eta=0.0).prev_sample
    return x


def run(quick: bool = False) -> dict:
    device = default_device()
    batch, repeats = (4, 1) if quick else (16, 3)
    net, betas = _model(device), make_betas()
    y = torch.arange(batch, device=device) % 10
    x_T = torch.randn(batch, 3, 28, 28, generator=torch.Generator().manual_seed(0)).to(device)

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return net(x, t, y)

    steps = compare("sampling", "DDIM-50 (A) vs DDPM-1000 (B), same UNet and batch",
                    ("ddim-50", lambda: ddim_sample(eps, x_T, betas, 50)),
                    ("ddpm-1000", lambda: ddpm_sample(eps, x_T, betas, torch.Generator().manual_seed(1))),
                    repeats=repeats, warmup=0, work=batch, device=device)
    ours, ref = ddim_sample(eps, x_T, betas, 50), _diffusers_ddim(eps, x_T, 50)
    loops = compare("sampling", "genda ddim_sample (A) vs diffusers DDIMScheduler loop (B), DDIM-50",
                    ("genda", lambda: ddim_sample(eps, x_T, betas, 50)),
                    ("diffusers", lambda: _diffusers_ddim(eps, x_T, 50)),
                    repeats=repeats + 2, warmup=1, work=batch, device=device,
                    notes={"max_abs_diff": float((ours - ref).abs().max())})
    return {"ddim_vs_ddpm": steps, "genda_vs_diffusers": loops}


def _print(results: dict[str, Comparison]) -> None:
    print(f"{'comparison':<72} {'A':>26} {'B':>26} {'B/A':>7}")
    for row in results.values():
        print(f"{row.comparison:<72} {row.describe('a'):>26} {row.describe('b'):>26} {row.ratio:>7.2f}")
        if row.notes:
            print(f"{'':<72} notes: {row.notes}")


if __name__ == "__main__":
    import sys

    _print(run(quick="--quick" in sys.argv))
