"""Tensor-file store for built domains: `<dir>/{train,val}.pt` + `meta.json` with checksums.

Each split file is `torch.save({"images": uint8 (N,C,H,W), "labels": int64 (N,) | absent,
"attr_<k>": int64 (N,)})`, written atomically; meta.json records the sha256 of each file,
which is verified on every load (a changed or truncated file is a DataError).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genda.data.domain import Split, file_checksum
from genda.errors import DataError
from genda.kernel import atomic_write

SPLITS = ("train", "val")
REBUILD = "python -m genda.data build --force"


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def _payload(split: Split) -> dict[str, torch.Tensor]:
    payload = {"images": split.images.contiguous()}
    if split.labels is not None:
        payload["labels"] = split.labels.to(torch.int64).contiguous()
    payload.update({f"attr_{k}": v.to(torch.int64).contiguous() for k, v in split.attrs.items()})
    return payload


def _write_split(path: Path, split: Split) -> None:
    """torch.save straight into the atomic temp file: the bytes depend only on the tensors (a
    file object gets the fixed archive name), and a 370 MB split (faces_synthetic) is never
    held a second time as a serialised buffer."""
    atomic_write(path, lambda f: torch.save(_payload(split), f))


def save_splits(folder: Path, splits: dict[str, Split], meta: dict) -> dict:
    """Write train/val tensor files and meta.json (meta gains `files`: name -> sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, split in splits.items():
        path = folder / f"{name}.pt"
        _write_split(path, split)
        files[path.name] = file_checksum(path)
    meta = {**meta, "files": files,
            "sizes": {k: len(v) for k, v in splits.items()},
            "shape": list(splits["train"].images.shape[1:])}
    _atomic_write(folder / "meta.json", json.dumps(meta, indent=1, sort_keys=True).encode())
    return meta


def read_meta(folder: Path) -> dict | None:
    """meta.json of a built folder, or None when it was never (completely) built."""
    path = folder / "meta.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: unreadable build metadata ({e}); run `{REBUILD}`") from e


def load_splits(folder: Path, meta: dict) -> dict[str, Split]:
    """Verify each file against meta's checksum, then load it (weights_only, mmap)."""
    out = {}
    for name in SPLITS:
        path = folder / f"{name}.pt"
        expected = meta.get("files", {}).get(path.name)
        if not path.is_file():
            raise DataError(f"{path}: missing cached file; run `{REBUILD}`")
        if expected is None or file_checksum(path) != expected:
            raise DataError(f"{path}: checksum mismatch (file changed or truncated); run `{REBUILD}`")
        try:
            payload = torch.load(path, weights_only=True, mmap=True)
        except Exception as e:  # a file that matched its checksum but does not load
            raise DataError(f"{path}: cannot load ({type(e).__name__}); run `{REBUILD}`") from e
        attrs = {k[5:]: v for k, v in payload.items() if k.startswith("attr_")}
        out[name] = Split(payload["images"], payload.get("labels"), attrs)
    return out
