"""Face score: percentage of images in which facenet-pytorch's MTCNN finds exactly one face.

Upscale rule: images smaller than `min_side` (64 px) on their short side are resized
(bilinear, rounded to uint8) so the short side is 64, since MTCNN's smallest face is 20 px
and its pyramid needs room; the course's 64x64 faces pass through unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from genda.errors import DataError


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


class FaceScore:
    """MTCNN(keep_all=True) from the weights in facenet-pytorch's wheel, run in batches."""

    def __init__(self, device: str | torch.device | None = None, batch_size: int = 64, min_side: int = 64) -> None:
        from facenet_pytorch import MTCNN

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.detector = MTCNN(keep_all=True, device=self.device)
        self.batch_size, self.min_side = batch_size, min_side

    def count_faces(self, images: torch.Tensor | np.ndarray | list[Image.Image]) -> np.ndarray:
        """images: uint8 (B, C, H, W) or PIL list -> (B,) number of faces found in each."""
        x = _as_uint8_batch(images)
        counts = []
        for i in range(0, len(x), self.batch_size):
            batch = upscale(x[i:i + self.batch_size], self.min_side).permute(0, 2, 3, 1).to(self.device)
            boxes, _ = self.detector.detect(batch)
            counts += [0 if b is None else len(b) for b in boxes]
        return np.array(counts)

    def __call__(self, images: torch.Tensor | np.ndarray | list[Image.Image]) -> dict:
        """{face_score: % of images with exactly one face, n, n_one_face}."""
        counts = self.count_faces(images)
        n_one = int((counts == 1).sum())
        return {"face_score": 100.0 * n_one / len(counts), "n": len(counts), "n_one_face": n_one}
