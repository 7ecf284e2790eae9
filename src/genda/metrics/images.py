"""Scores of generated images against the data's val split: FID, KID, the diversity ratio and the
face score, under one `ImageProtocol` built from the `metrics` config.

`ImageProtocol.from_config(fid, n_real, face_score, cache_dir, face)` takes what the GAN and VAE
tasks receive (`model.fid: ${metrics.fid}`, `model.face: ${metrics.face}`, ...); `ImageEvaluator`
scores images under it and names how (`record()`, for eval.json). Reference statistics and the
real-image face score are cached by genda.metrics.fid / genda.metrics.face_score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from genda.metrics.kid import SEED, SUBSET_SIZE, SUBSETS

FACE_DOMAINS = ("faces", "faces_embedded", "faces_synthetic", "celeba")


def diversity_ratio(fake: torch.Tensor, real: torch.Tensor, max_images: int = 2048) -> float:
    """Mode-collapse check: the mean per-pixel standard deviation across generated images divided
    by the same for real images (uint8 (N, C, H, W), resized to the generated size). About 1 for
    a generator as varied as the data; near 0 when every image is the same (collapse)."""
    real = real[:max_images].float()
    if real.shape[-2:] != fake.shape[-2:]:
        real = torch.nn.functional.interpolate(real, size=fake.shape[-2:], mode="bilinear",
                                               antialias=True, align_corners=False)
    if real.shape[1] != fake.shape[1]:
        real = real.mean(1, keepdim=True).expand(-1, fake.shape[1], -1, -1)
    spread_real = float(real.std(0).mean())
    spread_fake = float(fake[:max_images].float().cpu().std(0).mean())
    return spread_fake / spread_real if spread_real > 0 else float("nan")


@dataclass(frozen=True)
class ImageProtocol:
    """How generated images are scored. weights/fid_batch_size/dims: the Inception features (see
    genda.metrics.fid); n_fake: images a validation scores; kid: genda.metrics.kid.kid kwargs as
    sorted (key, value) pairs (empty: its defaults); n_real: reference images, the first n of the
    val split (None: all); face_score: None decides by the domain name (FACE_DOMAINS); detector,
    face_batch_size: the face score's (genda.metrics.face_score); cache_dir: None is genda's default."""

    weights: str = "auto"
    fid_batch_size: int = 50
    dims: int = 2048
    n_fake: int = 1000
    kid: tuple[tuple[str, Any], ...] = ()
    n_real: int | None = None
    face_score: bool | None = None
    detector: str = "hog"
    face_batch_size: int = 64
    cache_dir: str | None = None

    @classmethod
    def from_config(cls, fid: Mapping[str, Any] | None = None, n_real: int | None = None,
                    face_score: bool | None = None, cache_dir: str | None = None,
                    face: Mapping[str, Any] | None = None) -> ImageProtocol:
        """fid: the `metrics.fid` config (weights, n_fake, batch_size, dims[, kid: {subsets,
        subset_size, seed}]); face: the `metrics.face` config (detector hog|mtcnn, batch_size);
        n_real, face_score, cache_dir: the task's keys of those names. Dicts or DictConfigs."""
        fid, face = dict(fid or {}), dict(face or {})
        return cls(weights=str(fid.get("weights", "auto")), fid_batch_size=int(fid.get("batch_size", 50)),
                   dims=int(fid.get("dims", 2048)), n_fake=int(fid.get("n_fake", 1000)),
                   kid=tuple(sorted(dict(fid.get("kid") or {}).items())),
                   n_real=None if n_real is None else int(n_real),
                   face_score=None if face_score is None else bool(face_score),
                   detector=str(face.get("detector", "hog")), face_batch_size=int(face.get("batch_size", 64)),
                   cache_dir=None if cache_dir is None else str(cache_dir))

    @property
    def kid_kwargs(self) -> dict[str, Any]:
        return dict(self.kid)

    def wants_faces(self, domain_name: str) -> bool:
        return self.face_score if self.face_score is not None else domain_name in FACE_DOMAINS


def val_reference(data, n_real: int | None) -> tuple[dict, torch.Tensor]:
    """The first `n_real` (None: all) val images of a data module and the fields naming them, the
    key under which their FID statistics and face score are cached."""
    real = data.split("val").images
    n = len(real) if n_real is None else min(n_real, len(real))
    fields = {"dataset": data.domain_name, "provenance": data.domain.provenance, "split": "val",
              "image_size": tuple(real.shape[1:]), "count": n,
              "resize": f"torchvision v2 Resize antialias to {data.image_size}" if data.image_size else "none",
              "subset": f"first {n} of val (limit_val={data.limit_val}, seed={data.seed})"}
    return fields, real[:n]


class ImageEvaluator:
    """FID and KID against cached features of the data's val split, plus the face score on face data,
    under `protocol`. The face score is `face_score_<detector>`, beside `face_score_real_<detector>`:
    the same detector on the reference val images (the ceiling), cached like the FID statistics.
    The Inception network, the reference statistics and the detector load on the first call."""

    def __init__(self, protocol: ImageProtocol) -> None:
        self.protocol = protocol
        self._fid, self._ref, self._faces, self._fields, self._real = None, None, None, None, None
        self._face_real: dict | None = None

    @property
    def detector(self) -> str:
        return self.protocol.detector

    def _reference(self, data, device: torch.device):
        from genda.metrics.fid import FID

        p = self.protocol
        if self._fid is None:
            self._fid = FID(p.weights, device, p.fid_batch_size, p.cache_dir, p.dims)
        if self._ref is None:
            self._fields, self._real = val_reference(data, p.n_real)
            self._ref = self._fid.reference_stats(self._fields, lambda: self._real)
        return self._ref

    def wants_faces(self, data) -> bool:
        return self.protocol.wants_faces(getattr(data, "domain_name", ""))

    def __call__(self, images: torch.Tensor, data) -> dict[str, float]:
        """images: (N, C, H, W) float in the data's range -> {fid, kid, kid_std, kid_subset_size, n_real,
        n_fake, diversity[, face_score_<detector>, face_score_real_<detector>]} (face scores in %;
        diversity: `diversity_ratio`, near 0 reads as mode collapse)."""
        uint8 = data.to_uint8(images)
        ref = self._reference(data, images.device)
        res = self._fid.score(uint8, ref, kid=self.protocol.kid_kwargs)
        out = {"fid": float(res["fid"]), "n_real": int(res["n_real"]), "n_fake": int(res["n_fake"]),
               "diversity": diversity_ratio(uint8, self._real)}
        if "kid" in res:
            out.update(kid=float(res["kid"]), kid_std=float(res["kid_std"]), kid_subset_size=int(res["kid_subset_size"]))
        if self.wants_faces(data):
            from genda.metrics.face_score import FaceScore

            self._faces = self._faces or FaceScore(images.device, self.protocol.face_batch_size,
                                                   detector=self.detector)
            out[f"face_score_{self.detector}"] = float(self._faces(uint8.cpu())["face_score"])
            if self._face_real is None:
                self._face_real = self._faces.reference_score(self._fields, lambda: self._real,
                                                              self.protocol.cache_dir)
            out[f"face_score_real_{self.detector}"] = float(self._face_real["face_score"])
        return out

    def record(self) -> dict[str, Any]:
        """eval.json fields naming how the scores were made (weights, KID subsets, face detector)."""
        kid = {"subsets": SUBSETS, "subset_size": SUBSET_SIZE, "seed": SEED, **self.protocol.kid_kwargs}
        return {"fid_weights": self.weights_id, "kid_protocol": kid, "face_detector": self.detector}

    @property
    def weights_id(self) -> str | None:
        return None if self._fid is None else self._fid.weights_id
