"""Embedded domains: bit-identical builds, documented sizes, the MNIST-M recipe, checksums."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from genda.data import load_domain
from genda.data.domain import default_cache_dir
from genda.data.embedded import BUILDERS, build_embedded, cache_key, fashion_dir
from genda.data.mnistm import blend
from genda.errors import DataError

SMALL = {"mnistm": {"n_train": 1500, "n_val": 300}, "syndigits": {"n_train": 1500, "n_val": 300},
         "faces_synthetic": {"n_train": 64, "n_val": 16}}
FULL_SIZES = {  # (train, val, C, H, W) of the default builds
    "mnist": (60000, 10000, 1, 28, 28), "mnistm": (60000, 10000, 3, 28, 28),
    "syndigits": (50000, 10000, 3, 28, 28), "uci_digits": (1438, 359, 1, 28, 28),
    "fashion": (60000, 10000, 1, 28, 28), "faces_embedded": (80, 20, 3, 64, 64),
    "nonfaces_embedded": (80, 20, 3, 64, 64), "faces_synthetic": (30000, 3000, 3, 64, 64),
    "usps_mfeat": (1600, 400, 1, 16, 16),
}


def _skip_fashion(name: str, cache) -> None:
    if name == "fashion" and fashion_dir(cache) is None:
        pytest.skip("Fashion-MNIST not available here (Debian dataset-fashion-mnist not unpacked)")


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    """twice(name) -> (meta_a, meta_b, cache_a): the (small) build made in two fresh caches
    (shared by all domains, so mnistm reuses the MNIST tensors built there)."""
    done, root = {}, tmp_path_factory.mktemp("builds")

    def build(name: str) -> tuple[dict, dict, Path]:
        if name not in done:
            metas = [build_embedded(name, root / ab, **SMALL.get(name, {})) for ab in "ab"]
            done[name] = (*metas, root / "a")
        return done[name]

    return build


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builds_bit_identically(name: str, twice) -> None:
    _skip_fashion(name, default_cache_dir())
    a, b, cache = twice(name)
    assert a["files"] == b["files"] and set(a["files"]) == {"train.pt", "val.pt"}
    assert a["sources"] == b["sources"] and a["provenance"] == b["provenance"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnistm", "syndigits"])
def test_seed_changes_the_build(name: str, twice) -> None:
    """The checksum comparison above can fail: another seed gives other bytes."""
    a, _, cache = twice(name)
    other = build_embedded(name, cache, seed=1, **SMALL[name])
    assert a["files"]["train.pt"] != other["files"]["train.pt"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnistm", "syndigits"])
def test_debian_pieces_are_recorded_not_silent(name: str, tmp_path) -> None:
    """debian=false builds from the pip wheels alone and says so; sources never name /usr/share."""
    meta = build_embedded(name, tmp_path, debian=False, n_train=100, n_val=100)
    assert "not used (debian=false)" in meta["provenance"]
    assert not any("/usr/share" in s for s in meta["sources"])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FULL_SIZES))
def test_default_build_sizes_and_labels(name: str) -> None:
    """The documented sizes, from the real cache (built on first use)."""
    cache = default_cache_dir()
    _skip_fashion(name, cache)
    d = load_domain(name, cache_dir=str(cache))
    n_train, n_val, *shape = FULL_SIZES[name]
    assert (len(d.train), len(d.val)) == (n_train, n_val)
    for split in (d.train, d.val):
        assert tuple(split.images.shape[1:]) == tuple(shape) and split.images.dtype == torch.uint8
        if d.num_classes is None:
            assert split.labels is None
        else:
            assert split.labels.dtype == torch.int64
            assert torch.equal(split.labels.unique(), torch.arange(10))
    assert d.provenance and d.embedded


def test_blend_is_abs_difference_of_patch_and_digit() -> None:
    digits = np.random.default_rng(0).integers(0, 256, (5, 1, 28, 28), dtype=np.uint8)
    photo = np.zeros((40, 50, 3), np.uint8)
    photo[..., 0], photo[..., 1], photo[..., 2] = 200, 30, 0
    out = blend(digits, [photo], np.random.default_rng(0))
    expect = np.abs(np.array([200, 30, 0])[None, :, None, None] - digits.astype(int))
    assert out.shape == (5, 3, 28, 28) and np.array_equal(out, expect)


@pytest.mark.slow
def test_mnistm_is_blended_and_val_photos_are_disjoint(twice) -> None:
    meta, _, cache = twice("mnistm")
    d = load_domain("mnistm", cache_dir=str(cache), **SMALL["mnistm"])
    mnist = load_domain("mnist", cache_dir=str(cache))
    digit = mnist.train.images[:1500].expand(-1, 3, -1, -1)
    # a pixel equals MNIST's in all three channels only where the photo is black
    same = (d.train.images == digit).all(1).float().mean().item()
    assert same < 0.2, f"{same:.2f} of mnistm pixels equal MNIST's"
    assert torch.equal(d.train.labels, mnist.train.labels[:1500])
    photos = {s: {src.split(" ")[1] for src in meta["sources"] if src.startswith(s + ":")}
              for s in ("train", "val")}
    hashes = {s: {src.rsplit(", ", 1)[1] for src in meta["sources"] if src.startswith(s + ":")}
              for s in ("train", "val")}
    assert photos["train"] and photos["val"] and not photos["train"] & photos["val"]
    assert not hashes["train"] & hashes["val"]


def _built(tmp_path, name: str = "uci_digits"):
    build_embedded(name, tmp_path)
    return tmp_path / "embedded" / cache_key(name)


def test_changed_file_fails_checksum(tmp_path) -> None:
    folder = _built(tmp_path)
    data = bytearray((folder / "train.pt").read_bytes())
    data[-100] ^= 0xFF
    (folder / "train.pt").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train\.pt: checksum mismatch.*build --force"):
        load_domain("uci_digits", cache_dir=str(tmp_path))


def test_truncated_file_fails_and_force_rebuilds(tmp_path) -> None:
    folder = _built(tmp_path)
    data = (folder / "val.pt").read_bytes()
    (folder / "val.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"val\.pt: checksum mismatch.*python -m genda\.data build --force"):
        load_domain("uci_digits", cache_dir=str(tmp_path))
    build_embedded("uci_digits", tmp_path, force=True)
    assert len(load_domain("uci_digits", cache_dir=str(tmp_path)).val) == 359


def test_unknown_build_option_is_named(tmp_path) -> None:
    with pytest.raises(DataError, match="no option"):
        load_domain("mnist", cache_dir=str(tmp_path), n_train=5)


@pytest.mark.slow
def test_syndigits_renders_readable_varied_images(twice) -> None:
    meta, _, cache = twice("syndigits")
    d = load_domain("syndigits", cache_dir=str(cache), **SMALL["syndigits"])
    x = d.train.images.float()
    assert x.std(dim=(1, 2, 3)).min() > 5, "an image without a visible digit"
    counts = torch.bincount(d.train.labels, minlength=10)
    assert counts.min() > 100  # labels roughly uniform over 0..9
    assert len(meta["sources"]) >= 20  # matplotlib alone ships ~20 usable fonts


def test_debian_extras_script_without_apt_get_exits_0(tmp_path) -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "install_debian_extras.sh"
    proc = subprocess.run(["/bin/bash", str(script)], env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "no apt-get here" in proc.stdout


def test_an_empty_genda_cache_means_the_default_not_the_working_directory(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GENDA_CACHE", "")
    assert default_cache_dir() == tmp_path / ".cache" / "genda"
    monkeypatch.setenv("GENDA_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
