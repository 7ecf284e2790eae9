"""Long figure titles wrap to the figure's width instead of being cut off at its edges
(the WGAN curves' and the VAE t-SNE's titles were): checked with matplotlib's own text extents."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genda.report.figures import panels
from genda.viz.curves import fit_title
from genda.viz.tsne import _scatter

WGAN = ("WGAN: weight clipping, RMSprop, LeakyReLU G at cpu, 1,500 critic steps = 300 generator "
        "updates (gan_wgan_cpu/seed0)")
VAE = "VAE latent means, t-SNE, by image brightness (faces_synthetic has no attributes)"


def _inside(fig: Figure, text) -> bool:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box, page = text.get_window_extent(canvas.get_renderer()), fig.bbox
    return box.x0 >= page.x0 and box.x1 <= page.x1


@pytest.mark.parametrize("width,size", [(8.6, 11), (12.9, 11), (6.0, 12), (4.3, 10)])
def test_wrapped_title_fits_the_figure(width, size):
    for title in (WGAN, VAE, "short title"):
        fig = Figure(figsize=(width, 3.3), dpi=100)
        st = fig.suptitle(fit_title(title, width, size), fontsize=size)
        assert _inside(fig, st), (title, width)


def test_short_titles_are_unchanged_and_words_are_kept():
    assert fit_title("A: DCGAN (course) (gan_a/seed0)", 8.6, 11) == "A: DCGAN (course) (gan_a/seed0)"
    wrapped = fit_title(WGAN, 8.6, 11)
    assert "\n" in wrapped and wrapped.replace("\n", " ") == WGAN


def test_unwrapped_title_would_not_fit():
    """The check above can fail: the same title unwrapped runs past both edges."""
    fig = Figure(figsize=(8.6, 3.3), dpi=100)
    assert not _inside(fig, fig.suptitle(WGAN, fontsize=11))


def test_report_panels_and_tsne_keep_their_titles_inside(tmp_path):
    xy = ([0.0, 1.0, 2.0], [1.0, 0.5, 0.2])
    assert panels([("losses", [("D loss", xy)], None), ("critic", [("D(x)", xy)], None)],
                  tmp_path / "c.png", WGAN).is_file()
    fig = _scatter(np.random.default_rng(0).normal(size=(20, 2)), np.zeros(20, int), ["faces"], VAE,
                   str(tmp_path / "t.png"), "Set1")
    assert _inside(fig, fig.axes[0].title)


def test_a_method_keeps_its_colour_across_panels(tmp_path, monkeypatch):
    """The UDA curves: DANN is drawn in the loss, domain-loss and lambda panels, in one colour."""
    from matplotlib.colors import to_hex

    import genda.report.figures as figures

    made: list[Figure] = []
    monkeypatch.setattr(figures, "Figure", lambda *a, **k: made.append(Figure(*a, **k)) or made[-1])
    xy = ([0.0, 1.0], [1.0, 0.5])
    panels([("classification", [("source only", xy), ("DANN", xy), ("DANN + MCC", xy)], None),
            ("domain loss", [("DANN", xy), ("ADDA", xy)], None),
            ("lambda", [("DANN + MCC", xy), ("DANN", xy)], None)], tmp_path / "u.png", "Training curves")
    seen: dict[str, set] = {}
    for ax in made[0].axes:
        for line in ax.get_lines():
            seen.setdefault(line.get_label(), set()).add(to_hex(line.get_color()))
    assert all(len(c) == 1 for c in seen.values()), seen
    assert len({next(iter(c)) for c in seen.values()}) == 4  # four methods, four colours
