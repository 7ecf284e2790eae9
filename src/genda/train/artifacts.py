"""The run's artefact writer: the one place that knows the artefact layout of a run dir."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from genda.kernel import ARTEFACT_INDEX, ARTEFACT_INDEX_SCHEMA, atomic_folder, atomic_write
from genda.tasks.base import Every, Task
from genda.viz.curves import fit_title
from genda.viz.images import to_unit


def save_folder(folder: Path, images: torch.Tensor, filenames: list[str], value_range=(-1.0, 1.0),
                normalize: str = "clamp") -> Path:
    """Each image as its own PNG (rounded to uint8) in `folder`; the one folder writer. Written into
    a temp folder beside `folder`, then renamed (into an existing folder: each file moved in), so a
    failure (a full disk) leaves nothing half-written behind."""
    if len(images) != len(filenames):
        raise ValueError(f"{len(images)} images for {len(filenames)} file names")
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "an existing file, not a folder", str(folder))
    with atomic_folder(folder) as tmp:
        for img, fname in zip(to_unit(images, value_range, normalize), filenames, strict=True):
            save_image(img, tmp / fname)
    return folder


class RunArtifacts:
    """Artefacts under `<run_dir>/artifacts/`; grids are mirrored to the logger as images."""

    def __init__(self, run_dir: Path, logger=None, step_fn=lambda: 0, enabled: bool = True) -> None:
        self.root = Path(run_dir) / "artifacts"
        self.logger, self.step_fn, self.enabled = logger, step_fn, enabled
        if enabled:
            self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> str:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return str(p)

    def grid(self, name: str, images: torch.Tensor, nrow: int = 8, value_range=(-1.0, 1.0),
             normalize: str = "clamp") -> str:
        path = self.path(f"{name}.png")
        if self.enabled:
            save_image(make_grid(to_unit(images, value_range, normalize), nrow=nrow, padding=2), path)
            if self.logger is not None:
                # `samples/step_0000200` -> key `samples` (one W&B panel with a step slider)
                key, _, step = name.partition("/step_")
                self.logger.log_image(key, path, self.step_fn(), caption=f"step {int(step)}"
                                      if step.isdigit() else name)
        return path

    def folder(self, name: str, images: torch.Tensor, filenames: list[str], value_range=(-1.0, 1.0),
               normalize: str = "clamp") -> str:
        folder = Path(self.path(name))
        if self.enabled:
            save_folder(folder, images, filenames, value_range, normalize)
        return str(folder)

    def arrays(self, name: str, **arrays: Any) -> str:
        path = self.path(f"{name}.npz")
        if self.enabled:
            np.savez_compressed(path, **{k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor)
                                         else np.asarray(v) for k, v in arrays.items()})
        return path

    def json(self, name: str, obj: Any) -> str:
        path = self.path(f"{name}.json")
        if self.enabled:
            Path(path).write_text(json.dumps(obj, indent=2, default=float) + "\n")
        return path

    def labelled(self, name: str, images: torch.Tensor, nrow: int, *, row_labels=None,
                 col_labels=None, title: str = "", xlabel: str = "", ylabel: str = "",
                 value_range=(-1.0, 1.0), normalize: str = "clamp") -> str:
        """`<name>_labelled.png`: the grid with its rows and columns labelled (digits, timesteps,
        eta values...), for a reader who opens the run dir; logged under `<name>`."""
        path = self.path(f"{name}_labelled.png")
        if self.enabled:
            labelled_grid(to_unit(images, value_range, normalize), nrow, path, row_labels=row_labels,
                          col_labels=col_labels, title=title, xlabel=xlabel, ylabel=ylabel)
            if self.logger is not None:
                self.logger.log_image(name, path, self.step_fn(), caption=title or name)
        return path

    def log_figure(self, key: str, path: str, caption: str | None = None) -> str:
        """Mirror an existing PNG of the run dir to the logger under one key (`tsne/class`...)."""
        if self.enabled and self.logger is not None and Path(path).is_file():
            self.logger.log_image(key, path, self.step_fn(), caption=caption)
        return path

    def curves(self, name: str, keys: list[str], title: str) -> str | None:
        """`<name>.png`: each `metrics.jsonl` key against step (one panel per key, linear axes)."""
        path = self.path(f"{name}.png")
        if not self.enabled:
            return path
        log = self.root.parent / "metrics.jsonl"
        rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.is_file() else []
        from genda.viz.curves import curves  # matplotlib only when a run draws its curves

        if curves(rows, keys, Path(path), title) is None:
            return None
        self.log_figure(name, path, title)
        return path

    def text(self, name: str, text: str) -> str:
        path = self.path(f"{name}.txt")
        if self.enabled:
            Path(path).write_text(text if text.endswith("\n") else text + "\n")
        return path

    def write_index(self, task: Task) -> None:
        """`index.json` of the task's ARTEFACTS roles, once its final artefacts are written."""
        if self.enabled:
            write_index(self.root, type(task))


def find_roles(root: Path, roles: dict[str, tuple[str, ...] | Every]) -> dict[str, str | list[str]]:
    """{role: path relative to `root`} of the first existing file among each role's candidate
    names/globs; an Every(glob) role maps to all its matches, sorted. Roles without a file are
    left out."""
    found: dict[str, str | list[str]] = {}
    for role, spec in roles.items():
        if isinstance(spec, Every):
            hits = sorted(p.relative_to(root).as_posix() for p in root.glob(spec.pattern) if p.is_file())
            if hits:
                found[role] = hits
            continue
        if isinstance(spec, str) or not all(isinstance(s, str) for s in spec):
            raise TypeError(f"artefact role {role!r}: a tuple of file names/globs or Every(glob), "
                            f"not {spec!r}")
        hit = next((p for pat in spec for p in sorted(root.glob(pat)) if p.is_file()), None)
        if hit is not None:
            found[role] = hit.relative_to(root).as_posix()
    return found


def write_index(root: Path, task: type[Task]) -> Path:
    """`<root>/index.json` (root: a run's artifacts/; format in genda.kernel): the files of the
    task's ARTEFACTS roles that exist, written atomically. The report reads roles only here."""
    root = Path(root)
    doc = {"schema": ARTEFACT_INDEX_SCHEMA, "task": task.__name__,
           "artefacts": find_roles(root, task.ARTEFACTS)}
    text = json.dumps(doc, indent=2) + "\n"
    atomic_write(root / ARTEFACT_INDEX, lambda f: f.write(text.encode()))
    return root / ARTEFACT_INDEX


def labelled_grid(images: torch.Tensor, nrow: int, path: str, *, row_labels=None, col_labels=None,
                  title: str = "", xlabel: str = "", ylabel: str = "") -> str:
    """Images in [0, 1] as a grid of `nrow` columns with labelled rows/columns (matplotlib)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = images.detach().float().cpu().clamp(0, 1)
    n, c, h, w = x.shape
    cols = max(1, int(nrow))
    rows = -(-n // cols)
    pad = max(1, h // 16)
    canvas = torch.ones(3, rows * (h + pad) - pad, cols * (w + pad) - pad)
    for i in range(n):
        r, k = divmod(i, cols)
        canvas[:, r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = x[i].expand(3, h, w)
    img = canvas.permute(1, 2, 0).numpy()
    # at least ~72 px per image on the page (a 28x28 digit or a 32x32 face reads at that size);
    # labels take a fixed margin
    scale = max(1.0, 72 / max(h, w))
    fig = Figure(figsize=(max(5.0, 1.4 + img.shape[1] * scale / 100), 1.0 + img.shape[0] * scale / 100),
                 dpi=100)  # wide enough for the title
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([k * (w + pad) + w / 2 for k in range(cols)] if col_labels else [])
    if col_labels:
        ax.set_xticklabels([str(v) for v in col_labels][:cols], fontsize=8)
        ax.xaxis.set_ticks_position("top")
        ax.xaxis.set_label_position("top")
    ax.set_yticks([r * (h + pad) + h / 2 for r in range(rows)] if row_labels else [])
    if row_labels:
        ax.set_yticklabels([str(v) for v in row_labels][:rows], fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=9)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)
    if title:
        fig.suptitle(fit_title(title, fig.get_figwidth(), 10), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path
