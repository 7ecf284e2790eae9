"""Face score: dlib HOG (the course's) and MTCNN find one face in real faces (lfw_subset), none in its non-faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import lfw_subset

from genda.errors import ConfigError, DataError
from genda.metrics.face_score import FaceScore, upscale


def _lfw_u8() -> torch.Tensor:
    """skimage's 200 grey 25x25 images (first 100 faces, then non-faces) as uint8 (200, 1, 25, 25)."""
    return torch.from_numpy(np.round(lfw_subset() * 255).astype(np.uint8))[:, None]


@pytest.fixture(scope="module")
def scorer() -> FaceScore:
    return FaceScore(device="cpu", batch_size=50, detector="mtcnn")


@pytest.fixture(scope="module")
def hog() -> FaceScore:
    return FaceScore(batch_size=50)  # the default detector


@pytest.mark.slow
def test_real_faces_score_100_and_non_faces_about_0(scorer):
    images = _lfw_u8()
    faces, nonfaces = scorer(images[:100]), scorer(images[100:])
    assert faces == {"face_score": 100.0, "detector": "mtcnn", "n": 100, "n_one_face": 100}
    assert nonfaces["n"] == 100 and nonfaces["face_score"] <= 5.0


def test_hog_finds_one_face_in_most_lfw_faces_and_none_in_non_faces(hog):
    """dlib HOG (face_recognition's default, one upsampling) on the faces upscaled to 64x64 RGB:
    measured 90/100 faces, 0/100 non-faces."""
    images = _lfw_u8()
    faces, nonfaces = hog(images[:100]), hog(images[100:])
    assert faces["detector"] == "hog" and faces["n"] == 100 and faces["face_score"] >= 85.0
    assert nonfaces["face_score"] <= 2.0


def test_hog_counts_equal_face_recognition_face_locations(hog, monkeypatch):
    """The course's call itself. face_recognition_models imports pkg_resources, which setuptools >= 81
    no longer ships; a stand-in with its one function lets the package load."""
    import importlib.util
    import sys
    import types

    for name in ("dlib", "face_recognition_models"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed")
    if importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda pkg, name: str(Path(importlib.util.find_spec(pkg).origin).parent / name)
        monkeypatch.setitem(sys.modules, "pkg_resources", shim)
    face_recognition = pytest.importorskip("face_recognition")
    x = upscale(_lfw_u8()[::10].expand(-1, 3, -1, -1)).permute(0, 2, 3, 1).numpy()
    theirs = [len(face_recognition.face_locations(np.ascontiguousarray(im))) for im in x]
    assert list(hog.count_faces(_lfw_u8()[::10])) == theirs


def test_hog_without_dlib_is_a_one_line_error_naming_pip(monkeypatch):
    import builtins

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "dlib"
                        else real_import(name, *a, **k))
    with pytest.raises(ConfigError, match="pip install dlib-bin") as e:
        FaceScore(detector="hog")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="hog, mtcnn"):
        FaceScore(detector="cnn")


def test_real_image_score_is_cached_under_protocol_and_detector(hog, tmp_path):
    images, calls = _lfw_u8()[:20], []

    def images_fn():
        calls.append(1)
        return images

    fields = {"dataset": "lfw", "split": "val", "image_size": (1, 25, 25), "count": 20, "resize": "none"}
    first = hog.reference_score(fields, images_fn, tmp_path)
    assert hog.reference_score(fields, images_fn, tmp_path) == first and len(calls) == 1
    assert first["detector"] == "hog" and first["n"] == 20 and first == hog(images)
    hog.reference_score({**fields, "count": 19}, images_fn, tmp_path)
    assert len(calls) == 2 and len(list((tmp_path / "faces").glob("*.json"))) == 2


def test_pil_and_tensor_inputs_agree_and_small_images_are_upscaled(scorer):
    images = _lfw_u8()[[0, 1, 150]].expand(-1, 3, -1, -1)
    pil = [Image.fromarray(im.permute(1, 2, 0).numpy()) for im in images]
    assert list(scorer.count_faces(images)) == list(scorer.count_faces(pil)) == [1, 1, 0]
    assert upscale(images).shape == (3, 3, 64, 64)
    big = torch.zeros(2, 3, 64, 80, dtype=torch.uint8)
    assert upscale(big) is big
    assert upscale(torch.zeros(1, 3, 32, 48, dtype=torch.uint8)).shape == (1, 3, 64, 96)


def test_bad_input_is_a_data_error(scorer):
    with pytest.raises(DataError, match="uint8"):
        scorer(torch.rand(2, 3, 64, 64))
    with pytest.raises(DataError, match="empty"):
        scorer(torch.zeros(0, 3, 64, 64, dtype=torch.uint8))


@pytest.mark.parametrize("detector", ["hog", "mtcnn"])
def test_evaluate_faces_prints_a_percentage_naming_the_detector(detector, tmp_path, capsys):
    import json

    from genda.evaluate import main

    for i, im in enumerate(upscale(_lfw_u8()[95:105].expand(-1, 3, -1, -1))):  # 5 faces, 5 non-faces
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(tmp_path / f"{i:02d}.png")
    args = ["faces", str(tmp_path), "--device", "cpu", "--json", str(tmp_path / "r.json")]
    assert main(args + ([] if detector == "hog" else ["--detector", detector])) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["detector"] == detector and r["n"] == 10 and r["value"] == 10.0 * r["n_one_face"]
    assert 30.0 <= r["value"] <= 50.0
    line = capsys.readouterr().out
    assert line.startswith(f"face_score {r['value']:.2f}% n=10 ") and f" detector={detector}" in line
