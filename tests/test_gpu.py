"""GPU checks (`pytest -m gpu`), skipped without CUDA: every experiment at scale=smoke on the GPU,
mixed precision (16-mixed, bf16-mixed), trainer.compile, the DDP strategy with one process (and the
resume of a SIGKILLed DDP run), and bitwise-identical repeated runs with trainer.deterministic=true.

Each check is a `python -m genda` subprocess (tests/conftest.py's `genda`), and the runs do not
depend on each other. So the first test that needs one starts, in a thread pool, every run that the
collected tests need (GENDA_GPU_JOBS at a time, default 8; the compile runs first, being the
slowest), and each test then waits for its own. The file takes about as long as its slowest runs
rather than their sum: benchmarks/gpu_check.sh runs it inside a 15-minute device lease (and sets
GENDA_GPU_RUN_TIMES, a JSON file this writes each run's seconds to).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from genda.train import checkpoint as ckpt_io

from .conftest import EXPERIMENTS, genda
from .faults import genda_killed_at
from .test_loop import _assert_same_state, _tensors

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="GPU test: torch.cuda.is_available() is False (no CUDA GPU here)",
    ),
]

GAN, DDPM, DANN = "dcgan_a", "ddpm_digits", "dann_mnist_mnistm"
BASE = ("scale=smoke", "logger.mode=disabled", "trainer.progress=false", "trainer.accelerator=gpu")
DDP = ("trainer.strategy=ddp", "trainer.devices=1")  # Fabric's DDP, one process on the one GPU
# the kill-and-resume run: checkpoints at steps 4 and 8; the child dies right after the one at 4
RESUME = ("trainer.max_steps=8", "trainer.checkpoint_every=4", "trainer.val_every=3")
JOBS = int(os.environ.get("GENDA_GPU_JOBS", "8"))
TIMEOUT = int(os.environ.get("GENDA_GPU_RUN_TIMEOUT", "420"))  # seconds per subprocess

Key = tuple[str, ...]
Run = tuple[Path, Any]  # (run dir, CompletedProcess)


# -- the runs ---------------------------------------------------------------------------------
_EVALUATOR = threading.Lock()


def _run(d: Path, experiment: str, *overrides: str) -> Run:
    # ddpm_digits' digit accuracy loads the cached evaluator: train it first (as conftest does)
    if experiment == DDPM:
        with _EVALUATOR:
            from genda.evaluate import train_evaluator

            train_evaluator("mnistm", "smoke", quiet=True)  # nothing to do once cached
    proc = genda(
        f"experiment={experiment}", *BASE, *overrides, f"hydra.run.dir={d}", timeout=TIMEOUT
    )
    return d, proc


def _killed_then_resumed(d: Path) -> Run:
    """A DDP run SIGKILLed right after its step-4 checkpoint (tests/faults.py), then the same
    command again, which resumes it (trainer.resume=auto) to step 8."""
    args = (f"experiment={DANN}", *BASE, *DDP, *RESUME, f"hydra.run.dir={d}")
    killed = genda_killed_at(4, *args)
    assert killed.returncode == -signal.SIGKILL, (
        f"exit {killed.returncode}:\n{killed.stderr[-3000:]}"
    )
    assert ckpt_io.load(d / "checkpoints" / "last.ckpt")["step"] == 4
    return d, genda(*args, timeout=TIMEOUT)


def _job(key: Key):
    """The callable (run dir -> Run) behind a run key."""
    kind, *rest = key
    if kind == "smoke":
        return lambda d: _run(d, rest[0])
    if kind == "precision":
        return lambda d: _run(d, rest[1], f"trainer.precision={rest[0]}")
    if kind == "compile":
        return lambda d: _run(d, rest[0], "trainer.compile=true")
    if kind == "ddp":
        return lambda d: _run(d, rest[0], *DDP)
    if kind == "ddp_straight":
        return lambda d: _run(d, DANN, *DDP, *RESUME)
    if kind == "ddp_resumed":
        return _killed_then_resumed
    if kind == "deterministic":
        return lambda d: _run(d, GAN, "trainer.deterministic=true")
    raise KeyError(key)


# the runs each test needs, from its parameters (the pool starts those of the collected tests)
NEEDS = {
    "test_experiment_runs_on_gpu": lambda p: [("smoke", p["experiment"])],
    "test_mixed_precision": lambda p: [("precision", p["precision"], p["experiment"])],
    "test_compile": lambda p: [("compile", p["experiment"])],
    "test_ddp_one_process": lambda p: [("ddp", p["experiment"])],
    "test_ddp_resume_after_sigkill": lambda p: [("ddp_straight",), ("ddp_resumed",)],
    "test_deterministic_runs_are_identical": lambda p: [
        ("deterministic", "0"),
        ("deterministic", "1"),
    ],
}


class _Pool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.executor = ThreadPoolExecutor(max_workers=max(1, JOBS), thread_name_prefix="gpu-run")
        self.futures: dict[Key, Future] = {}
        self.seconds: dict[Key, float] = {}

    def submit(self, key: Key) -> Future:
        if key not in self.futures:
            d = self.root / "_".join(k.replace("-", "") for k in key)

            def timed() -> Run:
                t = time.time()
                try:
                    return _job(key)(d)
                finally:
                    self.seconds[key] = round(time.time() - t, 1)

            self.futures[key] = self.executor.submit(timed)
        return self.futures[key]

    def get(self, *key: str) -> Run:
        return self.submit(tuple(key)).result()


@pytest.fixture(scope="session")
def gpu_runs(request, tmp_path_factory):
    """The pool of GPU runs, started with every run the collected tests of this file need."""
    pool = _Pool(tmp_path_factory.mktemp("gpu"))
    keys: list[Key] = []
    for item in request.session.items:
        need = NEEDS.get(getattr(item, "originalname", item.name))
        if need is not None and item.module.__name__ == __name__:
            params = item.callspec.params if hasattr(item, "callspec") else {}
            keys += [k for k in need(params) if k not in keys]
    for key in sorted(keys, key=lambda k: k[0] != "compile"):  # the slowest first
        pool.submit(key)
    yield pool
    pool.executor.shutdown(wait=True, cancel_futures=True)
    if out := os.environ.get("GENDA_GPU_RUN_TIMES"):  # benchmarks/gpu_check.sh keeps them
        Path(out).write_text(
            json.dumps({"/".join(k): s for k, s in sorted(pool.seconds.items())}, indent=1)
        )


def _finished(run: Run) -> dict:
    """Exit 0, status.json complete, last.ckpt written at that step with the weights on the GPU;
    returns the checkpoint (tensors where they were saved)."""
    d, proc = run
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    last = d / "checkpoints" / "last.ckpt"
    assert last.is_file(), f"no {last}"
    status = json.loads((d / "status.json").read_text())
    assert status["state"] == "complete", status
    state = ckpt_io.load(last, map_location=None)
    assert state["step"] == status["step"] >= 1
    where = {t.device.type for _, t in _tensors(state["modules"])}
    assert where == {"cuda"}, f"weights saved from {where}, not the GPU"
    return state


def _trainer(run: Run) -> Any:
    return OmegaConf.load(run[0] / "config.yaml").trainer


# -- the tests --------------------------------------------------------------------------------
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_on_gpu(gpu_runs, experiment):
    run = gpu_runs.get("smoke", experiment)
    _finished(run)
    assert _trainer(run).accelerator == "gpu"


@pytest.mark.parametrize("experiment", [GAN, DDPM, DANN])
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision(gpu_runs, precision, experiment):
    run = gpu_runs.get("precision", precision, experiment)
    state = _finished(run)
    assert _trainer(run).precision == precision
    if precision == "16-mixed":  # fp16 autocast scales the loss: the GradScaler's state is saved
        assert "scale" in state["scaler"], state["scaler"]
    else:  # bf16 needs no scaler
        assert state["scaler"] == {}


@pytest.mark.parametrize("experiment", [GAN, DDPM, DANN])
def test_compile(gpu_runs, experiment):
    run = gpu_runs.get("compile", experiment)
    state = _finished(run)
    assert _trainer(run).compile is True
    # the checkpoint holds the networks themselves, not torch.compile's wrappers
    assert not any(k.startswith("_orig_mod.") for net in state["modules"].values() for k in net)


@pytest.mark.parametrize("experiment", [GAN, DANN])
def test_ddp_one_process(gpu_runs, experiment):
    run = gpu_runs.get("ddp", experiment)
    state = _finished(run)
    t = _trainer(run)
    assert t.strategy == "ddp" and t.devices == 1
    # the checkpoint holds the networks themselves, not DDP's wrapper
    assert not any(k.startswith("module.") for net in state["modules"].values() for k in net)


def test_ddp_resume_after_sigkill(gpu_runs):
    """A DDP run killed after its step-4 checkpoint resumes and ends where a run never killed does
    (deterministic by default: the same weights, optimiser, scheduler, RNG and data position)."""
    straight = gpu_runs.get("ddp_straight")
    resumed = gpu_runs.get("ddp_resumed")
    _finished(straight)
    _finished(resumed)
    assert "resumed from" in resumed[1].stderr and "at step 4" in resumed[1].stderr
    a = ckpt_io.load(straight[0] / "checkpoints" / "last.ckpt")
    b = ckpt_io.load(resumed[0] / "checkpoints" / "last.ckpt")
    assert a["step"] == b["step"] == 8
    _assert_same_state(a, b)


def test_deterministic_runs_are_identical(gpu_runs):
    """Two dcgan_a smoke runs on the GPU, trainer.deterministic=true, same seed: the same final
    checkpoint tensor for tensor. (genda does not set CUBLAS_WORKSPACE_CONFIG; torch asks for it
    for deterministic cuBLAS, and warns rather than fails, warn_only=True, when it is unset.)"""
    first, second = gpu_runs.get("deterministic", "0"), gpu_runs.get("deterministic", "1")
    _finished(first)
    _finished(second)
    a = ckpt_io.load(first[0] / "checkpoints" / "last.ckpt")
    b = ckpt_io.load(second[0] / "checkpoints" / "last.ckpt")
    _assert_same_state(a, b)
    ta, tb = dict(_tensors(a["ema"])), dict(_tensors(b["ema"]))
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), (
        "EMA weights differ"
    )
