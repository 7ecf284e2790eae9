"""The course's folder layout (PROTOCOLS.md): read, validate, cache, and export.

Digits: `<root>/data/*.png` + `<root>/{train,val}.csv` (`image_name,label`).
Faces:  `<root>/{train,val}/*.png` (no labels).
Decoded folders are cached as tensor files keyed by path, size and mtime of every file.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genda.data.domain import Split
from genda.data.store import SPLITS, load_splits, read_meta, save_splits
from genda.errors import DataError

COLUMNS = ["image_name", "label"]


def _require_dir(folder: Path) -> None:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")


def read_csv(path: Path, num_classes: int = 10) -> tuple[list[str], list[int]]:
    """`image_name,label` rows -> names, labels; every problem names the file and line."""
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found (expected columns {','.join(COLUMNS)})")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != COLUMNS:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise DataError(f"{path}: header is {got!r}, expected {','.join(COLUMNS)}")
    names, labels = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            name, label = row[0].strip(), int(row[1])
        except (IndexError, ValueError) as e:
            raise DataError(f"{path} line {line}: expected image_name,label, got {','.join(row)!r}") from e
        if not 0 <= label < num_classes:
            raise DataError(f"{path} line {line}: label {label} out of range 0-{num_classes - 1}")
        names.append(name)
        labels.append(label)
    if not names:
        raise DataError(f"{path}: empty split (no rows under the header)")
    return names, labels


def png_names(folder: Path) -> list[str]:
    _require_dir(folder)
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not names:
        raise DataError(f"{folder}: empty split (no .png files)")
    return names


def decode(paths: list[Path]) -> torch.Tensor:
    """PNG files -> uint8 (N, C, H, W); C = 1 for grey PNGs, else 3 (alpha dropped)."""
    first, images = None, []
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: image listed but not found")
        try:
            with Image.open(path) as img:
                img.load()
                img = img if img.mode in ("L", "RGB") else img.convert("L" if img.mode in ("1", "I;16", "LA") else "RGB")
                arr = np.asarray(img)
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(f"{path}: corrupt or unreadable image ({e})") from e
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        if first is None:
            first = (path, arr.shape)
        elif arr.shape != first[1]:
            raise DataError(f"{path}: image size {arr.shape} differs from {first[0].name} {first[1]} "
                            f"(mixed image sizes in one split)")
        images.append(arr)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _fingerprint(root: Path, files: list[Path]) -> str:
    """Key of a folder's contents: its real path, then path, size and mtime of every file."""
    h = hashlib.sha256(str(root.resolve()).encode())
    for p in files:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()[:20]


def _layout(root: Path) -> dict[str, tuple[list[Path], list[int] | None, list[Path]]]:
    """Per split: image paths, labels (or None), files that define the split (CSV)."""
    _require_dir(root)
    out = {}
    if (root / "data").is_dir() or any((root / f"{s}.csv").exists() for s in SPLITS):
        _require_dir(root / "data")
        for s in SPLITS:
            names, labels = read_csv(root / f"{s}.csv")
            out[s] = ([root / "data" / n for n in names], labels, [root / f"{s}.csv"])
    else:
        for s in SPLITS:
            out[s] = ([root / s / n for n in png_names(root / s)], None, [root / s])
    return out


def read_course(root: Path, cache_dir: Path | None) -> dict[str, Split]:
    """A course-layout folder as {"train", "val"} splits, from the tensor cache when unchanged."""
    layout = _layout(root)
    key = _fingerprint(root, [p for s in SPLITS for p in (*layout[s][2], *layout[s][0])])
    folder = cache_dir / "real" / f"{root.name}-{key}" if cache_dir else None
    if folder is not None and (meta := read_meta(folder)) is not None:
        splits = load_splits(folder, meta)
        for s in SPLITS:
            splits[s].names = meta["names"][s]
        return splits
    splits = {}
    for s in SPLITS:
        paths, labels, _ = layout[s]
        splits[s] = Split(decode(paths), None if labels is None else torch.tensor(labels),
                          names=[p.name for p in paths])
        if s == "val" and splits["val"].images.shape[1:] != splits["train"].images.shape[1:]:
            raise DataError(f"{paths[0]}: val images {tuple(splits['val'].images.shape[1:])} differ from "
                            f"train images {tuple(splits['train'].images.shape[1:])}")
    if folder is not None:
        save_splits(folder, splits, {"source": str(root.resolve()),
                                     "names": {s: splits[s].names for s in SPLITS}})
    return splits


def write_png(image: torch.Tensor, path: Path) -> None:
    """uint8 (C, H, W), C = 1 or 3 -> a PNG file."""
    arr = image.permute(1, 2, 0).numpy()
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(path)


def export(splits: dict[str, Split], out: Path, limit: int | None = None) -> Path:
    """Write splits in the course layout (labelled: data/ + CSVs; unlabelled: train/, val/)."""
    labelled = splits["train"].labels is not None
    out.mkdir(parents=True, exist_ok=True)
    index, width = 0, max(5, len(str(sum(len(sp) for sp in splits.values()))))
    for s in SPLITS:
        sp = splits[s]
        n = len(sp) if limit is None else min(limit, len(sp))
        folder = out / ("data" if labelled else s)
        folder.mkdir(exist_ok=True)
        rows = []
        for i in range(n):
            name = f"{index:0{width}d}.png"
            write_png(sp.images[i], folder / name)
            if labelled:
                rows.append((name, int(sp.labels[i])))
            index += 1
        if labelled:
            with open(out / f"{s}.csv", "w", newline="") as f:
                csv.writer(f).writerows([COLUMNS, *rows])
    return out
