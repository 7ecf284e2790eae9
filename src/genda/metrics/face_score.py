"""Face score: percentage of images in which a face detector finds exactly one face.

Detectors: 'hog' (the course's protocol: dlib's HOG frontal-face detector with one upsampling,
which is what `face_recognition.face_locations(rgb)` runs by default; ~1,000 64x64 images/s on one
core) and 'mtcnn' (facenet-pytorch's MTCNN, keep_all). Every score names its detector.

Upscale rule: images smaller than `min_side` (64 px) on their short side are resized
(bilinear, rounded to uint8) so the short side is 64, since MTCNN's smallest face is 20 px
and its pyramid needs room; the course's 64x64 faces pass through unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from genda.errors import ConfigError, DataError
from genda.kernel import progress

log = logging.getLogger(__name__)
DETECTORS = ("hog", "mtcnn")
HOG_INSTALL = "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0 && pip install --no-deps face-recognition==1.3.0"


def _as_uint8_batch(images: torch.Tensor | np.ndarray | list[Image.Image]) -> torch.Tensor:
    """uint8 (B, C, H, W) tensor/array or equal-size PIL images -> (B, 3, H, W) uint8 tensor."""
    if isinstance(images, list) and images:
        images = np.stack([np.asarray(im.convert("RGB")) for im in images]).transpose(0, 3, 1, 2)
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"face score needs uint8 (B, 1|3, H, W) images, got {x.dtype} {tuple(x.shape)}")
    if len(x) == 0:
        raise DataError("face score of an empty image set")
    return x.expand(-1, 3, -1, -1)


def upscale(images: torch.Tensor, min_side: int = 64) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> short side at least `min_side` (bilinear, rounded); larger images unchanged."""
    h, w = images.shape[2:]
    if min(h, w) >= min_side:
        return images
    size = (round(h * min_side / min(h, w)), round(w * min_side / min(h, w)))
    x = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def _hog_detector() -> Callable:
    try:
        import dlib
    except ImportError:
        raise ConfigError(f"face detector 'hog' needs dlib (as the course's face_recognition): {HOG_INSTALL}; "
                          "or use detector mtcnn") from None
    return dlib.get_frontal_face_detector()


class FaceScore:
    """detector 'hog' (dlib, CPU, one image at a time) or 'mtcnn' (MTCNN(keep_all=True) from the
    weights in facenet-pytorch's wheel, in batches on `device`)."""

    def __init__(self, device: str | torch.device | None = None, batch_size: int = 64, min_side: int = 64,
                 detector: str = "hog") -> None:
        if detector not in DETECTORS:
            raise ConfigError(f"face detector {detector!r}: use one of {', '.join(DETECTORS)}")
        self.name = detector
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if detector == "hog":
            self.detector = _hog_detector()
        else:
            from facenet_pytorch import MTCNN

            self.detector = MTCNN(keep_all=True, device=self.device)
        self.batch_size, self.min_side = batch_size, min_side

    def count_faces(self, images: torch.Tensor | np.ndarray | list[Image.Image]) -> np.ndarray:
        """images: uint8 (B, C, H, W) or PIL list -> (B,) number of faces found in each."""
        x = _as_uint8_batch(images)
        counts = []
        for i in progress(range(0, len(x), self.batch_size), f"face detection ({self.name}, {len(x)} images)",
                          total=-(-len(x) // self.batch_size)):
            batch = upscale(x[i:i + self.batch_size], self.min_side).permute(0, 2, 3, 1)
            if self.name == "hog":  # face_recognition.face_locations(img): HOG, upsampled once
                counts += [len(self.detector(np.ascontiguousarray(im), 1)) for im in batch.numpy()]
            else:
                boxes, _ = self.detector.detect(batch.to(self.device))
                counts += [0 if b is None else len(b) for b in boxes]
        return np.array(counts)

    def __call__(self, images: torch.Tensor | np.ndarray | list[Image.Image]) -> dict:
        """{face_score: % of images with exactly one face, detector, n, n_one_face}."""
        counts = self.count_faces(images)
        n_one = int((counts == 1).sum())
        return {"face_score": 100.0 * n_one / len(counts), "detector": self.name, "n": len(counts),
                "n_one_face": n_one}

    def reference_score(self, key_fields: dict, images_fn: Callable[[], torch.Tensor],
                        cache_dir: str | Path | None = None) -> dict:
        """Face score of real images (the ceiling for generated ones), cached as JSON under the FID
        protocol key of `key_fields` plus the detector; images_fn runs only on a miss."""
        from genda.data.domain import default_cache_dir
        from genda.kernel import atomic_write
        from genda.metrics.fid import stats_key

        fields = {**key_fields, "detector": self.name, "min_side": self.min_side}
        path = Path(cache_dir or default_cache_dir()) / "faces" / f"{stats_key(fields)}.json"
        text = json.dumps(fields, sort_keys=True, default=str)
        if path.is_file():
            try:
                cached = json.loads(path.read_text())
                if cached.get("fields") == text:
                    log.info("real-image face score from cache %s", path)
                    return cached["score"]
            except (OSError, ValueError, KeyError):
                pass  # a torn or foreign file: recompute
        score = self(images_fn())
        atomic_write(path, lambda f: f.write(json.dumps({"fields": text, "score": score}, indent=2).encode()))
        return score
