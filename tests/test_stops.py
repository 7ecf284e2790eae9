"""Stops a scheduler can trust (issue 14, part 3): SIGTERM/SIGINT checkpoint, write status.json
`interrupted` and exit 143/130; the printed resume line works as printed; a resume with another
config is refused and changes nothing; `genda.reproduce` forwards the signal to its runs."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from genda.train import checkpoint as ckpt_io

from .conftest import ROOT, genda, read_jsonl
from .faults import genda_killed_at

BASE = ["experiment=classifier_mnist", "scale=smoke", "logger.mode=disabled", "trainer.progress=false"]
ENV = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def _wait_for_training(proc: subprocess.Popen, metrics: Path, timeout: float = 180) -> None:
    """Until the run has logged a training step (so the loop, and its signal handler, runs)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before the signal"
        if metrics.is_file() and any("train/loss" in r for r in read_jsonl(metrics)):
            return
        time.sleep(0.2)
    raise AssertionError("no training step logged in time")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _start(run: Path, tmp: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    err = tmp / f"{run.name}.stderr"
    f = open(err, "w")  # noqa: SIM115 - closed by the child's exit
    proc = subprocess.Popen([sys.executable, "-m", "genda", *BASE, "trainer.log_every=1", "trainer.val_every=0",
                             "trainer.checkpoint_every=0", *extra, f"hydra.run.dir={run}"],
                            cwd=tmp, env=ENV, stdout=subprocess.DEVNULL, stderr=f)
    f.close()
    return proc, err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_checkpoints_exits_nonzero_and_the_printed_line_resumes(tmp_path: Path, sig) -> None:
    run = tmp_path / "run"
    proc, err = _start(run, tmp_path, "trainer.max_steps=1500")  # long enough that the signal lands mid-run
    _wait_for_training(proc, run / "metrics.jsonl")
    proc.send_signal(sig)
    assert proc.wait(timeout=180) == 128 + sig, err.read_text()[-3000:]
    stderr = err.read_text()
    assert "Traceback" not in stderr
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["step"] > 0 and status["signal"] == sig.name
    assert ckpt_io.load(run / "checkpoints" / "last.ckpt")["step"] == status["step"]
    assert not (run / "summary.json").exists(), "no normal end-of-run summary"

    # a resume with another config is refused in one line and changes nothing in the run dir
    before = _snapshot(run)
    for other in (["trainer.resume=" + str(run)],  # the default config: another experiment
                  [*BASE, "model.optimizer.lr=0.5", "trainer.max_steps=1500", f"trainer.resume={run}"]):
        refused = genda(*other, f"hydra.run.dir={run}", cwd=tmp_path, env={"WANDB_MODE": "disabled"})
        assert refused.returncode == 2, refused.stderr[-3000:]
        last = refused.stderr.strip().splitlines()[-1]
        assert "trainer.resume" in last and str(run / "config.yaml") in last and "Traceback" not in refused.stderr
        assert _snapshot(run) == before

    # the printed line, pasted as printed, continues the run to the end
    lines = stderr.strip().splitlines()
    i = next(i for i, x in enumerate(lines) if x.endswith("resume with:"))
    resumed = subprocess.run(shlex.split(lines[i + 1]), cwd=tmp_path, env=ENV, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {run / 'checkpoints' / 'last.ckpt'} at step {status['step']}" in resumed.stderr
    done = json.loads((run / "status.json").read_text())
    assert done["state"] == "complete" and done["step"] == 1500


@pytest.mark.slow
def test_status_json_names_the_step_of_every_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    killed = genda_killed_at(6, *BASE, "trainer.max_steps=8", "trainer.checkpoint_every=2",
                             f"hydra.run.dir={run}", cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "running" and status["step"] == 6
    assert ckpt_io.load(run / "checkpoints" / "last.ckpt")["step"] == 6


@pytest.mark.slow
def test_report_runner_forwards_sigterm_to_its_runs(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"group": "t", "runs": {
        "long": {"experiment": "classifier_mnist", "item": "classifier",
                 "overrides": ["trainer.max_steps=100000", "trainer.val_every=0", "trainer.checkpoint_every=0",
                               "trainer.log_every=1"]},
        "next": {"experiment": "classifier_mnist", "item": "classifier"},
    }}, sort_keys=False))
    runner = subprocess.Popen([sys.executable, "-m", "genda.reproduce", "--runs", str(tmp_path / "runs"),
                               "--out", str(tmp_path / "out"), "--manifest", str(manifest), "--scale", "smoke",
                               "logger.mode=disabled"],
                              cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = tmp_path / "runs" / "smoke" / "long" / "seed0"
    _wait_for_training(runner, run / "metrics.jsonl")
    runner.send_signal(signal.SIGTERM)
    out = runner.communicate(timeout=300)[0]
    assert runner.returncode == 143, out[-3000:]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["step"] > 0
    assert ckpt_io.load(run / "checkpoints" / "last.ckpt")["step"] == status["step"]
    record = json.loads((run / "runner.json").read_text())
    assert record["state"] == "interrupted" and record["returncode"] == 143
    last = {r["run"]: r for r in json.loads((tmp_path / "runs" / "smoke" / "runner_last.json").read_text())}
    assert last["long/seed0"]["state"] == "interrupted" and last["next/seed0"]["action"] == "not started"
    assert not (tmp_path / "runs" / "smoke" / "next").exists(), "no run starts after the signal"
    alive = [p for p in Path("/proc").glob("[0-9]*") if _cmdline_has(p, str(run))]
    assert not alive, "the training child is gone"


def _cmdline_has(proc_dir: Path, needle: str) -> bool:
    try:
        return needle in (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
