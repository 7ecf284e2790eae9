"""MNIST-M by Ganin & Lempitsky's recipe: |random photo patch - digit| per channel, 28x28x3.

Photos come from pip packages (scikit-image, scikit-learn, matplotlib) and, when installed,
Debian's mate-backgrounds / plasma-workspace-wallpapers. Train and val patches come from
disjoint photos: the pip photos have a fixed side; Debian photos go by a hash of their name.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genda.data.embedded import Built, _split, builder, embedded_domain
from genda.errors import DataError

MAX_SIDE = 480  # photos are shrunk to BSDS500's scale (481x321), the photos Ganin used
PIP_VAL = ("chelsea", "coffee", "flower")  # fixed val photos; both motorcycle views stay in train
NOT_PHOTOS = ("Autumn", "Flow", "Honeywave", "PastelHills", "SafeLanding", "Shell")  # rendered art
DEBIAN_GLOBS = ("/usr/share/backgrounds/mate/nature/*.jpg", "/usr/share/wallpapers/*/contents/images")


PIP_PHOTOS = {  # name -> (package, path inside it): files the wheels ship
    **{n: ("skimage", f"data/{f}") for n, f in (
        ("astronaut", "astronaut.png"), ("chelsea", "chelsea.png"), ("coffee", "coffee.png"),
        ("rocket", "rocket.jpg"), ("hubble_deep_field", "hubble_deep_field.jpg"),
        ("immunohistochemistry", "ihc.png"), ("retina", "retina.jpg"),
        ("motorcycle_left", "motorcycle_left.png"), ("motorcycle_right", "motorcycle_right.png"))},
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}


def read_photo(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 with the longer side shrunk to <= MAX_SIDE (JPEG draft + PIL bicubic)."""
    with Image.open(path) as img:
        img.draft("RGB", (MAX_SIDE, MAX_SIDE))
        img = img.convert("RGB")
        s = MAX_SIDE / max(img.size)
        if s < 1:
            img = img.resize((round(img.width * s), round(img.height * s)), Image.BICUBIC)
        return np.ascontiguousarray(np.asarray(img))


def _pip_photo_paths() -> dict[str, Path]:
    """Photo files inside the installed wheels (found without importing the packages)."""
    out = {}
    for name, (pkg, rel) in sorted(PIP_PHOTOS.items()):
        spec = importlib.util.find_spec(pkg)
        path = Path(next(iter(spec.submodule_search_locations))) / rel if spec else None
        if path is None or not path.is_file():
            raise DataError(f"photo {name!r} for mnistm not found ({pkg}: {rel}); reinstall {pkg}")
        out[name] = path
    return out


def _debian_photo_paths() -> list[Path]:
    """One file per Debian photo: mate nature JPEGs; per plasma wallpaper its JPEG nearest 1280
    wide (wallpapers shipped only as PNG are rendered art, not photos, and are left out)."""
    paths = sorted(Path("/").glob(DEBIAN_GLOBS[0].lstrip("/")))
    for folder in sorted(Path("/").glob(DEBIAN_GLOBS[1].lstrip("/"))):
        imgs = sorted(folder.glob("*.jpg"))
        if imgs and _photo_name(imgs[0]) not in NOT_PHOTOS:
            paths.append(min(imgs, key=lambda p: (abs(_width(p) - 1280), p.name)))
    return paths


def _width(path: Path) -> int:
    try:
        return int(path.stem.split("x")[0])
    except ValueError:
        return 0


def _photo_name(path: Path) -> str:
    return path.parts[-4] if path.parent.name == "images" else path.stem


def photos(debian: bool = True) -> list[dict]:
    """Every photo as {name, split, source, pixels (H, W, 3) uint8, sha256}, in a fixed order;
    debian=False: only the photos the pip wheels ship (the same on every machine)."""
    out = [{"name": n, "source": "pip", "path": p, "split": "val" if n in PIP_VAL else "train"}
           for n, p in _pip_photo_paths().items()]
    for path in _debian_photo_paths() if debian else []:
        name = _photo_name(path)
        split = "val" if int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 4 == 0 else "train"
        out.append({"name": name, "source": str(path), "path": path, "split": split})
    for p in out:
        p["pixels"] = read_photo(p.pop("path"))
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


@builder("mnistm", "MNIST-M (Ganin recipe), 60k/10k, 28x28x3, val from disjoint photos", version=2,
         seed=0, n_train=60000, n_val=10000, debian=True)
def build_mnistm(cache_dir: Path, seed: int, n_train: int, n_val: int, debian: bool) -> Built:
    mnist = embedded_domain("mnist", cache_dir)
    ph = photos(debian)
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", n_train), ("val", n_val)):
        pics = [p["pixels"] for p in ph if p["split"] == split]
        digits = mnist.split(split)
        mixed = blend(digits.images[:n].numpy(), pics, rng)
        splits[split] = _split(torch.from_numpy(mixed), digits.labels[:n])
    n_deb = sum(p["source"] != "pip" for p in ph)
    counts = {s: sum(p["split"] == s for p in ph) for s in ("train", "val")}
    note = (f"{n_deb} from Debian wallpapers" if n_deb else
            "no Debian wallpapers installed" if debian else "Debian wallpapers not used (debian=false)")
    return splits, {
        "provenance": f"MNIST-M rebuilt (Ganin & Lempitsky recipe) from {len(ph)} photos "
                      f"({counts['train']} train / {counts['val']} val; {note})",
        "sources": [f"{p['split']}: {p['name']} ({p['source']}, {p['sha256']})" for p in ph]}
