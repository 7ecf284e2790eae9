"""One checkpoint format for every task: plain tensors and dicts, written atomically.

Layout: {"format", "task", "step", "config" (resolved YAML text), "modules": {net: state},
"ema": {net: state}, "optimizers", "schedulers", "scaler", "rng", "data", "best", "monitor",
"input_shape" ((C, H, W) of the training images; None in older checkpoints)}.
Loaded with torch.load(weights_only=True): nothing unpickles arbitrary objects.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from genda.errors import CheckpointError

FORMAT = "genda-ckpt-1"


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if missing) for the block, so parallel
    runs (`genda.report run --jobs N`) build one shared cache entry once instead of racing.
    Where `fcntl` is missing (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Run `write(file)` on a temp file in the same folder, fsync, rename over `path`, fsync the
    folder. A crash at any point leaves either the old file or the new one, never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


_TEMP = re.compile(r"^\.(.+)\.[a-z0-9_]{8}\.tmp$")  # atomic_write's mkstemp names


def stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Temp files of `atomic_write` in `folder` (a kill mid-write leaves one behind): the target
    file itself was never touched, so they are safe to remove before a run starts writing."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and _TEMP.match(p.name))


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
