"""W&B runs you can tell apart: name, group, tags, job type and one key per kind of picture,
read back from the offline run file (no network); summary.json records what the run is."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from genda.train.identity import distinguishing, run_identity
from tests.wandb_offline import run_info


def _cfg(**extra):
    base = {"name": "dann_mnistm_usps", "seed": 1, "scale": {"name": "cpu"},
            "logger": {"group": None, "tags": []},
            "model": {"_target_": "genda.tasks.uda.UDATask", "mode": "dann"},
            "data": {"source": {"domain": "mnistm"}, "target": {"domain": "usps_mfeat"}}}
    return OmegaConf.create({**base, **extra})


def test_identity_names_variant_and_seed():
    ov = ["experiment=dann_mnistm_usps", "model.lambda_max=0.3", "seed=1", "logger.mode=offline",
          "hydra.run.dir=/x", "scale=cpu"]
    ident = run_identity(_cfg(), ov)
    assert ident["name"] == "dann_mnistm_usps lambda_max=0.3 s1"
    assert ident["group"] == "dann_mnistm_usps lambda_max=0.3"  # seeds of a variant together
    assert {"scale:cpu", "data:mnistm", "data:usps_mfeat", "method:uda:dann"} <= set(ident["tags"])
    assert ident["job_type"] == "train"
    assert ident["run"]["overrides"] == {"model.lambda_max": "0.3"}
    assert ident["run"]["seed"] == 1 and ident["run"]["scale"] == "cpu"


def test_report_group_prefix_kept():
    cfg = _cfg(logger={"group": "report-cpu", "tags": ["report"]})
    ident = run_identity(cfg, ["model.mode=source_only"])
    assert ident["group"] == "report-cpu/dann_mnistm_usps mode=source_only"
    assert ident["tags"][0] == "report"


def test_same_last_key_keeps_full_path():
    values = distinguishing(["model.g_optimizer.lr=1e-3", "model.d_optimizer.lr=2e-4"])
    ident = run_identity(_cfg(), [f"{k}={v}" for k, v in values.items()])
    assert "model.g_optimizer.lr=1e-3" in ident["name"]


@pytest.mark.slow
def test_offline_run_file_has_names_tags_and_one_image_key(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_SILENT": "true"}
    env.pop("WANDB_MODE", None)
    r = subprocess.run(
        [sys.executable, "-m", "genda", "experiment=dcgan_a", "scale=smoke", "logger.mode=offline",
         "trainer.max_steps=4", "trainer.sample_every=2", "model.g_optimizer.lr=0.001", "seed=3",
         "logger.log_checkpoints=true",
         f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    info = run_info(files[0])
    assert info["name"] == "dcgan_a max_steps=4 lr=0.001 s3"  # cadence keys (sample_every) left out
    assert info["group"] == "dcgan_a max_steps=4 lr=0.001"
    assert "scale:smoke" in info["tags"] and any(t.startswith("data:") for t in info["tags"])
    assert info["job_type"] == "train"
    image_keys = {k.split("/")[0] for k in info["keys"] if k.endswith("/_type")}
    assert "samples" in image_keys  # every periodic sample grid under one key
    assert not any(k.startswith("samples/step_") for k in info["keys"])
    assert "final" in image_keys  # the final metrics as a W&B Table
    assert any(p.endswith("eval.json") for p in info.get("files", []))
    assert any(kind == "model" for kind, _ in info["artifacts"])  # checkpoints as a model Artifact
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["seed"] == 3 and summary["run"]["scale"] == "smoke"
    assert summary["run"]["overrides"] == {"trainer.max_steps": "4", "model.g_optimizer.lr": "0.001"}
    assert summary["run"]["data"]["domain"]
