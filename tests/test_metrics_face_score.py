"""Face score: MTCNN finds exactly one face in real faces (lfw_subset) and none in its non-faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import lfw_subset

from genda.errors import DataError
from genda.metrics.face_score import FaceScore, upscale


def _lfw_u8() -> torch.Tensor:
    """skimage's 200 grey 25x25 images (first 100 faces, then non-faces) as uint8 (200, 1, 25, 25)."""
    return torch.from_numpy(np.round(lfw_subset() * 255).astype(np.uint8))[:, None]


@pytest.fixture(scope="module")
def scorer() -> FaceScore:
    return FaceScore(device="cpu", batch_size=50)


@pytest.mark.slow
def test_real_faces_score_100_and_non_faces_about_0(scorer):
    images = _lfw_u8()
    faces, nonfaces = scorer(images[:100]), scorer(images[100:])
    assert faces == {"face_score": 100.0, "n": 100, "n_one_face": 100}
    assert nonfaces["n"] == 100 and nonfaces["face_score"] <= 5.0


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
