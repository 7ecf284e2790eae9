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
