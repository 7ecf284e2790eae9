"""Report figures made from run-dir contents: learning curves and labelled image stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image


def curves(rows: list[dict], keys: list[str], path: Path, title: str) -> Path | None:
    """Plot each metrics.jsonl key against step (one panel per key, log-y when positive)."""
    series = {
        k: [(r["step"], r[k]) for r in rows if isinstance(r.get(k), int | float)] for k in keys
    }
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig = Figure(figsize=(4.2 * len(series), 3.2), dpi=100)
    FigureCanvasAgg(fig)
    for i, (k, pts) in enumerate(series.items()):
        ax = fig.add_subplot(1, len(series), i + 1)
        x, y = zip(*pts, strict=True)
        ax.plot(x, y, marker="." if len(x) < 30 else None)
        if min(y) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(k, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    return path


def load_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 of a PNG (grey or RGBA converted)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def row_of(paths: list[Path], pad: int = 2) -> np.ndarray:
    """Images side by side (H, sum W + pads, 3), resized to the first one's height."""
    imgs = [load_rgb(p) for p in paths]
    h = imgs[0].shape[0]
    fitted = [
        im
        if im.shape[0] == h
        else np.asarray(Image.fromarray(im).resize((round(im.shape[1] * h / im.shape[0]), h)))
        for im in imgs
    ]
    gap = np.full((h, pad, 3), 255, np.uint8)
    parts = [x for im in fitted for x in (im, gap)][:-1]
    return np.concatenate(parts, axis=1)


def labelled_rows(
    rows: list[tuple[str, np.ndarray]],
    path: Path,
    title: str = "",
    col_labels: list[str] | None = None,
) -> Path:
    """Stack image rows (H, W, 3) into one figure, each row labelled on its left."""
    width = max(r.shape[1] for _, r in rows)
    height = sum(r.shape[0] for _, r in rows)
    scale = min(3.0, 900 / width)
    fig = Figure(
        figsize=(1.2 + width * scale / 100, 0.6 + height * scale / 100 + 0.15 * len(rows)), dpi=100
    )
    FigureCanvasAgg(fig)
    for i, (label, img) in enumerate(rows):
        ax = fig.add_subplot(len(rows), 1, i + 1)
        ax.imshow(img, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="center", va="center", labelpad=32, fontsize=10)
        if i == 0 and col_labels:
            ax.set_title("   ".join(col_labels), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    return path
