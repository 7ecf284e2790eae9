"""t-SNE plots of features: one coloured by class, one by domain (the course's UDA figures)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from genda.viz.curves import fit_title


@dataclass
class TsnePlots:
    """What `write_tsne` drew: the 2-D embedding (N, 2), the rows used, and both figures."""

    embedding: np.ndarray
    index: np.ndarray
    by_class: Figure
    by_domain: Figure


def subsample(n: int, max_points: int | None, seed: int = 0) -> np.ndarray:
    """Sorted random subset of range(n) of size min(n, max_points)."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def embed(features: np.ndarray, seed: int = 0, pca_dims: int = 50) -> np.ndarray:
    """(N, D) -> (N, 2) t-SNE (PCA to `pca_dims` first, as is standard for speed)."""
    x = features.astype(np.float32)
    if x.shape[1] > pca_dims and len(x) > pca_dims:
        x = PCA(pca_dims, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    with threadpool_limits(1):  # bitwise reproducible, and OpenMP spin-waits badly on shared cores
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


BRIGHTNESS_NAMES = ("darkest third", "middle third", "lightest third")


def brightness_thirds(brightness: np.ndarray) -> np.ndarray:
    """Group index 0/1/2 of each image's mean pixel value (N,) by the thirds of its distribution:
    the colouring of a VAE t-SNE on data without attributes (the embedded faces), computed from the
    pixels, so a reader sees whether the latent orders the images by their overall lightness."""
    b = np.asarray(brightness, dtype=np.float64).reshape(-1)
    edges = np.quantile(b, [1 / 3, 2 / 3])
    return np.searchsorted(edges, b, side="right").astype(int)


def latent_colouring(
    n: int, attr_name: str | None, attr_values: np.ndarray | None, brightness: np.ndarray | None
) -> tuple[np.ndarray, list[str], str]:
    """Groups (n,), legend names and colormap of a VAE latent t-SNE: the binary attribute where the
    data has one, else the images' brightness in thirds, else one group (runs saved before
    brightness was recorded)."""
    if attr_name is not None and attr_values is not None:
        return np.asarray(attr_values).astype(int), [f"not {attr_name}", attr_name], "Set1"
    if brightness is not None:
        return brightness_thirds(brightness), [f"{x} of brightness" for x in BRIGHTNESS_NAMES], "viridis"
    return np.zeros(n, int), ["val images"], "Set1"


def _scatter(
    xy: np.ndarray, groups: np.ndarray, names: Sequence[str], title: str, path: str, cmap: str
) -> Figure:
    fig = Figure(figsize=(6, 6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = colormaps[cmap]

    def color(g: int) -> tuple:  # a qualitative map's g-th colour; an ordered map spread end to end
        return colors(g % colors.N) if colors.N <= 20 else colors(0.1 + 0.8 * g / max(1, len(names) - 1))

    for g, name in enumerate(names):
        sel = groups == g
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=color(g), label=name, alpha=0.7)
    ax.legend(markerscale=3, fontsize=8, loc="best", framealpha=0.8)
    ax.set_title(fit_title(title, fig.get_figwidth() * 0.9, 12))  # 12 pt: the axes title size
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    return fig


def write_tsne(
    features: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    domains: torch.Tensor | np.ndarray,
    path_class: str,
    path_domain: str,
    domain_names: Sequence[str] = ("source", "target"),
    max_points: int | None = 2000,
    seed: int = 0,
    title: str = "",
) -> TsnePlots:
    """t-SNE of `features: (N, D)`; writes a PNG coloured by `labels: (N,)` (digit classes)
    and one coloured by `domains: (N,)` (0..len(domain_names)-1), both with legends."""
    f, y, d = (
        np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t)
        for t in (features, labels, domains)
    )
    idx = subsample(len(f), max_points, seed)
    xy = embed(f[idx].reshape(len(idx), -1), seed)
    classes = np.unique(y[idx])
    lab = np.searchsorted(classes, y[idx])
    suffix = f" — {title}" if title else ""
    by_class = _scatter(
        xy, lab, [str(c) for c in classes], f"t-SNE by class{suffix}", path_class, "tab10"
    )
    by_domain = _scatter(
        xy, d[idx], list(domain_names), f"t-SNE by domain{suffix}", path_domain, "Set1"
    )
    return TsnePlots(xy, idx, by_class, by_domain)
