"""Learning curves from metrics.jsonl rows: one panel per key against the training step, linear
axes with plain tick labels (log only when positive values span over 100x). Used by a run (its
own curves.png) and by the report."""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def plain_axes(ax, values: list[float]) -> None:
    """Linear y with plain tick labels; log y only when positive values span over 100x."""
    from matplotlib.ticker import FuncFormatter

    pos = [v for v in values if v > 0]
    if pos and len(pos) == len(values) and max(pos) / min(pos) > 100:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are integers


def fit_title(text: str, width_in: float, fontsize: float) -> str:
    """`text` broken into lines that fit a figure `width_in` inches wide at `fontsize` points
    (an average character is about 0.55 em), so a long title wraps instead of being cut off at
    both edges of the saved figure."""
    chars = max(20, int(width_in * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars, break_on_hyphens=False)) if len(text) > chars else text


def curves(rows: list[dict], keys: list[str], path: Path, title: str) -> Path | None:
    """Plot each metrics.jsonl key against step (one panel per key, linear unless a log axis is
    needed)."""
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
        plain_axes(ax, list(y))
        ax.set_xlabel("training step")
        ax.set_title(k, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(fit_title(title, fig.get_figwidth(), 11), fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    return path
