"""The contract between a method (a task) and the generic training loop.

A task turns batches into losses and parameter updates. It never touches devices,
precision, ranks or files: the loop hands it a `StepContext` whose `update()` does
backward, clipping and the optimiser step, and an `Artifacts` writer that owns the
run-dir layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn


class Artifacts(Protocol):
    """Writes a run's artefacts; the only place that knows where they live."""

    enabled: bool  # False on ranks other than 0: compute nothing that is only written

    def grid(self, name: str, images: torch.Tensor, nrow: int = 8, value_range=(-1.0, 1.0)) -> str:
        """Save `images: (B, C, H, W)` as one PNG grid `<name>.png`; returns its path."""

    def folder(
        self, name: str, images: torch.Tensor, filenames: list[str], value_range=(-1.0, 1.0),
        normalize: str = "clamp",
    ) -> str:
        """Save each image as its own PNG in folder `<name>/`; normalize: 'clamp' | 'minmax'."""

    def arrays(self, name: str, **arrays: Any) -> str:
        """Save tensors/arrays to `<name>.npz` (features, t-SNE inputs, curves)."""

    def json(self, name: str, obj: Any) -> str:
        """Save a JSON document `<name>.json`."""

    def text(self, name: str, text: str) -> str:
        """Save a text file `<name>.txt` (architecture summaries, notes)."""

    def path(self, name: str) -> str:
        """Path of a new artefact file or folder `name` inside the run's artefact dir."""


@dataclass(frozen=True)
class Every:
    """An artefact role made of many files: every match of `pattern` under artifacts/, sorted."""

    pattern: str


@dataclass
class StepContext:
    """What the loop tells a task at each step. `update(opt_name, loss)` runs
    zero_grad -> backward (precision-aware) -> clip -> optimiser.step -> scheduler.step."""

    update: Callable[[str, torch.Tensor], None]
    step: int = 0  # optimisation steps finished before this one
    max_steps: int = 1
    data: Any = None  # the DataModule (for val splits, real images, info)
    out: Artifacts | None = None  # artefact writer (periodic/final hooks only)
    batches: Callable[..., Iterator[dict]] | None = None  # batches(split="val", domain=None): on-device batches
    log: Callable[[dict[str, float]], None] | None = None  # extra scalar logging at ctx.step
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def progress(self) -> float:
        """Training progress p in [0, 1] (used e.g. by DANN's lambda schedule)."""
        return min(1.0, self.step / max(1, self.max_steps))


class Task(nn.Module):
    """Base class of every method. Subclasses hold their networks as attributes.

    Attributes the loop reads:
      - `ema`: {network attribute name: decay}; the loop keeps EMA copies and swaps them
        in while `validate`/`sample`/`finalize` run.
      - `monitor`, `monitor_mode`: metric from `validate()` that picks the best checkpoint.
      - `input_keys`: batch keys holding images (the loop converts them to channels_last).
      - `ARTEFACTS`: {role: candidate names/globs under artifacts/ (the first existing file
        wins), or Every(glob) for a role of many files}; after `finalize` the loop writes the
        files found to artifacts/index.json, the only place the report looks for them.
    """

    ARTEFACTS: dict[str, tuple[str, ...] | Every] = {}
    ema: dict[str, float] = {}
    monitor: str | None = None
    monitor_mode: str = "max"

    def networks(self) -> dict[str, nn.Module]:
        """Networks the loop sets up for device/precision/DDP. Default: all child modules."""
        return dict(self.named_children())

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def load_initial_weights(self) -> None:
        """Weights a training run starts from that live outside this run (ADDA's source-only run),
        read by the Trainer once before training and before any resume; not by `genda.runs.load_run`,
        whose checkpoint already holds every network (so a trained run loads without that file)."""

    def configure_schedulers(
        self, optimizers: dict[str, torch.optim.Optimizer], max_steps: int
    ) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        """Optional per-optimiser LR schedulers, stepped after each `update` of that optimiser."""
        return {}

    def training_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        """One optimisation step. Call `ctx.update(name, loss)` per optimiser; return scalars to log."""
        raise NotImplementedError

    @torch.no_grad()
    def validate(self, ctx: StepContext) -> dict[str, float]:
        """Cheap periodic evaluation (runs under EMA weights, eval mode). Return metrics."""
        return {}

    @torch.no_grad()
    def sample(self, ctx: StepContext) -> None:
        """Periodic sample grids through `ctx.out`."""

    @torch.no_grad()
    def finalize(self, ctx: StepContext) -> dict[str, float]:
        """End-of-run evaluation and artefacts (sample folders, grids, t-SNE inputs)."""
        return self.validate(ctx)

    def export_images(self, n: int, seed: int,
                      noise_dir: str | None = None) -> tuple[torch.Tensor, list[str], str]:
        """Images for a handed-in folder (`python -m genda.sample`): (images (N, C, H, W) in
        [-1, 1], file names, normalisation 'clamp' | 'minmax'). Generative tasks override it."""
        raise NotImplementedError

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Labels (N,) for preprocessed images (`python -m genda.predict`). Classifiers override it."""
        raise NotImplementedError

    def summaries(self) -> dict[str, str]:
        """Architecture summaries (torchinfo text) keyed by network name; written at start."""
        return {}


def mean_over(batches: Iterable[dict], fn: Callable[[dict], tuple[torch.Tensor, int]]) -> float:
    """Average of `fn(batch) -> (sum_tensor, count)` over batches (sums first, then divides)."""
    total, count = 0.0, 0
    for b in batches:
        s, n = fn(b)
        total += float(s)
        count += n
    return total / max(1, count)


def sampling_time(n: int, seconds: float) -> dict[str, float]:
    """The generation time of a final evaluation's images, as eval.json records it."""
    return {"n_sampled": int(n), "sample_seconds": round(seconds, 3),
            "images_per_s": round(n / max(seconds, 1e-9), 2)}
