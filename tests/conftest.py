"""Shared helpers: run `python -m genda` in a subprocess and read its run dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


def genda(*args: str, cwd: Path | None = None, timeout: int = 600, check: bool = False,
          module: str = "genda", env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...`; returns the completed process (text output)."""
    e = {**os.environ, "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd or ROOT, env=e,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


_SMOKE_RUNS: dict[tuple, Path] = {}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """smoke_run(experiment, *overrides) -> run dir of a finished scale=smoke run (cached per session)."""

    def run(experiment: str, *overrides: str) -> Path:
        key = (experiment, *overrides)
        if key not in _SMOKE_RUNS:
            if experiment == "ddpm_digits":  # its digit accuracy loads the cached evaluator: train it first
                from genda.evaluate import train_evaluator

                train_evaluator("mnistm", "smoke", quiet=True)  # nothing to do once cached
            d = tmp_path_factory.mktemp(f"smoke_{experiment}")
            genda(f"experiment={experiment}", "scale=smoke", "logger.mode=disabled",
                  "trainer.progress=false", f"hydra.run.dir={d}", *overrides, check=True)
            _SMOKE_RUNS[key] = d
        return _SMOKE_RUNS[key]

    return run
