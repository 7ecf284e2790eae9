"""Sweep tables: a 2x2 smoke multirun writes sweep.md/sweep.csv; the rebuild command and the grid."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genda.report.sweep import lower_is_better, write
from genda.tasks.ddim_faces import DDIMFaceTask
from genda.train.artifacts import write_index

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    return {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_multirun_writes_sweep_table(tmp_path):
    out = tmp_path / "sweep"
    r = subprocess.run(
        [sys.executable, "-m", "genda", "-m", "experiment=classifier_mnist", "scale=smoke",
         "logger=disabled", "trainer.max_steps=2,3", "seed=0,1", f"hydra.sweep.dir={out}"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    md = (out / "sweep.md").read_text()
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    # one row per max_steps value, each averaging two seeds; seed is not a column
    assert [row["trainer.max_steps"] for row in rows] == ["2", "3"]
    assert all(row["seeds"] == "2" for row in rows)
    assert "seed" not in rows[0]
    assert sum(row["best"] == "1" for row in rows) == 1
    # the mean is the mean of the two seeds' summaries
    accs = {}
    for job in sorted(p for p in out.iterdir() if p.is_dir()):
        steps = json.loads((job / "summary.json").read_text())["step"]
        accs.setdefault(str(steps), []).append(json.loads((job / "summary.json").read_text())["acc"])
    for row in rows:
        assert float(row["acc_mean"]) == pytest.approx(np.mean(accs[row["trainer.max_steps"]]), rel=1e-5)
        assert float(row["acc_std"]) == pytest.approx(np.std(accs[row["trainer.max_steps"]], ddof=1),
                                                      rel=1e-4, abs=1e-9)
    assert "| trainer.max_steps | seeds |" in md and "★" in md


def _fake_job(root: Path, num: int, eta: str, seed: str, acc: float, color: int, index: bool = True) -> None:
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(
        f"- experiment=ddim_faces\n- model.sampler.eta={eta}\n- seed={seed}\n")
    (job / "summary.json").write_text(json.dumps({"step": 10, "mse": acc, "n": 10}))
    ddim = job / "artifacts" / "ddim"
    ddim.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), color + i, np.uint8)).save(ddim / f"{i:02d}.png")
    if index:  # a finished run's task writes artifacts/index.json from its ARTEFACTS
        write_index(job / "artifacts", DDIMFaceTask)


def test_rebuild_command_and_labelled_grid(tmp_path):
    root = tmp_path / "multirun"
    for num, (eta, seed, mse) in enumerate([("0", "0", 3.0), ("0", "1", 5.0), ("1", "0", 1.0),
                                             ("1", "1", 2.0)]):
        _fake_job(root, num, eta, seed, mse, 40 * num)
    r = subprocess.run([sys.executable, "-m", "genda.report", "sweep", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((root / "sweep.csv").open()))
    assert [(row["model.sampler.eta"], float(row["mse_mean"])) for row in rows] == [("0", 4.0), ("1", 1.5)]
    # mse: lower is better, so eta=1 is the best row
    assert [row["best"] for row in rows] == ["", "1"]
    grid = Image.open(root / "sweep_grid.png")
    assert grid.width > 300 and grid.height > 300  # two labelled columns of four images


def test_grid_of_jobs_made_before_the_artefact_index_says_why(tmp_path):
    root = tmp_path / "multirun"
    for num, (eta, index) in enumerate([("0", False), ("1", True)]):
        _fake_job(root, num, eta, "0", 1.0, 40 * num, index=index)
    out = write(root)
    assert "grid" not in out and not (root / "sweep_grid.png").exists()  # one column left: no grid
    md = (root / "sweep.md").read_text()
    assert ("> **missing:** headline picture of `0` (complete; expected under `0/artifacts` — the run has "
            "no artifacts/index.json (made before the artefact index))") in md
    assert "`1/artifacts`" not in md


def test_sweep_of_a_non_sweep_dir_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "genda.report", "sweep", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert str(tmp_path) in r.stderr.strip().splitlines()[-1]


def test_direction_of_metrics():
    assert lower_is_better("fid") and lower_is_better("best_fid") and lower_is_better("kid_mean")
    assert lower_is_better("mse") and not lower_is_better("acc")
    assert not lower_is_better("target_acc") and not lower_is_better("face_score")


def test_write_refuses_missing_dir(tmp_path):
    from genda.errors import GendaError

    with pytest.raises(GendaError):
        write(tmp_path / "nope")


@pytest.mark.slow
def test_optuna_two_trial_search(tmp_path):
    out = tmp_path / "search"
    r = subprocess.run(
        [sys.executable, "-m", "genda", "experiment=dann_mnist_mnistm", "hparams_search=dann_optuna",
         "scale=smoke", "logger=disabled", "hydra.sweeper.n_trials=2",
         "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweep.dir={out}"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    import yaml

    res = yaml.safe_load((out / "optimization_results.yaml").read_text())
    assert set(res["best_params"]) == {"model.lambda_max", "model.optimizer.lr"}
    assert 0.05 <= res["best_params"]["model.lambda_max"] <= 1.0
    summaries = [json.loads((out / str(i) / "summary.json").read_text()) for i in range(2)]
    assert res["best_value"] == pytest.approx(max(s["best_target_acc"] for s in summaries))
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert len(rows) == 2 and "model.lambda_max" in rows[0]


def test_gan_search_composes():
    from hydra import compose, initialize_config_dir

    from genda.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=dcgan_b", "hparams_search=dcgan_b_optuna"],
                      return_hydra_config=True)
    assert cfg.hydra.sweeper.direction == "minimize"
    assert "model.g_optimizer.betas.0" in cfg.hydra.sweeper.params


@pytest.mark.slow
def test_eta_sweep_reuses_one_trained_model(tmp_path):
    trained = tmp_path / "trained"
    base = ["experiment=ddim_faces", "scale=smoke", "logger=disabled"]
    r = subprocess.run([sys.executable, "-m", "genda", *base, f"hydra.run.dir={trained}"],
                       cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "eta"
    r = subprocess.run([sys.executable, "-m", "genda", "-m", *base, f"model.ckpt={trained}",
                        "trainer.max_steps=1", "model.sampler.eta=0,1", f"hydra.sweep.dir={out}"],
                       cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for job in ("0", "1"):
        ev = json.loads((out / job / "artifacts" / "eval.json").read_text())
        assert ev["weights"] == str(trained)
        # no training: no loss rows were logged by the sampling-only jobs
        rows = [json.loads(x) for x in (out / job / "metrics.jsonl").read_text().splitlines()]
        assert not any("train/loss" in row for row in rows)
    a = np.asarray(Image.open(out / "0" / "artifacts" / "ddim" / "00.png"))
    b = np.asarray(Image.open(out / "1" / "artifacts" / "ddim" / "00.png"))
    assert not np.array_equal(a, b)  # eta=1 adds fresh noise at every step
    assert (out / "sweep_grid.png").is_file()
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [row["model.sampler.eta"] for row in rows] == ["0", "1"]
