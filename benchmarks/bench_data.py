"""Data path: images/s of genda's in-memory DomainData batches against decoding the same images
from a PNG folder (the course layout) through a torch DataLoader, same batch size and
normalisation; and loading a decoded folder from genda's tensor cache against decoding it again."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from benchmarks.common import Comparison, compare
from genda.data.folders import export, read_course, read_csv
from genda.data.module import DomainData

DOMAIN = "mnistm"


class PngFolder(Dataset):
    """The usual course-homework dataset: one PNG decoded per item, normalised to [-1, 1]."""

    def __init__(self, root: Path, split: str) -> None:
        self.root = root
        self.names, self.labels = read_csv(root / f"{split}.csv")

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.root / "data" / self.names[i]) as img:
            x = torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)
        return x.float().div(127.5).sub(1.0), self.labels[i]


def _drain(loader) -> int:
    n = 0
    for batch in loader:
        n += len(batch["image"] if isinstance(batch, dict) else batch[0])
    return n


def run(quick: bool = False) -> dict:
    quick = quick or os.environ.get("GENDA_BENCH_QUICK") == "1"
    n, bs, repeats = (512, 64, 3) if quick else (4096, 128, 5)
    data = DomainData(DOMAIN, batch_size=bs, limit_train=n, limit_val=n, seed=0)
    split = data.split("train")
    with tempfile.TemporaryDirectory() as tmp:
        root = export({"train": split, "val": data.split("val")}, Path(tmp) / DOMAIN)
        png = DataLoader(PngFolder(root, "train"), batch_size=bs, shuffle=True, drop_last=True,
                         generator=torch.Generator().manual_seed(0))

        def memory() -> None:
            loader = data.train_loader()
            loader.batch_sampler.infinite = False  # one epoch
            _drain(loader)

        batches = compare("data", f"train batches, {DOMAIN} {n} imgs, batch {bs}",
                          ("genda in-memory DomainData", memory), ("PNG folder + DataLoader", lambda: _drain(png) and None),
                          repeats=repeats, work=(n // bs) * bs)
        cache = Path(tmp) / "cache"
        read_course(root, cache)  # fill the tensor cache
        loading = compare("data", f"load decoded folder ({2 * n} PNGs)",
                          ("genda tensor cache (checksummed)", lambda: read_course(root, cache)),
                          ("decode PNGs", lambda: read_course(root, None)), repeats=repeats, work=2 * n)
    return {"batches": batches, "load": loading}


if __name__ == "__main__":
    from benchmarks.__main__ import rows_of, table

    result = run()
    print(table([r for c in result.values() if isinstance(c, Comparison) for r in rows_of("data", c)]))
