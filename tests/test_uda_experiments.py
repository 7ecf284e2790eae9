"""Every DANN/ADDA/DSN experiment runs at scale=smoke and writes the UDA artefacts; the course
table's modes run as one multirun."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import EXPERIMENTS, genda, read_jsonl

UDA_METHODS = ("dann", "adda", "dsn")
UDA = [e for e in EXPERIMENTS if e.startswith(tuple(f"{m}_" for m in UDA_METHODS))]


def test_every_course_pair_has_every_method():
    pairs = {"mnist_mnistm", "mnistm_svhn", "mnistm_usps", "usps_mnistm", "svhn_usps"}
    assert {f"{m}_{p}" for m in UDA_METHODS for p in pairs} <= set(UDA)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", UDA)
def test_uda_experiment_smoke(smoke_run, experiment):
    run = smoke_run(experiment)
    art = run / "artifacts"
    rows = read_jsonl(run / "metrics.jsonl")
    final = next(r for r in rows if "final/target_acc" in r)
    assert 0.0 <= final["final/target_acc"] <= 1.0 and 0.0 <= final["final/domain_acc"] <= 1.0
    assert any("val/domain_acc" in r for r in rows) and any("train/domain_acc" in r for r in rows)
    feats = np.load(art / "features.npz")
    d = 768  # every method's (shared) encoder is the DANN paper's CNN
    assert feats["source_features"].shape == (64, d) and feats["target_features"].shape == (64, d)
    assert feats["target_labels"].shape == (64,)
    for name in ("tsne_class.png", "tsne_domain.png"):
        assert Image.open(art / name).size == (720, 720)
    assert (run / "checkpoints" / "best.ckpt").is_file()
    ev = json.loads((art / "eval.json").read_text())  # every run kind writes eval.json
    assert ev["target_acc"] == pytest.approx(final["final/target_acc"])
    assert ev["data"]["source"]["domain"] and ev["data"]["target"]["domain"]
    if experiment.startswith("dsn_"):
        assert ev["method"] == "dsn"
        # per domain: input, D(E_c + E_p), D(E_c), D(E_p) rows of 8 images (28 px, padding 2)
        assert Image.open(art / "reconstructions.png").size == (2 + 8 * 30, 2 + 8 * 30)
        assert any("train/recon_loss" in r and "train/difference_loss" in r for r in rows)


@pytest.mark.slow
def test_course_table_is_one_multirun(tmp_path):
    genda(
        "-m",
        "experiment=dann_mnist_mnistm",
        "scale=smoke",
        "logger.mode=disabled",
        "trainer.progress=false",
        "model.mode=source_only,target_only",
        "model.tsne_points=16",
        f"hydra.sweep.dir={tmp_path}",
        check=True,
    )
    modes = sorted(OmegaConf.load(p).model.mode for p in tmp_path.glob("*/config.yaml"))
    assert modes == ["source_only", "target_only"]
    for run in tmp_path.glob("[0-9]*"):
        assert any("final/target_acc" in r for r in read_jsonl(run / "metrics.jsonl"))


@pytest.mark.slow
def test_adda_adapts_the_source_only_run_it_is_given(smoke_run, tmp_path):
    """The report's ADDA: `model.source_ckpt` = the pair's source-only run; the ADDA run's frozen
    source encoder and classifier are that run's last weights, every logged step is phase 2, and
    the finished run loads (genda.runs.load_run) after the source run is gone."""
    import shutil

    from genda.runs import load_run
    from genda.train import checkpoint as ckpt_io

    so = tmp_path / "so"
    shutil.copytree(smoke_run("dann_usps_mnistm", "model.mode=source_only"), so)
    run = tmp_path / "adda"
    genda("experiment=adda_usps_mnistm", "scale=smoke", "logger.mode=disabled", "trainer.progress=false",
          f"model.source_ckpt={so}", f"hydra.run.dir={run}", check=True)
    src = ckpt_io.load(so / "checkpoints" / "last.ckpt")["modules"]
    got = ckpt_io.load(run / "checkpoints" / "last.ckpt")["modules"]
    for mine, theirs in (("source_encoder", "features"), ("classifier", "classifier")):
        assert all(torch.equal(got[mine][k], src[theirs][k]) for k in src[theirs])
    phases = [r["train/phase"] for r in read_jsonl(run / "metrics.jsonl") if "train/phase" in r]
    assert phases and set(phases) == {2}
    shutil.rmtree(so)
    assert load_run(run).task.source_ckpt == str(so)  # built from its config, weights from its checkpoint
    bad = genda("experiment=adda_usps_mnistm", "scale=smoke", "logger.mode=disabled",
                f"model.source_ckpt={so}", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode == 2 and bad.stderr.strip() == f"genda: error: model.source_ckpt: checkpoint not found: {so}"
