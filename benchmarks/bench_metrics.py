"""FID of two folders through genda vs pytorch-fid's own functions (same folders, same offline
weights): equal values and time ratio, cold and with cached reference statistics; face-score
throughput batched vs one image at a time."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from PIL import Image
from pytorch_fid import fid_score, inception
from skimage.data import lfw_subset

from benchmarks.common import compare
from genda.data.domain import default_cache_dir
from genda.metrics.face_score import FaceScore
from genda.metrics.fid import FID, fid_of_folders, image_files, read_rgb, resolve_weights

REF_FIELDS = {"dataset": "lfw_subset-nonfaces", "split": "all", "image_size": 64, "resize": "bilinear-25to64"}


def _folders(root: Path, n: int) -> tuple[Path, Path]:
    """n real faces and n non-faces of lfw_subset as 64x64 RGB PNGs."""
    x = np.round(lfw_subset() * 255).astype(np.uint8)
    out = []
    for name, first in (("faces", 0), ("nonfaces", 100)):
        (root / name).mkdir()
        for i in range(first, first + n):
            Image.fromarray(x[i]).resize((64, 64), Image.BILINEAR).convert("RGB").save(root / name / f"{i:03d}.png")
        out.append(root / name)
    return out[0], out[1]


def _timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def _fid_rows(a: Path, b: Path, n: int, dims: int, cache: Path) -> dict:
    weights = resolve_weights("fid-helper", default_cache_dir())[0]
    pfid = lambda paths: fid_score.calculate_fid_given_paths(paths, 50, "cpu", dims, num_workers=0)  # noqa: E731
    with mock.patch.object(inception, "load_state_dict_from_url", return_value=weights):
        ours, t_ours = _timed(lambda: fid_of_folders(a, b, "fid-helper", "cpu", dims=dims, cache_dir=cache)["fid"])
        theirs, t_theirs = _timed(lambda: pfid([str(a), str(b)]))
        npz = str(cache / "ref.npz")
        fid_score.save_fid_stats([str(b), npz], 50, "cpu", dims, num_workers=0)
        fid = FID("fid-helper", "cpu", cache_dir=cache, dims=dims)
        ref = fid.reference_stats({**REF_FIELDS, "count": n}, lambda: read_rgb(image_files(b)))
        ours_c, t_ours_c = _timed(lambda: FID("fid-helper", "cpu", cache_dir=cache, dims=dims)
                                  .score(read_rgb(image_files(a)), ref)["fid"])
        theirs_c, t_theirs_c = _timed(lambda: pfid([str(a), npz]))
    row = lambda what, x, y, ta, tb: {  # noqa: E731
        "comparison": f"FID {dims}-d of 2 x {n} images, {what}", "a": f"genda {x:.4f}", "b": f"pytorch-fid {y:.4f}",
        "fid_genda": x, "fid_pytorch_fid": y, "abs_diff": abs(x - y), "seconds_genda": ta,
        "seconds_pytorch_fid": tb, "time_ratio": tb / ta, "repeats": 1}
    return {"cold": row("cold (both folders)", ours, theirs, t_ours, t_theirs),
            "cached_reference": row("cached reference stats", ours_c, theirs_c, t_ours_c, t_theirs_c)}


def _face_rows(n: int) -> dict:
    images = torch.from_numpy(np.round(lfw_subset()[:n] * 255).astype(np.uint8))[:, None]
    scorer = FaceScore(device="cpu", batch_size=64)
    one = FaceScore(device="cpu", batch_size=1)
    c = compare("metrics", f"face score, {n} lfw faces 25->64 px", ("genda batched (64)", lambda: scorer(images)),
                ("one image per MTCNN call", lambda: one(images)), repeats=2, work=n)
    return {"face_score": c, "score": scorer(images)["face_score"]}


def run(quick: bool = False) -> dict:
    quick = quick or os.environ.get("GENDA_BENCH_QUICK") == "1"
    n, dims = (40, 64) if quick else (100, 2048)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = _folders(Path(tmp), n)
        fid = _fid_rows(a, b, n, dims, Path(tmp))
    return {"fid": fid, **_face_rows(16 if quick else 48)}


if __name__ == "__main__":
    from benchmarks.__main__ import rows_of, table

    result = run()
    print(table(rows_of("metrics", result)))
    for k, v in result["fid"].items():
        print(k, {x: v[x] for x in ("fid_genda", "fid_pytorch_fid", "abs_diff", "seconds_genda", "seconds_pytorch_fid")})
