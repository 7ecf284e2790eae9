"""Synthetic street-number digits (the DANN paper's "Syn Numbers", an SVHN stand-in).

Each image shows a 1-3 digit string in one font; the label is the centre digit, neighbours
are cut by the frame. Glyphs are rendered once per font into an atlas (PIL/FreeType); the
per-image work (layout, rotation, scale, shift, colours, gradient, blur, noise) is batched
torch with a fixed-seed numpy generator, so a build is a pure function of (fonts, seed).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from genda.data.embedded import Built, _split, builder

GLYPH = 64  # atlas cell side; glyphs rendered at font size 40 on baseline y=50
SKIP = ("cmex", "cmsy", "STIXSiz", "LastResort", "Symbol", "D050000L", "Math", "Music", "Emoji",
        "Display", "Z003", "LinBiolinum_K", "Hairline")  # symbol / script / fallback fonts whose digits are not digits
DEBIAN_FONTS = Path("/usr/share/fonts")


def font_files(debian: bool = True) -> list[Path]:
    """matplotlib's bundled fonts, then (debian=True) those under /usr/share/fonts; sorted."""
    import matplotlib

    files = []
    for root in (Path(matplotlib.get_data_path()) / "fonts" / "ttf", *([DEBIAN_FONTS] if debian else [])):
        found = [p for ext in ("*.ttf", "*.otf") for p in root.rglob(ext)]
        files += sorted(p for p in found if not any(s in p.name for s in SKIP))
    return files


def _atlas(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(10, 64, 64) float32 glyph masks centred at x=32 and advances (10,), or None if unusable."""
    try:
        font = ImageFont.truetype(str(path), 40)
    except OSError:
        return None
    masks, adv = [], []
    for d in "0123456789":
        img = Image.new("L", (GLYPH, GLYPH))
        ImageDraw.Draw(img).text((GLYPH // 2, 50), d, fill=255, font=font, anchor="ms")
        masks.append(np.asarray(img, np.float32) / 255.0)
        adv.append(font.getlength(d))
    m = np.stack(masks)
    ink = m.reshape(10, -1).sum(1)
    distinct = len({hashlib.sha1((g > 0.5).tobytes()).hexdigest() for g in m}) == 10
    rows = np.flatnonzero(m.max(axis=(0, 2)) > 0.5)
    if not distinct or ink.min() < 20 or len(rows) < 15:
        return None
    return m, np.asarray(adv, np.float32)


def load_fonts(debian: bool = True) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Usable fonts with distinct renderings: names, masks (F,10,64,64), advances (F,10), ink box (F,2)."""
    names, masks, advs, seen = [], [], [], set()
    for path in font_files(debian):
        got = _atlas(path)
        if got is None:
            continue
        key = hashlib.sha1((got[0] > 0.5).tobytes()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        names.append(path.name if "matplotlib" in str(path) else str(path))
        masks.append(got[0])
        advs.append(got[1])
    m = np.stack(masks)
    rows = m.max(axis=(1, 3)) > 0.5  # (F, 64): which rows any digit inks
    top = rows.argmax(1)
    bottom = GLYPH - rows[:, ::-1].argmax(1)
    return names, m, np.stack(advs), np.stack([top, bottom], 1).astype(np.float32)


def _layout(masks: np.ndarray, advs: np.ndarray, font: np.ndarray, digits: np.ndarray,
            present: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Strings on (N, 64, 192) canvases, the centre digit centred at x=96; neighbours if present."""
    n = len(font)
    canvas = np.zeros((n, GLYPH, 3 * GLYPH), np.float32)
    for i in range(n):
        f, (left, c, right) = font[i], digits[i]
        canvas[i, :, GLYPH:2 * GLYPH] = masks[f, c]
        for side, d in ((-1, left), (1, right)):
            if present[i, (side + 1) // 2]:
                shift = int(round((advs[f, c] + advs[f, d]) / 2 * gap[i])) * side
                x0 = GLYPH + shift
                np.maximum(canvas[i, :, x0:x0 + GLYPH], masks[f, d], out=canvas[i, :, x0:x0 + GLYPH])
    return canvas


def _warp(canvas: torch.Tensor, centre_y: torch.Tensor, side: torch.Tensor, angle: torch.Tensor,
          shift: torch.Tensor, out: int) -> torch.Tensor:
    """Sample an out x out window (side px, rotated, shifted) around the centre digit; 2x supersampled."""
    n, h, w = canvas.shape
    cos, sin = torch.cos(angle), torch.sin(angle)
    half = side / 2
    # output coords in [-1, 1] -> canvas pixels: centre + R * half * (u, v) + shift
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * half / ((w - 1) / 2), -sin * half / ((w - 1) / 2)
    theta[:, 1, 0], theta[:, 1, 1] = sin * half / ((h - 1) / 2), cos * half / ((h - 1) / 2)
    theta[:, 0, 2] = shift[:, 0] / ((w - 1) / 2)
    theta[:, 1, 2] = (centre_y + shift[:, 1] - (h - 1) / 2) / ((h - 1) / 2)
    grid = F.affine_grid(theta, [n, 1, 2 * out, 2 * out], align_corners=True)
    x = F.grid_sample(canvas[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return F.avg_pool2d(x, 2)


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Background and text colours (N, 3) in [0, 1] with luma contrast >= 0.3."""
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    bg = rng.random((n, 3), dtype=np.float32)
    cand = rng.random((n, 8, 3), dtype=np.float32)
    ok = np.abs(cand @ luma - (bg @ luma)[:, None]) >= 0.3
    first = ok.argmax(1)
    fg = cand[np.arange(n), first]
    none = ~ok.any(1)
    fg[none] = np.where((bg[none] @ luma)[:, None] > 0.5, 0.0, 1.0)
    return bg, fg


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur: x (N, C, H, W), sigma (N,) px (0 = none), 5x5 kernel."""
    n, c, h, w = x.shape
    r = torch.arange(-2, 3, dtype=torch.float32)
    g = torch.exp(-(r[None] ** 2) / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
    g = g / g.sum(1, keepdim=True)
    k = (g[:, :, None] * g[:, None, :]).repeat_interleave(c, 0)[:, None]  # (N*C, 1, 5, 5)
    y = F.conv2d(F.pad(x.reshape(1, n * c, h, w), (2, 2, 2, 2), mode="replicate"), k, groups=n * c)
    return y.reshape(n, c, h, w)


def render(fonts: tuple, n: int, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n images uint8 (n, 3, size, size) and centre-digit labels (n,)."""
    _, masks, advs, ink = fonts
    font = rng.integers(0, len(masks), n)
    digits = rng.integers(0, 10, (n, 3))
    present = rng.random((n, 2)) < 0.7
    gap = rng.uniform(0.95, 1.25, n).astype(np.float32)
    canvas = torch.from_numpy(_layout(masks, advs, font, digits, present, gap))
    height = torch.from_numpy(ink[font, 1] - ink[font, 0])
    centre_y = torch.from_numpy(ink[font].mean(1))
    side = height / torch.from_numpy(rng.uniform(0.5, 0.8, n).astype(np.float32))
    angle = torch.from_numpy(rng.uniform(-math.pi / 12, math.pi / 12, n).astype(np.float32))
    shift = torch.from_numpy(rng.uniform(-0.1, 0.1, (n, 2)).astype(np.float32)) * side[:, None]
    mask = _warp(canvas, centre_y, side, angle, shift, size)  # (n, 1, size, size)
    bg, fg = (torch.from_numpy(c)[:, :, None, None] for c in _colours(rng, n))
    ramp = torch.linspace(-1, 1, size)
    direction = torch.from_numpy(rng.uniform(0, 2 * math.pi, n).astype(np.float32))
    grad = (torch.cos(direction)[:, None, None] * ramp[None, None, :]
            + torch.sin(direction)[:, None, None] * ramp[None, :, None])[:, None]
    strength = torch.from_numpy(rng.uniform(-0.2, 0.2, (n, 3)).astype(np.float32))[:, :, None, None]
    img = (bg + strength * grad) * (1 - mask) + fg * mask
    img = _blur(img, torch.from_numpy(rng.uniform(0.0, 1.0, n).astype(np.float32)))
    noise = torch.from_numpy(rng.standard_normal((n, 3, size, size), dtype=np.float32))
    img = img + noise * torch.from_numpy(rng.uniform(0, 0.04, n).astype(np.float32))[:, None, None, None]
    return (img * 255).round().clamp(0, 255).to(torch.uint8), torch.from_numpy(digits[:, 1])


@builder("syndigits", "synthetic street-number digits (SVHN stand-in), 50k/10k, 28x28x3",
         seed=0, n_train=50000, n_val=10000, size=28, debian=True)
def build_syndigits(cache_dir: Path, seed: int, n_train: int, n_val: int, size: int,
                    debian: bool) -> Built:
    fonts = load_fonts(debian)
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", n_train), ("val", n_val)):
        parts = [render(fonts, min(2000, n - i), size, rng) for i in range(0, n, 2000)]
        splits[split] = _split(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    names = fonts[0]
    n_deb = sum(name.startswith("/") for name in names)
    note = (f"{n_deb} from Debian fonts" if n_deb else
            "no Debian fonts installed" if debian else "Debian fonts not used (debian=false)")
    return splits, {
        "provenance": f"synthetic 1-3 digit strings in {len(names)} distinct fonts ({note}), "
                      f"centre digit = label; SVHN stand-in",
        "sources": names}
