"""The generic loop: exact resume, atomic checkpoints, data parallel, logging, guards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genda.errors import CheckpointError
from genda.train import checkpoint as ckpt_io

from .conftest import ROOT, genda, read_jsonl
from .faults import genda_killed_at

BASE = ["experiment=classifier_mnist", "scale=smoke", "logger.mode=disabled", "trainer.progress=false"]


def _tensors(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}[{i}]")


def _assert_same_state(a: dict, b: dict) -> None:
    for part in ("modules", "optimizers", "schedulers", "rng", "data"):
        ta, tb = dict(_tensors(a[part])), dict(_tensors(b[part]))
        assert ta.keys() == tb.keys(), part
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{part}{k} differs"
    assert a["step"] == b["step"] and a["data"] == b["data"]


@pytest.mark.slow
def test_resume_after_sigkill_is_exact(tmp_path: Path) -> None:
    steps = ["trainer.max_steps=8", "trainer.checkpoint_every=4", "trainer.val_every=3"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    genda(*BASE, *steps, f"hydra.run.dir={straight}", check=True)
    killed = genda_killed_at(4, *BASE, *steps, f"hydra.run.dir={broken}")
    assert killed.returncode == -signal.SIGKILL
    assert ckpt_io.load(broken / "checkpoints" / "last.ckpt")["step"] == 4
    resumed = genda(*BASE, *steps, f"hydra.run.dir={broken}", check=True)
    assert "resumed from" in resumed.stderr
    a = ckpt_io.load(straight / "checkpoints" / "last.ckpt")
    b = ckpt_io.load(broken / "checkpoints" / "last.ckpt")
    assert a["step"] == b["step"] == 8
    _assert_same_state(a, b)
    assert a["best"] == b["best"]


_WRITER = """
import sys, torch
from genda.train.checkpoint import save_atomic
path = sys.argv[1]
i = 0
while True:
    i += 1
    save_atomic({"format": "genda-ckpt-1", "i": i, "w": torch.full((2_000_000,), float(i))}, path)
"""


def test_kill_during_checkpoint_write_never_leaves_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    for delay in (0.3, 0.45, 0.6, 0.8, 1.1):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if path.exists():
            state = ckpt_io.load(path)
            assert torch.all(state["w"] == float(state["i"]))


def test_checkpoint_errors_are_clear(tmp_path: Path) -> None:
    torn = tmp_path / "torn.ckpt"
    ckpt_io.save_atomic({"format": ckpt_io.FORMAT, "w": torch.ones(1000)}, torn)
    torn.write_bytes(torn.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        ckpt_io.load(torn)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a genda checkpoint"):
        ckpt_io.load(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        ckpt_io.load(tmp_path / "missing.ckpt")


@pytest.mark.slow
def test_bad_checkpoints_on_the_command_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    genda(*BASE, f"hydra.run.dir={run}", check=True)
    torn = tmp_path / "torn.ckpt"
    torn.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes()[:1000])
    for resume, needle in [(torn, "cannot read checkpoint"),
                           (run / "checkpoints" / "last.ckpt", "does not match this model")]:
        proc = genda(*BASE, f"hydra.run.dir={tmp_path / 'other'}", f"trainer.resume={resume}",
                     "model.net.num_classes=7")
        lines = [x for x in proc.stderr.splitlines() if x.startswith("genda: error:")]
        assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_two_process_gloo_run_writes_one_set_of_logs(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    env = {**os.environ, "WANDB_SILENT": "true"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                           "-m", "genda", *BASE, "trainer.devices=2", "trainer.strategy=ddp",
                           "trainer.accelerator=cpu", f"hydra.run.dir={run}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_jsonl(run / "metrics.jsonl")
    train_steps = [r["step"] for r in rows if "train/loss" in r]
    assert train_steps == sorted(set(train_steps)), "one writer: each step logged once"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    state = ckpt_io.load(run / "checkpoints" / "last.ckpt")
    assert state["step"] == 4
    assert json.loads((run / "status.json").read_text())["state"] == "complete"


@pytest.mark.slow
def test_wandb_offline_run_holds_the_log(tmp_path: Path) -> None:
    run = tmp_path / "wb"
    genda(*[a for a in BASE if not a.startswith("logger")], "logger.mode=offline", f"hydra.run.dir={run}",
          check=True)
    runs = list((run / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("run-*.wandb")), "the offline run file holds the logged history and summary"
    assert (run / "summary.json").is_file() and read_jsonl(run / "metrics.jsonl")


@pytest.mark.slow
def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "nan"
    proc = genda(*BASE, f"hydra.run.dir={run}", "model.optimizer.lr=1e30", "trainer.max_steps=6",
                 "trainer.checkpoint_every=1")
    assert proc.returncode == 2 and "non-finite loss" in proc.stderr
    state = ckpt_io.load(run / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(t).all() for _, t in _tensors(state["modules"]))
    assert json.loads((run / "status.json").read_text())["state"] == "failed"


@pytest.mark.slow
def test_sigterm_checkpoints_then_exits(tmp_path: Path) -> None:
    run = tmp_path / "term"
    env = {**os.environ, "WANDB_SILENT": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "genda", *BASE, f"hydra.run.dir={run}",
                             "trainer.max_steps=1000000", "trainer.val_every=0", "trainer.checkpoint_every=0"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]  # 143: a scheduler sees the stop
    assert "SIGTERM: checkpoint saved" in err
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert ckpt_io.load(run / "checkpoints" / "last.ckpt")["step"] > 0
    shutil.rmtree(run)


def test_fused_normalisation_equals_transforms_v2() -> None:
    from torchvision.transforms import v2

    from genda.data.module import RANGES, DomainData

    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    for name, (lo, hi) in RANGES.items():
        ref = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize([-lo / (hi - lo)] * 3, [1 / (hi - lo)] * 3)])(x)
        got = DomainData("mnist", normalize=name).to_float(x)
        assert torch.allclose(got, ref, atol=1e-6), name
        assert torch.equal(DomainData("mnist", normalize=name).to_uint8(got), x)


def test_file_lock_serialises_two_processes(tmp_path: Path) -> None:
    """Two processes appending under `file_lock` never interleave their lines (the lock that
    lets parallel report runs build one shared data/evaluator cache entry once)."""
    script = (
        "import sys, time\n"
        "from genda.train.checkpoint import file_lock\n"
        "log, tag = sys.argv[1], sys.argv[2]\n"
        "for _ in range(5):\n"
        "    with file_lock(log + '.lock'):\n"
        "        with open(log, 'a') as f:\n"
        "            f.write(tag + ' start\\n'); f.flush(); time.sleep(0.02)\n"
        "            f.write(tag + ' end\\n')\n"
    )
    log = tmp_path / "log.txt"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(log), t]) for t in "ab"]
    assert all(p.wait(60) == 0 for p in procs)
    lines = log.read_text().splitlines()
    assert len(lines) == 20
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        assert start.endswith("start") and end == start.replace("start", "end")
