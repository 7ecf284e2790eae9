"""genda's low kernel: atomic file writes and inter-process locks, used by every room (data,
metrics, train, report) so none of them imports another for a small utility. Imports only the
standard library and filelock."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block, so parallel runs
    (`genda.report run --jobs N`) build one shared cache entry once instead of racing."""
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
