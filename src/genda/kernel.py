"""genda's low kernel: atomic file writes, inter-process locks and the checkpoint readers, used
by every room (data, metrics, tasks, train, report) so none of them imports another for a small
utility. Imports only the standard library, filelock and genda.errors (torch lazily, in the
checkpoint readers)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from filelock import FileLock

from genda.errors import CheckpointError

if TYPE_CHECKING:
    import torch

CKPT_FORMAT = "genda-ckpt-1"  # the `format` key of every genda checkpoint (genda.train.checkpoint)
# <run dir>/artifacts/index.json: {"schema", "task", "artefacts": {role: path | [paths]}}, written at
# the end of a run from the task's ARTEFACTS (genda.train.artifacts), read by genda.report
ARTEFACT_INDEX = "index.json"
ARTEFACT_INDEX_SCHEMA = 1


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block, so parallel runs
    (`genda.reproduce --jobs N`) build one shared cache entry once instead of racing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


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


def progress(iterable, desc: str, total: int | None = None, unit: str = "batch"):
    """A tqdm bar on stderr for a long step (FID features, sampling, face scoring); shown on a
    terminal only (`disable=None`), so logs and CI output stay clean."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, disable=None,
                dynamic_ncols=True, mininterval=1.0)


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp folder beside `out` to fill; on success it becomes `out` (renamed, or moved in
    file by file where `out` exists), on failure it is removed: nothing half-written stays."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the folder gets the usual mode
    try:
        yield tmp
        if not out.exists():
            os.replace(tmp, out)
        else:
            for src in sorted(tmp.rglob("*")):
                dst = out / src.relative_to(tmp)
                if src.is_dir():
                    dst.mkdir(exist_ok=True)
                else:
                    os.replace(src, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- reading checkpoints (written by genda.train.checkpoint; read by metrics, tasks, train) ----------


def resolve_in_run_dir(run_dir: Path, which: str = "last") -> Path:
    """`<run_dir>/checkpoints/{last,best}.ckpt`; accepts a run dir or its checkpoints folder."""
    for cand in (run_dir / "checkpoints" / f"{which}.ckpt", run_dir / f"{which}.ckpt"):
        if cand.is_file():
            return cand
    raise CheckpointError(f"no {which}.ckpt under {run_dir} (is it a genda run dir?)")


def read_torch_file(path: str | os.PathLike, map_location: Any = "cpu", what: str = "checkpoint",
                    hint: str = "truncated or not a torch file?") -> tuple[Path, Any]:
    """(the file's path, its contents) read with torch.load(weights_only=True): a run dir reads its
    last.ckpt; a missing or unreadable file is one CheckpointError naming it (`what`, `hint`)."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = resolve_in_run_dir(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return path, torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read {what} {path}: {type(e).__name__} ({hint})") from None


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load and validate a genda checkpoint (a run dir reads its last.ckpt) with
    torch.load(weights_only=True): plain tensors and containers only, nothing unpickles arbitrary
    objects. One clear CheckpointError for a missing, torn or foreign file."""
    path, ckpt = read_torch_file(path, map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path} is not a genda checkpoint (format {CKPT_FORMAT} expected)")
    return ckpt


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
