"""MNIST-M by Ganin & Lempitsky's recipe: |random photo patch - digit| per channel, 28x28x3.

Photos come from pip packages (scikit-image, scikit-learn, matplotlib) and, when installed,
Debian's mate-backgrounds / plasma-workspace-wallpapers. Train and val patches come from
disjoint photos: the pip photos have a fixed side; Debian photos go by a hash of their name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genda.data.embedded import Built, _split, builder, mnist_arrays

MAX_SIDE = 480  # photos are shrunk to BSDS500's scale (481x321), the photos Ganin used
PIP_VAL = ("chelsea", "coffee", "flower")  # fixed val photos; both motorcycle views stay in train
DEBIAN_GLOBS = ("/usr/share/backgrounds/mate/nature/*.jpg", "/usr/share/wallpapers/*/contents/images")


def _shrink(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> longer side <= MAX_SIDE (PIL bicubic)."""
    h, w = img.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return img
    s = MAX_SIDE / max(h, w)
    return np.asarray(Image.fromarray(img).resize((round(w * s), round(h * s)), Image.BICUBIC))


def _pip_photos() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    import skimage.data as sk
    from sklearn.datasets import load_sample_images

    photos = {n: getattr(sk, n)() for n in ("astronaut", "chelsea", "coffee", "rocket",
                                            "hubble_deep_field", "immunohistochemistry", "retina")}
    photos["motorcycle_left"], photos["motorcycle_right"], _ = sk.stereo_motorcycle()
    sample = load_sample_images()
    for path, img in zip(sample.filenames, sample.images, strict=True):
        photos[Path(path).stem] = img
    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    photos["grace_hopper"] = np.asarray(Image.open(hopper).convert("RGB"))
    return photos


def _debian_photo_paths() -> list[Path]:
    """One file per Debian photo: mate nature JPEGs; per plasma wallpaper its 1280-wide image."""
    paths = sorted(Path("/").glob(DEBIAN_GLOBS[0].lstrip("/")))
    for folder in sorted(Path("/").glob(DEBIAN_GLOBS[1].lstrip("/"))):
        imgs = sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png"))
        if imgs:
            paths.append(min(imgs, key=lambda p: (abs(_width(p) - 1280), p.name)))
    return paths


def _width(path: Path) -> int:
    try:
        return int(path.stem.split("x")[0])
    except ValueError:
        return 0


def _photo_name(path: Path) -> str:
    return path.parts[-4] if path.parent.name == "images" else path.stem


def photos() -> list[dict]:
    """Every photo as {name, split, source, pixels (H, W, 3) uint8, sha256}, in a fixed order."""
    out = [{"name": n, "source": "pip", "pixels": p, "split": "val" if n in PIP_VAL else "train"}
           for n, p in sorted(_pip_photos().items())]
    for path in _debian_photo_paths():
        name = _photo_name(path)
        split = "val" if int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 4 == 0 else "train"
        out.append({"name": name, "source": str(path), "split": split,
                    "pixels": np.asarray(Image.open(path).convert("RGB"))})
    for p in out:
        p["pixels"] = np.ascontiguousarray(_shrink(p["pixels"]))
        p["sha256"] = hashlib.sha256(p["pixels"].tobytes()).hexdigest()[:16]
    return out


def blend(digits: np.ndarray, pics: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """digits (N, 1, 28, 28) uint8 -> |patch - digit| (N, 3, 28, 28), patches of random photos."""
    n = len(digits)
    which = rng.integers(0, len(pics), n)
    u, v = rng.random(n), rng.random(n)
    out = np.empty((n, 28, 28, 3), np.uint8)
    for k, pic in enumerate(pics):
        idx = np.flatnonzero(which == k)
        windows = np.lib.stride_tricks.sliding_window_view(pic, (28, 28), axis=(0, 1))
        ys = (u[idx] * windows.shape[0]).astype(np.int64)
        xs = (v[idx] * windows.shape[1]).astype(np.int64)
        patch = windows[ys, xs].transpose(0, 2, 3, 1).astype(np.int16)  # (k, 28, 28, 3)
        out[idx] = np.abs(patch - digits[idx, 0, :, :, None].astype(np.int16)).astype(np.uint8)
    return out.transpose(0, 3, 1, 2).copy()


@builder("mnistm", "MNIST-M (Ganin recipe), 60k/10k, 28x28x3, val from disjoint photos",
         seed=0, n_train=60000, n_val=10000)
def build_mnistm(cache_dir: Path, seed: int, n_train: int, n_val: int) -> Built:
    xtr, ytr, xte, yte = mnist_arrays()
    ph = photos()
    rng = np.random.default_rng(seed)
    splits = {}
    for split, x, y, n in (("train", xtr, ytr, n_train), ("val", xte, yte, n_val)):
        pics = [p["pixels"] for p in ph if p["split"] == split]
        splits[split] = _split(torch.from_numpy(blend(x[:n], pics, rng)), y[:n])
    n_deb = sum(p["source"] != "pip" for p in ph)
    counts = {s: sum(p["split"] == s for p in ph) for s in ("train", "val")}
    note = f"{n_deb} from Debian wallpapers" if n_deb else "no Debian wallpapers installed"
    return splits, {
        "provenance": f"MNIST-M rebuilt (Ganin & Lempitsky recipe) from {len(ph)} photos "
                      f"({counts['train']} train / {counts['val']} val; {note})",
        "sources": [f"{p['split']}: {p['name']} ({p['source']}, {p['sha256']})" for p in ph]}
