"""The cost curve, for planning a bigger run: genda's training time per epoch as the dataset grows
(1x, 2x, 4x images, DANN step, same batch) and DDIM sampling time as the batch grows (1x, 2x, 4x,
the experiment's UNet). B/A near the size factor means linear cost."""

from __future__ import annotations

import contextlib
import os
import tempfile

import torch
from hydra.utils import instantiate

from benchmarks.bench_loop import KINDS, _stamped_trainer, compose
from benchmarks.common import Comparison, compare, default_device


def epoch_seconds(n_images: int, batch: int):
    """fn() -> seconds of one epoch (n_images // batch steps) of genda's DANN run on n_images."""
    cfg = compose(
        KINDS["dann"].experiment,
        [
            f"data.source.limit_train={n_images}",
            f"data.source.batch_size={batch}",
            f"trainer.max_steps={n_images // batch}",
            "trainer.val_every=null",
            "logger.mode=disabled",
            "trainer.progress=false",
        ],
    )

    def run() -> float:
        with (
            tempfile.TemporaryDirectory() as tmp,
            open(os.devnull, "w") as null,
            contextlib.redirect_stderr(null),
        ):
            trainer = _stamped_trainer(cfg, tmp)
            trainer.fit()
        torch.use_deterministic_algorithms(False)
        return trainer.loop_end - trainer.stamps[0]

    return run


def sampling_seconds(net: torch.nn.Module, batch: int, steps: int, device: torch.device):
    """fn() runs DDIM-`steps` (eta 0) on a batch of noise with genda's sampler."""
    from genda.diffusion.samplers import ddim_sample
    from genda.diffusion.schedules import make_betas

    betas = make_betas("linear", 1000)
    x = torch.randn(
        batch, net.conv_in.in_channels, 28, 28, generator=torch.Generator().manual_seed(0)
    ).to(device)
    y = (torch.arange(batch) % 10).to(device)
    return lambda: ddim_sample(lambda xt, t: net(xt, t, y), x, betas, num_steps=steps)


def _unet(device: torch.device) -> torch.nn.Module:
    """The ddpm_digits experiment's UNet at scale=cpu (its default constructor if not in the repo)."""
    from genda.models.unet import ConditionalUNet

    if KINDS["ddpm"].ready():
        return instantiate(compose(KINDS["ddpm"].experiment, []).model.net).to(device).eval()
    return ConditionalUNet(base_channels=16, channel_mult=(1, 2, 4)).to(device).eval()


def run(quick: bool = False) -> dict:
    quick = quick or os.environ.get("GENDA_BENCH_QUICK") == "1"
    device = default_device()
    n, batch, repeats, warmup = (64, 16, 1, 0) if quick else (512, 64, 3, 1)
    out: dict[str, Comparison] = {}
    for f in (2, 4):
        out[f"epoch_{f}x"] = compare(
            "scaling",
            f"DANN epoch time, {f}x data ({f * n} vs {n} images, batch {batch})",
            (f"1x: {n} images", epoch_seconds(n, batch)),
            (f"{f}x: {f * n} images", epoch_seconds(f * n, batch)),
            repeats=repeats,
            warmup=warmup,
            device=device,
        )
    net = _unet(device)
    sb, steps = (2, 2) if quick else (8, 10)
    for f in (2, 4):
        out[f"sampling_{f}x"] = compare(
            "scaling",
            f"DDIM-{steps} sampling time, batch {f * sb} vs {sb}",
            (f"batch {sb}", sampling_seconds(net, sb, steps, device)),
            (f"batch {f * sb}", sampling_seconds(net, f * sb, steps, device)),
            repeats=repeats,
            warmup=warmup,
            device=device,
        )
    return out


if __name__ == "__main__":
    from benchmarks.__main__ import rows_of, table

    print(table(rows_of("scaling", run())))
