"""Built-in domains. Importing this module registers them.

Embedded (built offline into the cache): see `embedded.BUILDERS`.
Real (the user's data under `data_dir`): the course layout, else torchvision's datasets when
the domain kwarg `download=true` and the machine has network (or the files are already there).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from genda.data.domain import Domain, Split, register
from genda.data.embedded import BUILDERS, embedded_domain
from genda.data.folders import read_course
from genda.data.store import load_splits, read_meta, save_splits
from genda.errors import DataError


def _register_embedded(name: str) -> None:
    def load(data_dir=None, cache_dir=None, **kw) -> Domain:
        return embedded_domain(name, cache_dir, **kw)

    register(name, BUILDERS[name].summary)(load)


for _name in BUILDERS:
    _register_embedded(_name)

# real domain -> (course sub-folder of data_dir, embedded stand-in, num_classes, torchvision class)
REAL = {
    "faces": ("face", "faces_synthetic", None, None),
    "mnistm_real": ("digits/mnistm", "mnistm", 10, None),
    "svhn": ("digits/svhn", "syndigits", 10, "SVHN"),
    "usps": ("digits/usps", "usps_mfeat", 10, "USPS"),
    "celeba": ("celeba", "faces_synthetic", None, "CelebA"),  # course layout only with celeba/train/
    "mnist_torchvision": (None, "mnist", 10, "MNIST"),
}


def _missing(name: str, looked: list[str]) -> DataError:
    stand_in = REAL[name][1]
    return DataError(f"real domain {name!r} not found (looked in {'; '.join(looked)}); set "
                     f"paths.data_dir=<your hw2_data> (or GENDA_DATA), or data.domain_kwargs.download=true "
                     f"with network where torchvision has it; embedded stand-in: data={stand_in}")


def _torchvision(name: str, root: Path, cache_dir: Path, download: bool) -> dict[str, Split]:
    """torchvision's copy of a dataset as uint8 splits (decoded once, then cached as tensors)."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    folder = cache_dir / "real" / f"torchvision-{name}-{key}"
    if (meta := read_meta(folder)) is not None:
        return load_splits(folder, meta)
    from torchvision import datasets

    cls = getattr(datasets, REAL[name][3])
    splits = {}
    for split in ("train", "val"):
        if name == "svhn":
            ds = cls(str(root), split="train" if split == "train" else "test", download=download)
            splits[split] = Split(torch.from_numpy(ds.data), torch.from_numpy(ds.labels.astype(np.int64)))
        elif name == "celeba":
            splits[split] = _celeba(cls, root, split, download)
        else:  # MNIST, USPS: (N, H, W) images and integer targets
            ds = cls(str(root), train=split == "train", download=download)
            x = torch.as_tensor(np.asarray(ds.data), dtype=torch.uint8)[:, None]
            splits[split] = Split(x.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64))
    save_splits(folder, splits, {"source": f"torchvision.datasets.{REAL[name][3]} at {root}"})
    return splits


def _celeba(cls, root: Path, split: str, download: bool) -> Split:
    """CelebA aligned faces, centre crop 178 -> 64x64, with the 40 binary attributes (torchvision
    reads list_attr_celeba.txt and maps its -1/1 to 0/1)."""
    from torchvision.transforms import v2

    tf = v2.Compose([v2.PILToTensor(), v2.CenterCrop(178), v2.Resize(64, antialias=True)])
    ds = cls(str(root), split="train" if split == "train" else "valid", target_type="attr",
             transform=tf, download=download)
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    attrs = {n: ds.attr[:, i].to(torch.int64) for i, n in enumerate(ds.attr_names) if n}
    return Split(images, None, attrs)


def _load_real(name: str, data_dir: str | None, cache_dir: Path, download: bool = False) -> Domain:
    sub, _, num_classes, tv = REAL[name]
    looked = []
    root = Path(data_dir).expanduser() if data_dir else None
    splits = None
    if sub is not None:
        looked.append(f"{root / sub}/ (course layout)" if root else "paths.data_dir is not set")
        # <data_dir>/celeba is torchvision's folder too: the faces layout only when it has train/
        if root is not None and (root / sub).is_dir() and (name != "celeba" or (root / sub / "train").is_dir()):
            splits, provenance = read_course(root / sub, cache_dir), f"course folder {root / sub}"
    if splits is None and tv is not None:
        tv_root = root if root is not None else cache_dir / "torchvision"
        looked.append(f"torchvision {tv} under {tv_root}" + ("" if download else " (download=false)"))
        try:
            splits, provenance = _torchvision(name, tv_root, cache_dir, download), f"torchvision {tv}"
        except (RuntimeError, OSError) as e:  # not there / no network
            looked[-1] += f": {str(e).splitlines()[0][:80]}"
    if splits is None:
        raise _missing(name, looked)
    return Domain(name=name, train=splits["train"], val=splits["val"], num_classes=num_classes,
                  provenance=f"{name} (real data) from {provenance}", embedded=False)


def _register_real(name: str, summary: str) -> None:
    def load(data_dir=None, cache_dir=None, download: bool = False) -> Domain:
        return _load_real(name, data_dir, cache_dir, download)

    register(name, summary)(load)


_register_real("faces", "course faces hw2_data/face/{train,val} 64x64 (real; stand-in faces_synthetic)")
_register_real("mnistm_real", "course MNIST-M hw2_data/digits/mnistm (real; stand-in mnistm)")
_register_real("svhn", "SVHN: course hw2_data/digits/svhn or torchvision (real; stand-in syndigits)")
_register_real("usps", "USPS: course hw2_data/digits/usps or torchvision (real; stand-in usps_mfeat)")
_register_real("celeba", "CelebA 64x64 + 40 attributes: data_dir/celeba/{train,val}/ (faces layout, attributes "
                         "from list_attr_celeba.txt or CSVs) or torchvision (real; stand-in faces_synthetic)")
_register_real("mnist_torchvision", "MNIST via torchvision (real; the embedded mnist is the same data)")


@register("folder", "any course-layout folder: domain_kwargs.path=DIR (e.g. an `export`ed domain)")
def folder(data_dir=None, cache_dir=None, path: str | None = None, num_classes: int = 10) -> Domain:
    if path is None:
        raise DataError("domain 'folder' needs data.domain_kwargs.path=<course-layout folder>")
    root = Path(path).expanduser()
    splits = read_course(root, cache_dir)
    labelled = splits["train"].labels is not None
    return Domain(name="folder", train=splits["train"], val=splits["val"],
                  num_classes=num_classes if labelled else None,
                  provenance=f"course-layout folder {root}", embedded=False)
