"""The in-memory batch path (MemoryLoader): the same batches, the same RNG draws and the same
resume as the DataLoader path it replaced; the row gather; exact UDA resume."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from genda.data.domain import Split
from genda.data.module import (
    DomainData,
    EpochBatchSampler,
    MemoryLoader,
    PairedDomainData,
    _identity,
    _TensorSplit,
)
from genda.train import checkpoint as ckpt_io

from .conftest import genda
from .faults import genda_killed_at


def _data(n: int = 70, seed: int = 3, **kw) -> DomainData:
    """A DomainData over a random in-memory split (no domain on disk)."""
    g = torch.Generator().manual_seed(seed)
    dm = DomainData("mnist", batch_size=8, seed=seed, **kw)
    dm._splits["train"] = Split(torch.randint(0, 256, (n, 3, 6, 6), dtype=torch.uint8, generator=g),
                                torch.randint(0, 10, (n,), generator=g), {"a": torch.arange(n)})
    return dm


def _reference(dm: DomainData, rank: int = 0, world: int = 1) -> DataLoader:
    """What train_loader returned before the in-memory path: a DataLoader over the same sampler."""
    split = dm.split("train")
    sampler = EpochBatchSampler(len(split), dm.batch_size, dm.seed, rank, world)
    return DataLoader(_TensorSplit(split, dm.to_float), batch_sampler=sampler, collate_fn=_identity)


def _take(loader, n: int, state: dict | None = None) -> tuple[list[dict], torch.Tensor, dict]:
    torch.manual_seed(0)
    if state is not None:
        loader.batch_sampler.load_state_dict(state)
    it = iter(loader)
    return [next(it) for _ in range(n)], torch.get_rng_state(), loader.batch_sampler.state_dict()


def _assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]), k


@pytest.mark.parametrize("normalize", ["tanh", "meanstd"])
@pytest.mark.parametrize("state", [None, {"epoch": 3, "position": 5}])
@pytest.mark.parametrize("rank", [0, 1])
def test_memory_loader_gives_the_dataloader_batches_and_rng_draws(normalize, state, rank) -> None:
    dm = _data(normalize=normalize)
    new = dm.train_loader(rank, 2)
    assert isinstance(new, MemoryLoader)
    a, rng_a, st_a = _take(_reference(dm, rank, 2), 12, state)  # 70 // 16 = 4 per epoch: crosses epochs
    b, rng_b, st_b = _take(new, 12, state)
    _assert_same(a, b)
    assert torch.equal(rng_a, rng_b) and st_a == st_b


def test_val_loader_and_worker_path_give_the_same_batches() -> None:
    dm = _data()
    dm._splits["val"] = dm.split("train")
    ref = DataLoader(_TensorSplit(dm.split("val"), dm.to_float), collate_fn=_identity,
                     batch_sampler=EpochBatchSampler(70, dm.val_batch_size, 0, shuffle=False, drop_last=False))
    ref.batch_sampler.infinite = False
    _assert_same(list(ref), list(dm.val_loader()))
    workers = _data(num_workers=1).train_loader()
    assert isinstance(workers, DataLoader)
    _assert_same(_take(workers, 6)[0], _take(_data().train_loader(), 6)[0])


def test_row_gather_equals_indexing_for_every_layout() -> None:
    """Images gathered as int64/int32/int16 rows (or indexed bytes when no view fits) are the bytes."""
    g = torch.Generator().manual_seed(0)
    big = torch.randint(0, 256, (40, 3, 28, 28), dtype=torch.uint8, generator=g)
    cases = {"int64": big[:20], "int32": big[:20, :1, :6, :6].contiguous(), "int16": big[:20, :1, :1, :6].contiguous(),
             "bytes": big[:20, :, :5, :5].contiguous(), "strided": big[:20, :, :5, :8],
             "unaligned": big.view(-1)[1:1 + 20 * 3 * 28 * 28].view(20, 3, 28, 28)}
    ix = torch.tensor([3, 0, 19, 7, 7])
    for name, images in cases.items():
        ts = _TensorSplit(Split(images), lambda x: x)
        want = {"int64": torch.int64, "int32": torch.int32, "int16": torch.int16}.get(name)
        assert (ts._rows.dtype if ts._rows is not None else None) == want, name
        got = ts.fetch(ix)["image"]
        assert got.dtype == torch.uint8 and torch.equal(got, images[ix]), name


def test_paired_loader_draws_both_seeds_when_the_iterator_is_made() -> None:
    """So the loop's RNG restore, right after iter(), is the last word on a resumed run's stream."""
    pair = PairedDomainData(_data(seed=1), _data(seed=2))
    torch.manual_seed(0)
    it = iter(pair.train_loader())
    after_iter = torch.get_rng_state()
    batch = next(it)
    assert torch.equal(after_iter, torch.get_rng_state())
    assert batch["source"]["image"].shape == batch["target"]["image"].shape == (8, 3, 6, 6)


@pytest.mark.slow
def test_uda_resume_after_sigkill_is_exact(tmp_path: Path) -> None:
    """DANN (dropout: draws from the global RNG) killed after a checkpoint and resumed ends in the
    straight run's state, bit for bit."""
    from .test_loop import _assert_same_state

    args = ["experiment=dann_mnist_mnistm", "scale=smoke", "logger.mode=disabled", "trainer.progress=false",
            "trainer.max_steps=6", "trainer.checkpoint_every=3", "trainer.val_every=2"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    genda(*args, f"hydra.run.dir={straight}", check=True)
    assert genda_killed_at(3, *args, f"hydra.run.dir={broken}").returncode == -signal.SIGKILL
    assert "resumed from" in genda(*args, f"hydra.run.dir={broken}", check=True).stderr
    a = ckpt_io.load(straight / "checkpoints" / "last.ckpt")
    b = ckpt_io.load(broken / "checkpoints" / "last.ckpt")
    assert a["step"] == b["step"] == 6
    _assert_same_state(a, b)
