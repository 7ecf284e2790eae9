"""One checkpoint format for every task: plain tensors and dicts, written atomically.

Layout: {"format", "task", "step", "config" (resolved YAML text), "modules": {net: state},
"ema": {net: state}, "optimizers", "schedulers", "scaler", "rng", "data", "best", "monitor",
"input_shape" ((C, H, W) of the training images; None in older checkpoints)}.
Loaded with torch.load(weights_only=True): nothing unpickles arbitrary objects. The readers
(`load`, `resolve_in_run_dir`, `load_module_state`) live in genda.kernel, so metrics and tasks read
checkpoints without importing the training room; they are re-exported here.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from genda.kernel import (  # noqa: F401 - re-exported
    CKPT_FORMAT,
    atomic_write,
    file_lock,
    load_module_state,
    resolve_in_run_dir,
    stale_temp_files,
)
from genda.kernel import load_checkpoint as load  # noqa: F401 - re-exported

FORMAT = CKPT_FORMAT


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """torch.save `obj` to `path` atomically (see atomic_write)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
             "numpy": _numpy_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> list:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]
