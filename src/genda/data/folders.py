"""The course's folder layout (docs/data.md): read, validate, cache, and export.

Digits: `<root>/data/*.png` + `<root>/{train,val}.csv` (`image_name,label`).
Faces:  `<root>/{train,val}/*.png` (no labels); binary attributes (for the VAE's t-SNE) when present,
from `<root>/{train,val}.csv` (`image_name` + 0/1 columns such as Blond_Hair, Male, Smiling; a
`label` column is ignored) or `<root>/list_attr_celeba.txt` (CelebA's -1/1 table).
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
from genda.kernel import atomic_folder

COLUMNS = ["image_name", "label"]


def _require_dir(folder: Path) -> None:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")


def read_csv(path: Path, num_classes: int = 10) -> tuple[list[str], list[int]]:
    """`image_name,label` rows -> names, labels; every problem names the file and line."""
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found (expected columns {','.join(COLUMNS)})")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text CSV (byte {e.start} is {e.object[e.start:e.start + 1]!r}; a binary "
                        f"file?); expected {','.join(COLUMNS)} rows") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a CSV file ({e}); expected {','.join(COLUMNS)} rows") from None
    if not rows or [c.strip() for c in rows[0]] != COLUMNS:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise DataError(f"{path}: header is {got!r}, expected {','.join(COLUMNS)}")
    names, labels, seen = [], [], {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            name, label = row[0].strip(), int(row[1])
        except (IndexError, ValueError) as e:
            raise DataError(f"{path} line {line}: expected image_name,label, got {','.join(row)!r}") from e
        if not 0 <= label < num_classes:
            raise DataError(f"{path} line {line}: label {label} out of range 0-{num_classes - 1}")
        if name in seen:
            raise DataError(f"{path} line {line}: image {name!r} is listed again (first on line {seen[name]}); "
                            f"keep one row per image")
        seen[name] = line
        names.append(name)
        labels.append(label)
    if not names:
        raise DataError(f"{path}: empty split (no rows under the header)")
    return names, labels


ATTR_FILE = "list_attr_celeba.txt"


def _attr_value(text: str, where: str) -> int:
    """'1', '0', '1.0', '-1' ... -> 0/1 (CelebA's -1 is 0)."""
    try:
        v = float(text)
    except ValueError:
        v = None
    if v not in (-1.0, 0.0, 1.0):
        raise DataError(f"{where}: attribute value {text.strip()!r} is not 0/1 (or CelebA's -1/1)")
    return int(v == 1.0)


def read_attr_csv(path: Path) -> dict[str, dict[str, int]]:
    """A faces CSV `image_name,<attr>,...` (0/1 values; a `label` column is skipped) ->
    {image_name: {attr: 0/1}}; problems name the file and line."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r]
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a UTF-8 text CSV ({type(e).__name__}); expected image_name,<attribute>,... "
                        f"rows") from None
    header = [c.strip() for c in rows[0]] if rows else []
    if not header or header[0] != "image_name" or len(set(header)) != len(header):
        raise DataError(f"{path}: header is {','.join(header) or 'an empty file'!r}, expected image_name first, "
                        f"then attribute columns (e.g. image_name,Blond_Hair,Male)")
    cols = [(i, c) for i, c in enumerate(header) if i > 0 and c != "label"]
    out: dict[str, dict[str, int]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path} line {line}: {len(row)} fields, the header has {len(header)}")
        name = row[0].strip()
        if name in out:
            raise DataError(f"{path} line {line}: image {name!r} is listed again; keep one row per image")
        out[name] = {c: _attr_value(row[i], f"{path} line {line} column {c}") for i, c in cols}
    return out


def read_celeba_attrs(path: Path) -> dict[str, dict[str, int]]:
    """CelebA's `list_attr_celeba.txt` (line 1: count, line 2: the 40 names, then `name v1 v2 ...`
    with -1/1) -> {image_name: {attr: 0/1}}."""
    try:
        lines = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file; expected CelebA's attribute list") from None
    if len(lines) < 2 or len(lines[0]) != 1 or not lines[0][0].isdigit():
        raise DataError(f"{path}: expected CelebA's layout (line 1: image count, line 2: attribute names)")
    names, out = lines[1], {}
    for line, row in enumerate(lines[2:], start=3):
        if len(row) != len(names) + 1:
            raise DataError(f"{path} line {line}: {len(row) - 1} values for {len(names)} attributes")
        out[row[0]] = {c: _attr_value(v, f"{path} line {line} column {c}") for c, v in zip(names, row[1:], strict=True)}
    if len(out) != int(lines[0][0]):
        raise DataError(f"{path}: line 1 says {lines[0][0]} images, the file lists {len(out)}")
    return out


def attrs_for(names: list[str], table: dict[str, dict[str, int]], source: Path) -> dict[str, torch.Tensor]:
    """The attribute columns of `table` for images `names`, in order: {attr: (N,) int64 0/1}.
    Every image needs a row (extra rows are ignored)."""
    missing = [n for n in names if n not in table]
    if missing:
        raise DataError(f"{source}: no row for image {missing[0]!r} ({len(missing)} of {len(names)} images missing)")
    if not names:
        return {}
    columns = list(table[names[0]])
    return {c: torch.tensor([table[n][c] for n in names], dtype=torch.int64) for c in columns}


def png_names(folder: Path) -> list[str]:
    _require_dir(folder)
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".png")
    for n in names:
        try:
            n.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(f"{folder}: file name {os.fsencode(n)!r} is not valid UTF-8 (it cannot go into a CSV); "
                            f"rename it") from None
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


def fit_images(images: torch.Tensor, shape: tuple[int, int, int] | list[int] | None,
               where: str | os.PathLike, min_side: int = 8) -> tuple[torch.Tensor, str | None]:
    """uint8 (N, C, H, W) -> the model's (C, H, W) the way the course's scripts load images (grey to
    RGB by channel repeat, RGB to grey by luminance, bilinear antialiased resize), and a note saying
    what changed (None: nothing). Images under `min_side` pixels a side are refused."""
    h, w = images.shape[-2:]
    if min(h, w) < min_side:
        target = f" (this model takes {shape[1]}x{shape[2]})" if shape else ""
        raise DataError(f"{where}: images are {h}x{w} pixels, too small to classify{target}; "
                        f"give images of at least {min_side}x{min_side}")
    if shape is None:
        return images, None
    c, th, tw = (int(v) for v in shape)
    from torchvision.transforms import v2

    done = []
    if images.shape[1] == 1 and c == 3:
        images = images.expand(-1, 3, -1, -1).contiguous()
        done.append("grey to RGB (channel repeat)")
    elif images.shape[1] == 3 and c == 1:
        images = v2.Grayscale(1)(images)
        done.append("RGB to grey")
    if (h, w) != (th, tw):
        images = torch.cat([v2.Resize((th, tw), antialias=True)(x) for x in images.split(4096)])
        done.append(f"resized from {h}x{w} to {th}x{tw} (bilinear, antialiased)")
    return images, (f"{where}: {'; '.join(done)} to fit the model's {c}x{th}x{tw} input" if done else None)


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


def _faces_layout(root: Path) -> bool:
    """`<root>/{train,val}/` without `<root>/data/`: the faces layout, whose CSVs hold attributes."""
    return not (root / "data").is_dir() and all((root / s).is_dir() for s in SPLITS)


def _attr_source(root: Path, split: str) -> Path | None:
    """The attribute table of a faces split: `<split>.csv`, else `list_attr_celeba.txt`, else None."""
    for path in (root / f"{split}.csv", root / ATTR_FILE):
        if path.is_file():
            return path
    return None


def _layout(root: Path) -> dict[str, tuple[list[Path], list[int] | None, list[Path]]]:
    """Per split: image paths, labels (or None), files that define the split (CSV, attribute table)."""
    _require_dir(root)
    out = {}
    if not _faces_layout(root) and ((root / "data").is_dir() or any((root / f"{s}.csv").exists() for s in SPLITS)):
        _require_dir(root / "data")
        for s in SPLITS:
            names, labels = read_csv(root / f"{s}.csv")
            out[s] = ([root / "data" / n for n in names], labels, [root / f"{s}.csv"])
    else:
        for s in SPLITS:
            attr = _attr_source(root, s)
            out[s] = ([root / s / n for n in png_names(root / s)], None, [root / s, *([attr] if attr else [])])
    return out


def _read_attrs(root: Path, split: str, names: list[str]) -> dict[str, torch.Tensor]:
    source = _attr_source(root, split) if _faces_layout(root) else None
    if source is None:
        return {}
    table = read_celeba_attrs(source) if source.name == ATTR_FILE else read_attr_csv(source)
    return attrs_for(names, table, source)


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
        names = [p.name for p in paths]
        splits[s] = Split(decode(paths), None if labels is None else torch.tensor(labels),
                          _read_attrs(root, s, names) if labels is None else {}, names=names)
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
    """Write splits in the course layout (labelled: data/ + CSVs; unlabelled: train/, val/): into a
    temp folder beside `out`, renamed at the end (a new `out`) or moved in file by file (an existing
    one), so a failure leaves nothing half-written."""
    if limit is not None and limit < 1:
        raise DataError(f"export limit {limit}: give at least 1 image per split")
    with atomic_folder(out) as tmp:
        _export(splits, tmp, limit)
    return out


def _export(splits: dict[str, Split], out: Path, limit: int | None) -> None:
    labelled = splits["train"].labels is not None
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
            elif sp.attrs:
                rows.append((name, *(int(v[i]) for v in sp.attrs.values())))
            index += 1
        if labelled or sp.attrs:
            header = COLUMNS if labelled else ["image_name", *sp.attrs]
            with open(out / f"{s}.csv", "w", newline="") as f:
                csv.writer(f).writerows([header, *rows])
