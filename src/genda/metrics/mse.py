"""MSE of images against ground-truth PNGs on 0-255 pixels (the course's DDIM check): the one
reader (`read_png`) and per-image score (`image_mse`) of both the DDIM task's `mse_to_reference`
and `python -m genda.evaluate mse` (`mse_by_name`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genda.errors import DataError


def read_png(path: Path, key: str | None = None) -> torch.Tensor:
    """One PNG -> uint8 (3, H, W), converted to RGB (grey, palette and alpha PNGs alike); missing or
    unreadable: one DataError. `key`: the config key of the ground-truth folder the file belongs to,
    named first in the message; without it the message starts with the path."""
    if not path.is_file():
        raise DataError(f"{key}: missing ground-truth image {path}" if key else f"{path}: image not found")
    try:
        with Image.open(path) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{key}: ground-truth image {path} is corrupt or unreadable ({e})" if key
                        else f"{path}: corrupt or unreadable image ({e})") from None


def image_mse(image: torch.Tensor, gt: torch.Tensor) -> float:
    """MSE on 0-255 pixels of one uint8 image against its ground truth (same shape, checked by the
    caller, which names the files)."""
    return float(((gt.double() - image.double()) ** 2).mean())


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
        gt = read_png(path, key)
        if gt.shape != p.shape:
            raise DataError(f"{path}: size {tuple(gt.shape)} differs from the scored image {i}'s {tuple(p.shape)}")
        errs.append(image_mse(p, gt))
    return float(np.mean(errs))


def mse_by_name(folder: Path, gt_folder: Path) -> dict[str, float]:
    """{name: MSE on 0-255 pixels} of each PNG of `gt_folder` against the file of the same name in
    `folder` (both read as RGB); one DataError for an empty or missing ground-truth folder, a file
    without its match, an unreadable file or a size mismatch."""
    from genda.data.folders import png_names

    names = png_names(gt_folder)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder}: no {missing[0]} to match {gt_folder / missing[0]} ({len(missing)} missing)")
    per_image = {}
    for n in names:
        pred, gt = read_png(folder / n), read_png(gt_folder / n)
        if pred.shape != gt.shape:
            raise DataError(f"{folder / n}: shape {tuple(pred.shape)} differs from ground truth {tuple(gt.shape)}")
        per_image[n] = image_mse(pred, gt)
    return per_image
