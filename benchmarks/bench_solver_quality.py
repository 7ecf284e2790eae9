"""Fewer model calls at the same quality: DPM-Solver++(2M) at 10/15/20 steps vs DDIM-50 on a
*trained* `ddpm_digits` run, scored the course way (the LeNet evaluator's accuracy on the 1,000
images, 100 per digit, same seed, same guidance and clipping as the run's own sampler).

The trained run is `$GENDA_BENCH_DDPM_RUN`, else the report's `outputs/report_runs/cpu/ddpm_digits/
seed0` (made by `make reproduce-report`); its evaluator is the cached one of its scale. Without
either, or with --quick, the benchmark says why and gives no row (a random UNet would time the
solvers but say nothing about quality: bench_sampling covers that)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from benchmarks.common import Comparison, default_device, sync

DEFAULT_RUN = Path("outputs/report_runs/cpu/ddpm_digits/seed0")
DPM_STEPS = (10, 15, 20)


def _trained_run() -> tuple[Path | None, str]:
    run = Path(os.environ.get("GENDA_BENCH_DDPM_RUN", DEFAULT_RUN))
    if not (run / "checkpoints").is_dir():
        return None, (f"no trained ddpm_digits run at {run} (make reproduce-report trains one; or set "
                      f"GENDA_BENCH_DDPM_RUN=<run dir>)")
    return run, ""


def _evaluator(data, cfg, device):
    """The run's own evaluator, found as its task finds it (genda.tasks.diffusion)."""
    from omegaconf import OmegaConf

    from genda.data.domain import default_cache_dir
    from genda.metrics.accuracy import DigitEvaluator

    scale = str(OmegaConf.select(cfg, "model.evaluator.scale", default="cpu") or "cpu")
    return DigitEvaluator.for_domain(data.domain_name, data.cache_dir or default_cache_dir(), device,
                                     scale=scale, data_dir=data.data_dir)


def _score(task, ev, data, labels: torch.Tensor, shape, seed: int, device) -> tuple[float, float]:
    """(seconds to sample, evaluator accuracy of the 8-bit images) with the task's current sampler."""
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        x, _ = task.generate(labels, shape, seed)
    sync(device)
    secs = time.perf_counter() - t0
    u8 = data.to_uint8(x).float() / 127.5 - 1.0  # what the saved PNGs hold, as the task scores them
    acc = float((ev.predict(u8).cpu() == labels.cpu()).float().mean())
    return secs, acc


def run(quick: bool = False) -> dict:
    run_dir, why = _trained_run()
    if quick or run_dir is None:
        why = why or "--quick: skipped (samples 4 x 1,000 images from a trained run)"
        print(f"[bench solver_quality] {why}")
        return {"skipped": why}
    from genda.diffusion.schedulers import sampler_from_config
    from genda.runs import data_module_of, load_run

    device = default_device()
    loaded = load_run(run_dir, device)
    data = data_module_of(loaded.cfg)
    task, ev = loaded.task, _evaluator(data, loaded.cfg, device)
    k, per = task.num_classes, 100
    labels = torch.arange(k, device=device).repeat_interleave(per)
    shape = (task.net.in_channels, task.image_size, task.image_size)
    base = dict(task.sampler)
    seed = int(loaded.cfg.get("seed", 0))

    def use(kind: str, n: int) -> None:
        block = {**base, "kind": kind, "num_steps": n}
        task.sampler, task.scheduler = sampler_from_config(block, task.noise_schedule)

    use("ddim", 50)
    t_ddim, acc_ddim = _score(task, ev, data, labels, shape, seed, device)
    rows = {}
    for n in DPM_STEPS:
        use("dpmsolver", n)
        t, acc = _score(task, ev, data, labels, shape, seed, device)
        rows[f"dpmsolver_{n}_vs_ddim_50_trained"] = Comparison(
            "solver_quality", f"DPM-Solver++(2M)-{n} (A) vs DDIM-50 (B), trained ddpm_digits, 1,000 images "
            f"(accuracy A {acc:.1%}, B {acc_ddim:.1%})",
            f"dpm++-{n}", "ddim-50", [t], [t_ddim], work=len(labels),
            notes={"accuracy_a": acc, "accuracy_b": acc_ddim, "run": str(run_dir), "step": loaded.step,
                   "guidance": base.get("guidance"), "clip_x0": base.get("clip_x0")})
    return rows


if __name__ == "__main__":
    for key, row in run().items():
        print(key, row if isinstance(row, str) else (row.describe("a"), row.describe("b"),
                                                      f"{row.ratio:.2f}", row.notes))
