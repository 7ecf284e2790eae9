"""MSE of images against a ground-truth folder on 0-255 pixels (the course's DDIM check)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genda.errors import DataError


def read_reference(path: Path, key: str = "gt_dir") -> torch.Tensor:
    """One ground-truth PNG -> uint8 (3, H, W) (converted to RGB); missing or unreadable: one DataError."""
    if not path.is_file():
        raise DataError(f"{key}: missing ground-truth image {path}")
    try:
        with Image.open(path) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{key}: ground-truth image {path} is corrupt or unreadable ({e})") from None


def mse_to_reference(images: torch.Tensor, gt_dir: str | os.PathLike, key: str = "gt_dir") -> float:
    """Mean over images of the per-image MSE on 0-255 pixels of uint8 `images` (N, 3, H, W) against
    `gt_dir/00.png, 01.png, ...` (image i against `{i:02d}.png`). `key` names the folder's config
    key in the one-line DataError for a missing folder or file, an unreadable file or a size mismatch."""
    folder = Path(gt_dir)
    if not folder.is_dir():
        raise DataError(f"{key}: ground-truth folder {folder} not found")
    errs = []
    for i, p in enumerate(images):
        path = folder / f"{i:02d}.png"
        gt = read_reference(path, key)
        if gt.shape != p.shape:
            raise DataError(f"{path}: size {tuple(gt.shape)} differs from the scored image {i}'s {tuple(p.shape)}")
        errs.append(float(((gt.double() - p.double()) ** 2).mean()))
    return float(np.mean(errs))
