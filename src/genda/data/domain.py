"""Named image domains: train/val splits as uint8 tensors held in memory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genda.errors import DataError


@dataclass
class Split:
    """images: (N, C, H, W) uint8; labels: (N,) int64 or None; attrs: name -> (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    attrs: dict[str, torch.Tensor] = field(default_factory=dict)
    names: list[str] | None = None  # file names when read from a folder

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(f"split images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) == 0:
            raise DataError("empty split: no images")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise DataError(f"{len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class Domain:
    name: str
    train: Split
    val: Split
    num_classes: int | None
    provenance: str  # one line: where the pixels came from
    embedded: bool  # True: built offline by genda (a stand-in); False: the user's real data

    def split(self, which: str) -> Split:
        if which not in ("train", "val"):
            raise DataError(f"unknown split {which!r}: use 'train' or 'val'")
        return getattr(self, which)


Loader = Callable[..., Domain]
_REGISTRY: dict[str, tuple[Loader, str]] = {}


def register(name: str, summary: str) -> Callable[[Loader], Loader]:
    """Register `fn(data_dir, cache_dir, **kw) -> Domain` under `name`."""

    def deco(fn: Loader) -> Loader:
        _REGISTRY[name] = (fn, summary)
        return fn

    return deco


def default_cache_dir() -> Path:
    """$GENDA_CACHE, or ~/.cache/genda when it is unset or empty (an empty value must not put the
    cache in the working directory, where a `git add -A` picks up hundreds of MB of data)."""
    return Path(os.environ.get("GENDA_CACHE") or Path.home() / ".cache" / "genda")


def domain_names() -> dict[str, str]:
    _load_builtin()
    return {k: v[1] for k, v in sorted(_REGISTRY.items())}


def load_domain(name: str, data_dir: str | None = None, cache_dir: str | None = None, **kw) -> Domain:
    """Load a registered domain by name (e.g. 'mnist', 'mnistm', 'faces')."""
    _load_builtin()
    if name not in _REGISTRY:
        raise DataError(f"unknown domain {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    fn, _ = _REGISTRY[name]
    return fn(data_dir=data_dir, cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(), **kw)


def _load_builtin() -> None:
    from genda.data import sources  # noqa: F401  (registers the built-in domains)


def file_checksum(path: Path, chunk: int = 1 << 22) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
