"""Sampling speed: DDIM-50 vs DDPM-1000 for the same UNet and batch, genda's DDIM loop vs a
loop of diffusers' DDIMScheduler steps driving the same UNet (same x_T, outputs compared), and
DPM-Solver++(2M) at 10/15/20 steps vs DDIM-50 (the max |difference| of the outputs in the notes:
untrained weights, so it shows the solvers' agreement, not image quality).
The UNet is ddpm_digits' cpu-scale eps-model (28x28x3, 16 base channels), in eval mode."""

from __future__ import annotations

import torch

from benchmarks.common import Comparison, compare, default_device
from genda.diffusion import (
    DDIMScheduler,
    DPMSolverScheduler,
    NoiseSchedule,
    ddim_sample,
    ddpm_sample,
    make_betas,
    sample,
)
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
    return {"ddim_vs_ddpm": steps, "genda_vs_diffusers": loops, **dpm_solver(eps, x_T, betas, repeats, device)}


def dpm_solver(eps, x_T: torch.Tensor, betas: torch.Tensor, repeats: int, device: torch.device,
               steps: tuple[int, ...] = (10, 15, 20)) -> dict[str, Comparison]:
    """DPM-Solver++(2M) at each of `steps` model calls (A) vs DDIM-50 (B), same UNet, x_T, schedule."""
    schedule = NoiseSchedule(betas)
    ddim = DDIMScheduler(schedule, 50)
    ref = sample(ddim, eps, x_T)
    rows = {}
    for n in steps:
        dpm = DPMSolverScheduler(schedule, n)
        diff = float((sample(dpm, eps, x_T) - ref).abs().max())
        rows[f"dpmsolver_{n}_vs_ddim_50"] = compare(
            "sampling", f"DPM-Solver++(2M)-{n} (A) vs DDIM-50 (B), same UNet and batch",
            (f"dpm++-{n}", lambda dpm=dpm: sample(dpm, eps, x_T)), ("ddim-50", lambda: sample(ddim, eps, x_T)),
            repeats=repeats, warmup=0, work=len(x_T), device=device, notes={"max_abs_diff_vs_ddim50": diff})
    return rows


def _print(results: dict[str, Comparison]) -> None:
    print(f"{'comparison':<72} {'A':>26} {'B':>26} {'B/A':>7}")
    for row in results.values():
        print(f"{row.comparison:<72} {row.describe('a'):>26} {row.describe('b'):>26} {row.ratio:>7.2f}")
        if row.notes:
            print(f"{'':<72} notes: {row.notes}")


if __name__ == "__main__":
    import sys

    if "--dpm-only" in sys.argv:  # the DPM-Solver++ rows alone (tiny: batch 2, one repeat, 10 steps)
        dev = default_device()
        net, yy = _model(dev), torch.zeros(2, dtype=torch.long, device=dev)
        z = torch.randn(2, 3, 28, 28, generator=torch.Generator().manual_seed(0)).to(dev)
        _print(dpm_solver(lambda x, t: net(x, t, yy), z, make_betas(), 1, dev, steps=(10,)))
    else:
        _print(run(quick="--quick" in sys.argv))
