"""`genda.predict` on DANN and ADDA runs: the labels it writes for the target's val images score
exactly the target accuracy the run logged for the same weights on the same images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import genda, read_jsonl


@pytest.fixture(scope="module")
def target_folder(tmp_path_factory) -> Path:
    """MNIST-M (the target of *_usps_mnistm) exported as a course folder: data/ + val.csv."""
    out = tmp_path_factory.mktemp("target") / "mnistm"
    genda("export", "mnistm", str(out), "--limit", "100", module="genda.data", check=True)
    return out


def _uda_run(experiment: str, target: Path, run_dir: Path) -> Path:
    # the target domain is the exported folder, so the run's val target set is exactly val.csv's
    genda(f"experiment={experiment}", "scale=smoke", "logger.mode=disabled", "trainer.progress=false",
          "trainer.channels_last=false", "trainer.max_steps=16", "trainer.val_every=4",
          "trainer.checkpoint_every=4", "data.target.domain=folder",
          f"+data.target.domain_kwargs.path={target}", "data.target.limit_val=null",
          f"hydra.run.dir={run_dir}", check=True)
    return run_dir


def _logged_target_acc(run: Path, step: int) -> float:
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "val/target_acc" in r and r["step"] == step]
    assert rows, f"no val/target_acc logged at step {step}"
    return rows[-1]["val/target_acc"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["dann_usps_mnistm", "adda_usps_mnistm"])
def test_predict_uda_run_round_trip(experiment: str, target_folder: Path, tmp_path: Path) -> None:
    from genda.evaluate import csv_accuracy
    from genda.predict import predict_folder
    from genda.runs import load_run
    from genda.train import checkpoint as ckpt_io

    run = _uda_run(experiment, target_folder, tmp_path / "run")
    pred = tmp_path / "pred.csv"
    proc = genda(str(run), str(target_folder / "data"), str(pred), module="genda.predict", check=True)
    assert "wrote 200 labels" in proc.stdout
    out = tmp_path / "acc.json"
    genda("csv", str(pred), str(target_folder / "val.csv"), "--json", str(out), module="genda.evaluate",
          check=True)
    acc = json.loads(out.read_text())
    assert acc["n"] == 100
    # predict uses best.ckpt, whose target accuracy on these val images the run logged as best
    # (a float32 mean: abs=1e-6 still tells 100 images apart)
    summary = json.loads((run / "summary.json").read_text())
    best_step = ckpt_io.load(run / "checkpoints" / "best.ckpt")["step"]
    assert summary["best_target_acc"] == pytest.approx(_logged_target_acc(run, best_step), abs=1e-6)
    assert acc["value"] == pytest.approx(summary["best_target_acc"], abs=1e-6)

    # last.ckpt (ADDA: after the switch, so the target encoder) against its own logged accuracy
    last = run / "checkpoints" / "last.ckpt"
    names, labels = predict_folder(str(last), str(target_folder / "data"))
    last_csv = tmp_path / "last.csv"
    last_csv.write_text("image_name,label\n" + "".join(f"{n},{y}\n" for n, y in zip(names, labels, strict=True)))
    value = csv_accuracy(last_csv, target_folder / "val.csv")["value"]
    assert value == pytest.approx(_logged_target_acc(run, 16), abs=1e-6)
    if experiment.startswith("adda"):
        task = load_run(last).task
        assert task._loaded_adapted is True
        best = load_run(run / "checkpoints" / "best.ckpt").task
        assert best._loaded_adapted == (best_step > best.switch_step(16))
