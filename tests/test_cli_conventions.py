"""Hydra conventions: tab completion, a help page that says what genda is, genda.log in the run
dir, and the refusal of Hydra's pickle-loading rerun flag."""

from __future__ import annotations

import pytest

from genda.__main__ import monitored
from tests.conftest import genda


def test_shell_completion_prints_a_script(tmp_path):
    r = genda("-sc", "install=bash", cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "hydra_bash_completion" in r.stdout


def test_help_opens_with_genda_and_lists_experiments(tmp_path):
    r = genda("--help", cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    first = r.stdout.strip().splitlines()[0]
    assert first.startswith("genda:") and "powered by Hydra" not in r.stdout
    assert "experiment: " in r.stdout and "ddpm_digits" in r.stdout and "dann_mnistm_usps" in r.stdout


def test_help_lists_only_the_groups_a_user_picks(tmp_path):
    """Not the per-scale folders (conf/experiment/dcgan_a/{smoke,cpu,full}.yaml) Hydra would list."""
    r = genda("--help", cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert not [x for x in lines if x.startswith("experiment/")]
    start = next(i for i, x in enumerate(lines) if x.startswith("== Config groups")) + 1
    listed = dict(x.split(": ", 1) for x in lines[start:lines.index("", start)])
    assert sorted(listed) == ["data", "experiment", "hparams_search", "logger", "metrics", "model",
                              "paths", "scale", "trainer"]
    assert "dcgan_a" in listed["experiment"].split(", ")


def test_experimental_rerun_is_refused(tmp_path):
    (tmp_path / "x.pickle").write_bytes(b"not a pickle")
    r = genda("--experimental-rerun", str(tmp_path / "x.pickle"), cwd=tmp_path, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "--experimental-rerun" in r.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_genda_log_in_run_dir(tmp_path):
    run = tmp_path / "run"
    r = genda("experiment=classifier_mnist", "scale=smoke", "logger=disabled", f"hydra.run.dir={run}",
              cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    log = (run / "genda.log").read_text()
    assert "[genda][INFO]" in log and "summary" in log
    assert not (run / "__main__.log").exists()


def test_monitored_value_for_sweepers():
    assert monitored({"best_fid": 80.0, "fid": 90.0}) == 80.0
    assert monitored({"fid": 90.0, "kid": 0.01}) == 90.0  # GAN runs without mid-run validation
    assert monitored({"step": 3}) is None


@pytest.mark.slow
def test_evaluate_run_rescores_without_training(tmp_path):
    import json

    run = tmp_path / "run"
    r = genda("experiment=classifier_mnist", "scale=smoke", "logger=disabled", f"hydra.run.dir={run}",
              cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    r = genda("run", str(run), "--checkpoint", "last", "--json", str(tmp_path / "r.json"),
              module="genda.evaluate", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "r.json").read_text())
    out = tmp_path / res["out"]
    assert (out / "summary.json").is_file()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert not any("train/loss" in row for row in rows)  # nothing trained
    # the last checkpoint's score is the run's own final score
    assert res["scores"]["acc"] == pytest.approx(json.loads((run / "summary.json").read_text())["acc"])
    r = genda("run", str(tmp_path / "nope"), module="genda.evaluate", cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_non_editable_install_ships_the_configs(tmp_path):
    """`pip install .` (not editable) puts conf/ inside the package; genda runs from there."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-build-isolation", "--target", str(target), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (target / "genda" / "conf" / "experiment" / "classifier_mnist.yaml").is_file()
    assert not (target / "genda" / "conf").is_symlink()
    env = {**os.environ, "PYTHONPATH": str(target), "WANDB_MODE": "disabled"}
    code = "import genda.config as c; print(c.CONF_DIR)"
    where = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert where.stdout.strip() == str(target / "genda" / "conf")
    r = subprocess.run([sys.executable, "-m", "genda", "experiment=classifier_mnist", "scale=smoke",
                        "logger=disabled", f"hydra.run.dir={tmp_path / 'run'}"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "run" / "summary.json").is_file()
