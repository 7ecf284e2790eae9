"""Every GAN/VAE experiment runs end to end at scale=smoke and writes the report's artefacts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import read_jsonl

GANS = ["dcgan_a", "dcgan_b", "sngan", "wgan", "wgan_gp"]


def _final(run) -> dict:
    return next(r for r in read_jsonl(run / "metrics.jsonl") if "final/fid" in r)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", GANS)
def test_gan_experiment_smoke(smoke_run, experiment):
    run = smoke_run(experiment)
    art = run / "artifacts"
    for name in ("summary_generator.txt", "summary_discriminator.txt"):
        text = (art / name).read_text()
        assert "Output Shape" in text and "Total params" in text
    assert Image.open(art / "first32.png").size == (8 * 66 + 2, 4 * 66 + 2)  # 32 images of 64 px, padding 2
    pngs = sorted(p.name for p in (art / "generated").glob("*.png"))
    assert pngs[:2] == ["0000.png", "0001.png"] and len(pngs) == 16
    assert Image.open(art / "generated" / "0000.png").size == (64, 64)
    final = _final(run)
    assert np.isfinite(final["final/fid"]) and final["final/n_fake"] == 16
    assert "final/face_score_hog" in final and "final/face_score_real_hog" in final  # face data
    assert np.isfinite(final["final/kid"]) and final["final/kid_subset_size"] == 16
    ev = json.loads((art / "eval.json").read_text())
    assert ev["fid_weights"] and ev["face_detector"] == "hog" and ev["kid_std"] >= 0
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert any("val/fid" in r for r in read_jsonl(run / "metrics.jsonl"))


@pytest.mark.slow
def test_gan_runs_on_resized_digits_without_face_score(smoke_run):
    run = smoke_run("dcgan_b", "data=mnist")
    final = _final(run)
    assert not any(k.startswith("final/face_score") for k in final) and final["final/n_real"] == 64
    assert Image.open(run / "artifacts" / "generated" / "0000.png").mode == "RGB"


@pytest.mark.slow
def test_vae_experiment_smoke(smoke_run):
    run = smoke_run("vae_faces")
    art = run / "artifacts"
    assert "Total params" in (art / "summary_vae.txt").read_text()
    mse = json.loads((art / "reconstruction_mse.json").read_text())
    assert len(mse["mse"]) == 10 and all(m >= 0 for m in mse["mse"])
    assert Image.open(art / "reconstructions.png").size == (10 * 66 + 2, 2 * 66 + 2)
    assert Image.open(art / "samples32.png").size == (8 * 66 + 2, 4 * 66 + 2)
    latents = np.load(art / "latents.npz")
    assert latents["mu"].shape == (64, 128)  # every val image: faces_synthetic's val capped at 64 (smoke)
    assert json.loads((art / "latents.json").read_text())["attribute"] is None
    rows = read_jsonl(run / "metrics.jsonl")
    assert {"train/recon", "train/kl", "val/recon"} <= set().union(*rows)  # the learning curves
    assert Image.open(art / "curves.png").width >= 600  # drawn into the run dir, reused by the report
    assert Image.open(art / "tsne.png").width >= 600
    final = _final(run)
    assert np.isfinite(final["final/fid"]) and np.isfinite(final["final/kid"]) and "final/face_score_hog" in final
    assert len(list((art / "generated").glob("*.png"))) == 16
