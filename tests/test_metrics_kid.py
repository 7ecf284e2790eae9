"""KID: equal to torch-fidelity's on the same features, the unbiased MMD² formula, small-n behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import kid_features_to_metric

from genda.errors import DataError
from genda.metrics import kid as kid_module
from genda.metrics.kid import kid, mmd2_unbiased, poly_kernel


def _features(rng: np.random.Generator, n: int, d: int = 2048, shift: float = 0.0) -> np.ndarray:
    """Non-negative, Inception-pool3-like features."""
    return np.abs(rng.normal(0.4 + shift, 0.3, (n, d)))


def _theirs(fake: np.ndarray, real: np.ndarray, **kw) -> dict:
    r = kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), verbose=False, **kw)
    return {"kid": r["kernel_inception_distance_mean"], "kid_std": r["kernel_inception_distance_std"]}


def _naive_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The paper's unbiased estimator written out: off-diagonal means within sets, full mean across."""
    d, m, n = x.shape[1], len(x), len(y)
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    xx = sum(kxx[i, j] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(kyy[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def test_full_set_kid_equals_torch_fidelity_and_the_formula():
    rng = np.random.default_rng(0)
    fake, real = _features(rng, 120), _features(rng, 120, shift=0.05)
    ours = kid(fake, real, subsets=1, subset_size=120)
    theirs = _theirs(fake, real, kid_subsets=1, kid_subset_size=120)
    assert ours["kid"] > 1e-3 and ours["kid_std"] == 0.0 and ours["kid_subset_size"] == 120
    assert ours["kid"] == pytest.approx(theirs["kid"], abs=1e-6, rel=1e-9)
    small_f, small_r = fake[:25, :16], real[:25, :16]
    assert kid(small_f, small_r, subsets=1)["kid"] == pytest.approx(_naive_mmd2(small_f, small_r), rel=1e-9)
    x, y = torch.from_numpy(fake[:30, :16]), torch.from_numpy(real[:25, :16])  # unequal sizes: the general form
    got = mmd2_unbiased(poly_kernel(x, x), poly_kernel(y, y), poly_kernel(x, y))
    assert got == pytest.approx(_naive_mmd2(x.numpy(), y.numpy()), rel=1e-9)


def test_subset_kid_equals_torch_fidelity_with_its_defaults_sampling():
    """Same seed and draw order (fake subset, then real) as torch-fidelity: equal means and stds."""
    rng = np.random.default_rng(1)
    fake, real = _features(rng, 300, 256), _features(rng, 450, 256, shift=0.02)
    ours = kid(fake, real, subsets=100, subset_size=200)  # seed 2020 as torch-fidelity's rng_seed
    theirs = _theirs(fake, real, kid_subsets=100, kid_subset_size=200)
    assert ours["kid"] == pytest.approx(theirs["kid"], abs=1e-6, rel=1e-9)
    assert ours["kid_std"] == pytest.approx(theirs["kid_std"], abs=1e-6, rel=1e-6)
    assert ours["kid_std"] > 0 and ours["kid_subsets"] == 100
    assert kid(fake, real, subsets=100, subset_size=200) == ours  # seeded: deterministic


def test_kernel_matrices_once_or_per_subset_agree(monkeypatch):
    rng = np.random.default_rng(2)
    fake, real = _features(rng, 80, 64), _features(rng, 90, 64, shift=0.1)
    once = kid(fake, real, subsets=10, subset_size=50)
    monkeypatch.setattr(kid_module, "GRAM_LIMIT", 0)
    per_subset = kid(fake, real, subsets=10, subset_size=50)
    assert per_subset["kid"] == pytest.approx(once["kid"], rel=1e-10)
    assert per_subset["kid_std"] == pytest.approx(once["kid_std"], rel=1e-8)


def test_identical_sets_give_about_zero_and_shifted_sets_more():
    rng = np.random.default_rng(3)
    a, b = _features(rng, 200, 64), _features(rng, 200, 64)
    near, far = kid(a, b, subsets=20, subset_size=100)["kid"], kid(a, b + 0.2, subsets=20, subset_size=100)["kid"]
    assert abs(near) < 0.01 < far


def test_small_n_shrinks_the_subset_and_n_below_2_is_an_error():
    rng = np.random.default_rng(4)
    fake, real = _features(rng, 50, 32), _features(rng, 2000, 32)
    r = kid(fake, real)  # defaults: 100 subsets of 1000 -> min(1000, 50)
    assert r["kid_subset_size"] == 50 and r["n_fake"] == 50 and r["n_real"] == 2000 and r["kid_subsets"] == 100
    assert r["kid"] == pytest.approx(_theirs(fake, real, kid_subsets=100, kid_subset_size=50)["kid"], abs=1e-6)
    with pytest.raises(DataError, match="at least 2 fake"):
        kid(fake[:1], real)
    with pytest.raises(DataError, match="at least 2 real"):
        kid(fake, real[:1])
    with pytest.raises(DataError, match="64-d fake and 32-d real"):
        kid(_features(rng, 10, 64), real)


def test_evaluate_kid_and_fid_print_kid_on_the_fid_features(tmp_path, capsys):
    """`genda.evaluate kid A B` is kid() of the FID Inception's features; `fid A B` prints KID beside FID."""
    import json

    from PIL import Image
    from skimage.data import lfw_subset

    from genda.evaluate import main
    from genda.metrics.fid import FID, image_files, read_rgb

    x = np.round(lfw_subset() * 255).astype(np.uint8)
    for name, part in (("a", x[:12]), ("b", x[100:110])):
        (tmp_path / name).mkdir()
        for i, im in enumerate(part):
            Image.fromarray(im).resize((32, 32), Image.BILINEAR).convert("RGB").save(tmp_path / name / f"{i:02d}.png")
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "kid.json"
    common = ["--dims", "64", "--weights", "fid-helper", "--device", "cpu"]
    assert main(["kid", str(a), str(b), *common, "--subsets", "7", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    fid = FID("fid-helper", "cpu", dims=64)
    expected = kid(fid.features(read_rgb(image_files(a))), fid.features(read_rgb(image_files(b))), subsets=7)
    assert r["value"] == pytest.approx(expected["kid"], abs=1e-9) and r["std"] == pytest.approx(expected["kid_std"], abs=1e-9)
    assert r["n"] == [12, 10] and r["subset_size"] == 10 and r["subsets"] == 7
    assert capsys.readouterr().out.startswith(f"kid {expected['kid']:.6f} ± ")
    assert main(["fid", str(a), str(b), *common, "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["metric"] == "fid" and r["kid_subset_size"] == 10 and r["kid_subsets"] == 100
    assert " kid=" in capsys.readouterr().out
