"""The image-scoring layer: ImageProtocol from the `metrics` config, ImageEvaluator's keys and caches
(64-d offline Inception: cheap), the diversity ratio, and the DDIM MSE against a ground-truth folder."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from genda.errors import DataError
from genda.metrics.images import FACE_DOMAINS, ImageEvaluator, ImageProtocol, diversity_ratio
from genda.metrics.mse import mse_by_name, mse_to_reference, read_png

FID_CFG = {"weights": "fid-helper", "n_fake": 16, "batch_size": 8, "dims": 64,
           "kid": {"subsets": 5, "subset_size": 1000, "seed": 2020}}


def test_protocol_from_the_metrics_config_as_the_tasks_get_it():
    cfg = OmegaConf.create({"metrics": {"fid": FID_CFG, "face": {"detector": "mtcnn", "batch_size": 32}}})
    p = ImageProtocol.from_config(cfg.metrics.fid, n_real=2048, face_score=None, cache_dir="/tmp/c",
                                  face=cfg.metrics.face)
    assert (p.weights, p.fid_batch_size, p.dims, p.n_fake, p.n_real) == ("fid-helper", 8, 64, 16, 2048)
    assert p.kid_kwargs == {"subsets": 5, "subset_size": 1000, "seed": 2020}
    assert (p.detector, p.face_batch_size, p.cache_dir, p.face_score) == ("mtcnn", 32, "/tmp/c", None)
    assert hash(p) == hash(ImageProtocol.from_config(dict(FID_CFG), 2048, None, "/tmp/c",
                                                     {"detector": "mtcnn", "batch_size": 32}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n_real = 1  # type: ignore[misc]


def test_protocol_defaults_and_the_face_rule():
    p = ImageProtocol.from_config()
    assert (p.weights, p.fid_batch_size, p.dims, p.n_fake, p.kid_kwargs) == ("auto", 50, 2048, 1000, {})
    assert (p.detector, p.face_batch_size, p.n_real, p.cache_dir) == ("hog", 64, None, None)
    assert all(p.wants_faces(d) for d in FACE_DOMAINS) and not p.wants_faces("mnistm")
    assert ImageProtocol.from_config(face_score=True).wants_faces("mnistm")
    assert not ImageProtocol.from_config(face_score=False).wants_faces("faces")


def test_diversity_ratio_reads_collapse_and_variety():
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=g)
    assert diversity_ratio(real, real) == pytest.approx(1.0)
    assert diversity_ratio(real[:1].expand(64, -1, -1, -1), real) == 0.0  # every image the same
    grey_big = real.float().mean(1, keepdim=True).repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert diversity_ratio(real, grey_big.to(torch.uint8)) > 0  # resized and channel-matched
    assert np.isnan(diversity_ratio(real, torch.zeros_like(real)))


def _data(real: torch.Tensor, domain: str = "mnistm") -> SimpleNamespace:
    return SimpleNamespace(split=lambda name: SimpleNamespace(images=real), domain_name=domain,
                           domain=SimpleNamespace(provenance="test"), image_size=None, limit_val=None, seed=0,
                           to_uint8=lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))


def test_evaluator_scores_under_the_protocol_and_caches_the_reference(tmp_path):
    g = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=g)
    fake = torch.rand(6, 3, 16, 16, generator=g) * 2 - 1
    ev = ImageEvaluator(ImageProtocol.from_config(FID_CFG, n_real=10, cache_dir=str(tmp_path)))
    assert ev.weights_id is None and ev.record()["fid_weights"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer images than features
        out = ev(fake, _data(real))
    assert set(out) == {"fid", "n_real", "n_fake", "diversity", "kid", "kid_std", "kid_subset_size"}
    assert out["n_real"] == 10 and out["n_fake"] == 6 and out["kid_subset_size"] == 6 and out["fid"] > 0
    assert out["diversity"] == pytest.approx(diversity_ratio(_data(real).to_uint8(fake), real[:10]))
    rec = ev.record()
    assert rec["kid_protocol"] == {"subsets": 5, "subset_size": 1000, "seed": 2020}
    assert rec["face_detector"] == "hog" and "fid-helper" in rec["fid_weights"]
    assert len(list((tmp_path / "fid" / "stats").glob("*.npz"))) == 1  # the reference statistics' cache file
    again = ImageEvaluator(ev.protocol)  # a new run with the same protocol reads the cache
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert again(fake, _data(torch.zeros_like(real)))["fid"] == out["fid"]


def _write_pngs(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:02d}.png")


def test_mse_to_reference_equals_numpy_on_0_255_pixels(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)  # (N, H, W, C) as PNGs hold them
    pred = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    _write_pngs(tmp_path / "gt", gt)
    expected = np.mean([((gt[i].astype(np.float64) - pred[i].astype(np.float64)) ** 2).mean() for i in range(4)])
    got = mse_to_reference(torch.from_numpy(pred).permute(0, 3, 1, 2), tmp_path / "gt")
    assert got == pytest.approx(expected, rel=1e-12) and got > 0
    assert mse_to_reference(torch.from_numpy(gt).permute(0, 3, 1, 2), tmp_path / "gt") == 0.0


def test_mse_to_reference_bad_ground_truth_is_one_line(tmp_path):
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    cases = []
    with pytest.raises(DataError, match=r"model.gt_dir: ground-truth folder .* not found") as e:
        mse_to_reference(images, tmp_path / "nowhere", key="model.gt_dir")
    cases.append(e)
    _write_pngs(tmp_path / "one", np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"model.gt_dir: missing ground-truth image .*01\.png") as e:
        mse_to_reference(images, tmp_path / "one", key="model.gt_dir")
    cases.append(e)
    _write_pngs(tmp_path / "big", np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(DataError, match=r"00\.png: size \(3, 16, 16\) differs from .*\(3, 8, 8\)") as e:
        mse_to_reference(images, tmp_path / "big")
    cases.append(e)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "00.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"00\.png is corrupt or unreadable") as e:
        mse_to_reference(images, tmp_path / "bad")
    cases.append(e)
    assert all(len(str(c.value).splitlines()) == 1 for c in cases)


def test_read_png_without_key_names_the_path_first(tmp_path):
    """The case `python -m genda.evaluate mse` reads with (files of either folder): the path leads."""
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"^.*x\.png: corrupt or unreadable image \(") as e:
        read_png(tmp_path / "x.png")
    assert len(str(e.value).splitlines()) == 1
    with pytest.raises(DataError, match=r"^.*y\.png: image not found$"):
        read_png(tmp_path / "y.png")


def test_mse_by_name_reads_as_the_task_does(tmp_path):
    """Grey and RGB PNGs both read as RGB: a grey image against its grey ground truth scores as the
    task would score the same pixels; files are matched by name, not order."""
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (2, 8, 8), dtype=np.uint8)
    (tmp_path / "gt").mkdir()
    (tmp_path / "out").mkdir()
    for i in range(2):
        Image.fromarray(gt[i]).save(tmp_path / "gt" / f"{i:02d}.png")
        Image.fromarray(gt[1 - i]).save(tmp_path / "out" / f"{1 - i:02d}.png")  # the same, other order
    Image.fromarray(gt[0] // 2).save(tmp_path / "out" / "00.png")
    got = mse_by_name(tmp_path / "out", tmp_path / "gt")
    want = ((gt[0].astype(np.float64) - gt[0] // 2) ** 2).mean()
    assert got == {"00.png": pytest.approx(want, rel=1e-12), "01.png": 0.0}
    rgb = torch.from_numpy(np.repeat((gt[0] // 2)[None], 3, 0))[None]
    assert mse_to_reference(rgb, tmp_path / "gt") == pytest.approx(want, rel=1e-12)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "out" / "01.png")
    with pytest.raises(DataError, match=r"01\.png: shape \(3, 4, 4\) differs from ground truth \(3, 8, 8\)"):
        mse_by_name(tmp_path / "out", tmp_path / "gt")
