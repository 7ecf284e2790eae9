"""One checkpoint format for every task: plain tensors and dicts, written atomically.

Layout: {"format", "task", "step", "config" (resolved YAML text), "modules": {net: state},
"ema": {net: state}, "optimizers", "schedulers", "scaler", "rng", "data", "best", "monitor",
"input_shape" ((C, H, W) of the training images; None in older checkpoints)}.
Loaded with torch.load(weights_only=True): nothing unpickles arbitrary objects.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genda.errors import CheckpointError
from genda.kernel import atomic_write, file_lock, stale_temp_files  # noqa: F401 - re-exported

FORMAT = "genda-ckpt-1"


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """torch.save `obj` to `path` atomically (see atomic_write)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load and validate a genda checkpoint; one clear error for a missing, torn or foreign file."""
    path = Path(path)
    if path.is_dir():
        path = resolve_in_run_dir(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__} (truncated or not a torch file?)") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a genda checkpoint (format {FORMAT} expected)")
    return ckpt


def resolve_in_run_dir(run_dir: Path, which: str = "last") -> Path:
    """`<run_dir>/checkpoints/{last,best}.ckpt`; accepts a run dir or its checkpoints folder."""
    for cand in (run_dir / "checkpoints" / f"{which}.ckpt", run_dir / f"{which}.ckpt"):
        if cand.is_file():
            return cand
    raise CheckpointError(f"no {which}.ckpt under {run_dir} (is it a genda run dir?)")


def load_module_state(module: torch.nn.Module, state: dict, name: str, path: str = "checkpoint") -> None:
    """Strict load with an error that says which network does not fit."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or bad:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape mismatch at {bad[0]}: {tuple(state[bad[0]].shape)} vs {tuple(own[bad[0]].shape)}")
        raise CheckpointError(f"{path}: network '{name}' does not match this model ({detail}); "
                              f"was it saved by another experiment or model config?")
    module.load_state_dict(state)


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
