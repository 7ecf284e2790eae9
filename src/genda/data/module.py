"""Data modules: a domain (or a source/target pair) as batches for the loop.

Static transforms (resize, channel conversion) run once on the uint8 tensors with
torchvision transforms v2; per batch only the cheap uint8 -> float normalisation runs:
`normalize` tanh ([-1, 1]), unit ([0, 1]) or meanstd ((x/255 - mean) / std per channel, as
torchvision's ToTensor + Normalize(mean, std)); `to_uint8` inverts each exactly, `to_unit` maps
back to [0, 1] for saving. Image grids the tasks save assume tanh: use meanstd for classifiers.
Batches are dicts: {"image": (B, C, H, W) float, "label": (B,) int64, "index": (B,) int64}.
With num_workers=0 (the default) a batch is one tensor index of the split, no DataLoader; with
workers it goes through a DataLoader. Both serve the same batches from the same sampler.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Sampler
from torchvision.transforms import v2

from genda.data.domain import Domain, Split, load_domain
from genda.errors import ConfigError
from genda.targets import register_target

RANGES = {"tanh": (-1.0, 1.0), "unit": (0.0, 1.0)}
NORMALIZE = (*RANGES, "meanstd")


class EpochBatchSampler(Sampler[list[int]]):
    """Shuffled batches whose order depends only on (seed, epoch); resumable mid-epoch.

    Each rank takes an interleaved share of every global batch, so data parallel runs see
    the same samples as one process with `batch_size * world_size`.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, drop_last: bool = True) -> None:
        if batch_size * world_size > n and drop_last:
            raise ConfigError(f"data.batch_size={batch_size} x {world_size} process(es) exceeds the {n} training images")
        self.n, self.bs, self.seed, self.rank, self.world = n, batch_size, seed, rank, world_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.epoch, self.position = 0, 0  # position: batches already served in this epoch

    def __len__(self) -> int:
        g = self.bs * self.world
        return self.n // g if self.drop_last else -(-self.n // g)

    def __iter__(self) -> Iterator[list[int]]:
        for ix in self.index_batches():
            yield ix.tolist()

    def index_batches(self) -> Iterator[torch.Tensor]:
        """The batches `__iter__` yields, as int64 tensors (the in-memory loader's fast path)."""
        while True:
            if self.shuffle:
                order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
            else:
                order = torch.arange(self.n)
            g = self.bs * self.world
            while self.position < len(self):
                chunk = order[self.position * g:(self.position + 1) * g]
                self.position += 1
                yield chunk[self.rank::self.world].clone()
            self.epoch, self.position = self.epoch + 1, 0
            if not self.infinite:
                return

    infinite = True

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


class _TensorSplit(torch.utils.data.Dataset):
    """Batched fetch (`__getitems__`, `fetch`) straight from the in-memory uint8 tensors."""

    def __init__(self, split: Split, to_float) -> None:
        self.split, self.to_float = split, to_float
        self._rows = _as_rows(split.images)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict:
        return self.__getitems__([i])

    def __getitems__(self, idx: list[int]) -> dict:
        return self.fetch(torch.as_tensor(idx, dtype=torch.long))

    def fetch(self, ix: torch.Tensor) -> dict:
        """The batch of int64 indices `ix` (kept as the batch's "index")."""
        images = self.split.images
        if self._rows is not None:  # the same bytes, gathered a row per image
            images = self._rows.index_select(0, ix).view(torch.uint8).view(len(ix), *images.shape[1:])
        else:
            images = images[ix]
        out = {"image": self.to_float(images), "index": ix}
        if self.split.labels is not None:
            out["label"] = self.split.labels[ix]
        for k, v in self.split.attrs.items():
            out[f"attr_{k}"] = v[ix]
        return out


def _as_rows(images: torch.Tensor) -> torch.Tensor | None:
    """uint8 (N, C, H, W) viewed as (N, k) rows of the widest integer type that divides C*H*W
    (same memory): gathering 8-byte words is ~20x faster than gathering bytes. None if no view."""
    per = images[0].numel()
    for dtype in (torch.int64, torch.int32, torch.int16):
        if per % dtype.itemsize == 0:
            try:
                return images.view(len(images), per).view(dtype)
            except RuntimeError:  # not contiguous, or an unaligned storage offset
                return None
    return None


def _identity(batch: dict) -> dict:
    return batch


def _draw_base_seed() -> None:
    """Draw what a DataLoader iterator draws from torch's global RNG on creation (its workers' base
    seed), so the in-memory loader leaves the training random stream as the DataLoader did."""
    torch.empty((), dtype=torch.int64).random_()


class MemoryLoader:
    """Batches of an in-memory split without a DataLoader: each batch is one tensor gather
    (`_TensorSplit.fetch`) in the order of `batch_sampler`, the same batches a num_workers=0
    DataLoader over it gives (tested)."""

    def __init__(self, dataset: _TensorSplit, batch_sampler: EpochBatchSampler) -> None:
        self.dataset, self.batch_sampler = dataset, batch_sampler

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[dict]:
        _draw_base_seed()
        fetch = self.dataset.fetch
        return (fetch(ix) for ix in self.batch_sampler.index_batches())


@register_target
class DomainData:
    """One domain as train/val batches.

    Args: domain name; image_size (None keeps native); channels (1 or 3, None keeps);
    normalize 'tanh' ([-1, 1]), 'unit' ([0, 1]) or 'meanstd' (per-channel `mean`/`std` lists of
    length 1 or C, default 0.5: (x/255 - mean) / std); limits cap split sizes (smoke runs).
    """

    def __init__(self, domain: str, batch_size: int = 64, val_batch_size: int | None = None,
                 image_size: int | None = None, channels: int | None = None, normalize: str = "tanh",
                 limit_train: int | None = None, limit_val: int | None = None,
                 data_dir: str | None = None, cache_dir: str | None = None, seed: int = 0,
                 num_workers: int = 0, domain_kwargs: dict | None = None,
                 mean: list[float] | float | None = None, std: list[float] | float | None = None) -> None:
        if normalize not in NORMALIZE:
            raise ConfigError(f"data.normalize={normalize!r}: use one of {sorted(NORMALIZE)}")
        self.domain_name, self.batch_size = domain, batch_size
        self.val_batch_size = val_batch_size or max(batch_size, 256)
        self.image_size, self.channels, self.normalize = image_size, channels, normalize
        self.limit_train, self.limit_val = limit_train, limit_val
        self.data_dir, self.cache_dir, self.seed = data_dir, cache_dir, seed
        self.num_workers, self.domain_kwargs = num_workers, dict(domain_kwargs or {})
        self._domain: Domain | None = None
        self._splits: dict[str, Split] = {}
        self.mean, self.std = _mean_std(normalize, mean, std, channels)
        if normalize == "meanstd":  # (x/255 - mean) / std as one multiply-add per channel
            m, sd = torch.tensor(self.mean).view(-1, 1, 1), torch.tensor(self.std).view(-1, 1, 1)
            self._scale, self._shift = 1.0 / (255.0 * sd), -m / sd
        else:
            lo, hi = RANGES[normalize]
            self._scale, self._shift = (hi - lo) / 255.0, lo

    # -- loading -----------------------------------------------------------------
    @property
    def domain(self) -> Domain:
        if self._domain is None:
            self._domain = load_domain(self.domain_name, data_dir=self.data_dir,
                                       cache_dir=self.cache_dir, **self.domain_kwargs)
        return self._domain

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Static transforms (channels, size) of uint8 images, as applied to this domain's splits."""
        ops = []
        if self.channels == 3 and images.shape[1] == 1:
            ops.append(v2.RGB())
        elif self.channels == 1 and images.shape[1] == 3:
            ops.append(v2.Grayscale(1))
        elif self.channels not in (None, 1, 3):
            raise ConfigError(f"data.channels={self.channels}: use 1, 3 or null")
        if self.image_size is not None and tuple(images.shape[-2:]) != (self.image_size,) * 2:
            ops.append(v2.Resize((self.image_size, self.image_size), antialias=True))
        if not ops:
            return images
        tf = v2.Compose(ops)
        return torch.cat([tf(chunk) for chunk in images.split(4096)])

    def split(self, which: str) -> Split:
        """The processed split (uint8, final size and channels, limits applied)."""
        if which not in self._splits:
            raw = self.domain.split(which)
            limit = self.limit_train if which == "train" else self.limit_val
            sel = slice(None)
            if limit is not None and limit < len(raw):
                g = torch.Generator().manual_seed(self.seed + (0 if which == "train" else 1))
                sel = torch.randperm(len(raw), generator=g)[:limit].sort().values
            names = raw.names
            if names is not None and not isinstance(sel, slice):
                names = [names[i] for i in sel.tolist()]
            images = self.prepare(raw.images[sel])
            if self.normalize == "meanstd" and len(self.mean) not in (1, images.shape[1]):
                raise ConfigError(f"data.mean/data.std have {len(self.mean)} values for {images.shape[1]}-channel "
                                  f"images of {self.domain_name!r}: give 1 or {images.shape[1]}")
            self._splits[which] = Split(
                images,
                None if raw.labels is None else raw.labels[sel],
                {k: v[sel] for k, v in raw.attrs.items()},
                names,
            )
        return self._splits[which]

    def to_float(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float in the configured range; equals v2.ToDtype(scale=True) then
        v2.Normalize to the range (tested), fused into one multiply-add for the hot path."""
        x = images.to(torch.float32)
        if self.normalize == "meanstd":
            return x.mul_(self._scale.to(x.device)).add_(self._shift.to(x.device))
        return x.mul_(self._scale).add_(self._shift)

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Float images in the configured range -> [0, 1] (not clamped), e.g. for saving."""
        x = images.float()
        if self.normalize == "meanstd":
            sd = torch.tensor(self.std, device=x.device).view(-1, 1, 1)
            return x * sd + torch.tensor(self.mean, device=x.device).view(-1, 1, 1)
        lo, hi = RANGES[self.normalize]
        return (x - lo) / (hi - lo)

    def to_uint8(self, images: torch.Tensor) -> torch.Tensor:
        """Float images in the configured range -> uint8 (rounded), the inverse of to_float."""
        return (self.to_unit(images) * 255.0).round().clamp(0, 255).to(torch.uint8)

    @property
    def num_classes(self) -> int | None:
        return self.domain.num_classes

    @property
    def info(self) -> dict:
        d = self.domain
        return {"domain": d.name, "provenance": d.provenance, "embedded": d.embedded,
                "n_train": len(self.split("train")), "n_val": len(self.split("val"))}

    # -- loaders -----------------------------------------------------------------
    def train_loader(self, rank: int = 0, world_size: int = 1) -> MemoryLoader | DataLoader:
        """Infinite shuffled batches; in memory (MemoryLoader) unless data.num_workers > 0."""
        split = self.split("train")
        sampler = EpochBatchSampler(len(split), self.batch_size, self.seed, rank, world_size)
        if not self.num_workers:
            return MemoryLoader(_TensorSplit(split, self.to_float), sampler)
        return DataLoader(_TensorSplit(split, self.to_float), batch_sampler=sampler,
                          collate_fn=_identity, num_workers=self.num_workers)

    def val_loader(self, domain: str | None = None, split: str = "val") -> MemoryLoader:
        if domain not in (None, self.domain_name, "source"):
            raise ConfigError(f"data module has only domain {self.domain_name!r}, not {domain!r}")
        s = self.split(split)
        sampler = EpochBatchSampler(len(s), self.val_batch_size, 0, shuffle=False, drop_last=False)
        sampler.infinite = False
        return MemoryLoader(_TensorSplit(s, self.to_float), sampler)


def _mean_std(normalize: str, mean, std, channels: int | None) -> tuple[list[float] | None, list[float] | None]:
    """data.mean / data.std as float lists (meanstd only; default 0.5, the course's Normalize)."""
    if normalize != "meanstd":
        if mean is not None or std is not None:
            raise ConfigError(f"data.mean/data.std apply to data.normalize=meanstd, not {normalize!r}")
        return None, None
    out = []
    for key, value in (("mean", mean), ("std", std)):
        if value is None:
            value = [0.5]
        elif isinstance(value, int | float | str):
            value = [value]
        try:
            value = [float(v) for v in value]  # a list, tuple or OmegaConf ListConfig
        except (TypeError, ValueError):
            raise ConfigError(f"data.{key}={value!r}: give a number or a list of numbers") from None
        if not value or (channels is not None and len(value) not in (1, channels)):
            raise ConfigError(f"data.{key}={value}: give 1 value or {channels or 'C'} (one per channel)")
        out.append(value)
    mean, std = out
    if any(v <= 0 for v in std):
        raise ConfigError(f"data.std={std}: every std must be > 0")
    if len(mean) != len(std) and 1 not in (len(mean), len(std)):
        raise ConfigError(f"data.mean {mean} and data.std {std}: different channel counts")
    return mean, std


@register_target
class PairedDomainData:
    """Source and target domains for domain adaptation: train batches are
    {"source": batch, "target": batch}; `val_loader("source"|"target")`."""

    def __init__(self, source: DomainData, target: DomainData) -> None:
        self.source, self.target = source, target

    @property
    def num_classes(self) -> int | None:
        return self.source.num_classes

    @property
    def info(self) -> dict:
        return {"source": self.source.info, "target": self.target.info}

    def to_uint8(self, images: torch.Tensor) -> torch.Tensor:
        return self.source.to_uint8(images)

    def train_loader(self, rank: int = 0, world_size: int = 1) -> _PairedLoader:
        return _PairedLoader(self.source.train_loader(rank, world_size),
                             self.target.train_loader(rank, world_size))

    def val_loader(self, domain: str | None = "target", split: str = "val") -> MemoryLoader:
        if domain in (None, "target", self.target.domain_name):
            return self.target.val_loader(split=split)
        if domain in ("source", self.source.domain_name):
            return self.source.val_loader(split=split)
        raise ConfigError(f"unknown domain {domain!r}: use 'source' or 'target'")

    def split(self, which: str, domain: str = "target") -> Split:
        return (self.target if domain == "target" else self.source).split(which)


class _PairedLoader:
    """Zips two infinite loaders; state is both samplers' states."""

    def __init__(self, source: MemoryLoader | DataLoader, target: MemoryLoader | DataLoader) -> None:
        self.source, self.target = source, target
        self.batch_sampler = self  # loop reads/writes sampler state through this

    def __iter__(self) -> Iterator[dict]:
        # both iterators now, not at the first batch: their RNG draws then come before the loop
        # restores a checkpoint's RNG state, so a resumed run continues the same random stream
        its = iter(self.source), iter(self.target)
        return ({"source": s, "target": t} for s, t in zip(*its, strict=False))

    def __len__(self) -> int:
        return len(self.source)

    def state_dict(self) -> dict:
        return {"source": self.source.batch_sampler.state_dict(),
                "target": self.target.batch_sampler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.source.batch_sampler.load_state_dict(state["source"])
        self.target.batch_sampler.load_state_dict(state["target"])

    @property
    def epoch(self) -> int:
        return self.source.batch_sampler.epoch
