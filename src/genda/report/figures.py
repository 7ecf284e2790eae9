"""Report figures made from run-dir contents: learning curves and labelled image stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from genda.viz.curves import (
    curves,  # noqa: F401 - the report draws with them
    fit_title,
)
from genda.viz.curves import plain_axes as _plain_axes


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
    """Stack image rows (H, W, 3) into one figure, each row labelled in a left margin wide
    enough for its label (axes placed by hand, so tight_layout cannot clip the labels)."""
    width = max(r.shape[1] for _, r in rows)
    scale = min(3.0, 900 / width)
    label_in = 0.25 + 0.09 * max(len(label) for label, _ in rows)  # left margin, inches
    gap_in, top_in = 0.08, (0.45 if title else 0.1) + (0.25 if col_labels else 0.0)
    heights = [r.shape[0] * scale / 100 for _, r in rows]
    img_w = width * scale / 100
    fig_w = label_in + img_w + 0.1
    fig_h = top_in + sum(heights) + gap_in * len(rows) + 0.05
    fig = Figure(figsize=(fig_w, fig_h), dpi=100)
    FigureCanvasAgg(fig)
    y = fig_h - top_in
    for i, ((label, img), h) in enumerate(zip(rows, heights, strict=True)):
        w = img_w * img.shape[1] / width
        y -= h
        ax = fig.add_axes((label_in / fig_w, y / fig_h, w / fig_w, h / fig_h))
        ax.imshow(img, interpolation="nearest", aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.text((label_in - 0.1) / fig_w, (y + h / 2) / fig_h, label, ha="right", va="center",
                 fontsize=10)
        if i == 0 and col_labels:
            ax.set_title("   ".join(col_labels), fontsize=9)
        y -= gap_in
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.08 / fig_h, va="top")
    fig.savefig(path)
    return path


def series(rows: list[dict], key: str, fn=None) -> tuple[list[float], list[float]]:
    """(steps, values) of one metrics.jsonl key (values mapped through `fn` when given)."""
    pts = [(r["step"], r[key]) for r in rows
           if isinstance(r.get(key), int | float) and not isinstance(r.get(key), bool) and "step" in r]
    if fn is not None:
        pts = [(s, fn(v)) for s, v in pts]
    return [p[0] for p in pts], [p[1] for p in pts]


def panels(
    spec: list[tuple[str, list[tuple[str, tuple[list[float], list[float]]]], tuple | None]],
    path: Path,
    title: str,
) -> Path | None:
    """One figure of panels side by side: spec = [(panel title, [(line label, (x, y))], ylim)].
    Panels without data are left out; returns None when none has data."""
    spec = [(t, [(lab, xy) for lab, xy in lines if xy[0]], lim) for t, lines, lim in spec]
    spec = [p for p in spec if p[1]]
    if not spec:
        return None
    fig = Figure(figsize=(4.3 * len(spec), 3.3), dpi=100)
    FigureCanvasAgg(fig)
    # where a label is drawn in several panels (a method in the UDA loss, domain-loss and lambda
    # panels) it keeps one colour in all of them, in order of first appearance; otherwise each panel
    # uses the colour cycle (a GAN's D loss and D(x) are both its first line: blue)
    named = [lab for _, lines, _ in spec for lab, _ in lines]
    labels = list(dict.fromkeys(named))
    palette = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    color = ({lab: palette(i % palette.N) for i, lab in enumerate(labels)}
             if len(named) > len(labels) else {})
    first = None
    for i, (ptitle, lines, lim) in enumerate(spec):
        # one step axis for all panels: a validation metric logged once (SN-GAN's FID at step 400)
        # is a point on the run's 0..500 steps, not a panel of its own 380..420 range
        ax = fig.add_subplot(1, len(spec), i + 1, sharex=first)
        first = first or ax
        for label, (x, y) in lines:
            ax.plot(x, y, label=label, marker="." if len(x) < 30 else None, linewidth=1.2,
                    color=color.get(label))
        if lim:
            ax.set_ylim(*lim)
            ax.ticklabel_format(style="plain", useOffset=False)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            _plain_axes(ax, [v for _, (_, y) in lines for v in y])
        ax.set_xlabel("training step")
        ax.set_title(ptitle, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)  # names the method / split even for a single line
    fig.suptitle(fit_title(title, fig.get_figwidth(), 11), fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    return path
