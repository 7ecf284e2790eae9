"""The run's artefact writer: the one place that knows the artefact layout of a run dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.utils import make_grid, save_image


def to_unit(images: torch.Tensor, value_range=(-1.0, 1.0), normalize: str = "clamp") -> torch.Tensor:
    """Float images -> [0, 1]. 'clamp' maps value_range linearly; 'minmax' rescales each image."""
    x = images.detach().float().cpu()
    if normalize == "minmax":
        lo = x.flatten(1).min(1).values.view(-1, 1, 1, 1)
        hi = x.flatten(1).max(1).values.view(-1, 1, 1, 1)
        return (x - lo) / (hi - lo).clamp_min(1e-12)
    lo, hi = value_range
    return ((x - lo) / (hi - lo)).clamp(0, 1)


def save_folder(folder: Path, images: torch.Tensor, filenames: list[str], value_range=(-1.0, 1.0),
                normalize: str = "clamp") -> Path:
    """Each image as its own PNG (rounded to uint8) in `folder`; the one folder writer."""
    if len(images) != len(filenames):
        raise ValueError(f"{len(images)} images for {len(filenames)} file names")
    folder.mkdir(parents=True, exist_ok=True)
    for img, fname in zip(to_unit(images, value_range, normalize), filenames, strict=True):
        save_image(img, folder / fname)
    return folder


class RunArtifacts:
    """Artefacts under `<run_dir>/artifacts/`; grids are mirrored to the logger as images."""

    def __init__(self, run_dir: Path, logger=None, step_fn=lambda: 0, enabled: bool = True) -> None:
        self.root = Path(run_dir) / "artifacts"
        self.logger, self.step_fn, self.enabled = logger, step_fn, enabled
        if enabled:
            self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> str:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return str(p)

    def grid(self, name: str, images: torch.Tensor, nrow: int = 8, value_range=(-1.0, 1.0),
             normalize: str = "clamp") -> str:
        path = self.path(f"{name}.png")
        if self.enabled:
            save_image(make_grid(to_unit(images, value_range, normalize), nrow=nrow, padding=2), path)
            if self.logger is not None:
                self.logger.log_image(name, path, self.step_fn())
        return path

    def folder(self, name: str, images: torch.Tensor, filenames: list[str], value_range=(-1.0, 1.0),
               normalize: str = "clamp") -> str:
        folder = Path(self.path(name))
        if self.enabled:
            save_folder(folder, images, filenames, value_range, normalize)
        return str(folder)

    def arrays(self, name: str, **arrays: Any) -> str:
        path = self.path(f"{name}.npz")
        if self.enabled:
            np.savez_compressed(path, **{k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor)
                                         else np.asarray(v) for k, v in arrays.items()})
        return path

    def json(self, name: str, obj: Any) -> str:
        path = self.path(f"{name}.json")
        if self.enabled:
            Path(path).write_text(json.dumps(obj, indent=2, default=float) + "\n")
        return path

    def text(self, name: str, text: str) -> str:
        path = self.path(f"{name}.txt")
        if self.enabled:
            Path(path).write_text(text if text.endswith("\n") else text + "\n")
        return path
