"""KID (Bińkowski et al. 2018): unbiased MMD² between Inception features under k(x, y) = (xᵀy/d + 1)³.

Unlike FID it has an unbiased estimator, so numbers from a few hundred images are comparable with
those from thousands. Reported as mean ± std over `subsets` random subsets of `subset_size` images
of each set, drawn without replacement as torch-fidelity 0.4 draws them (np.random.RandomState(seed),
fake subset first, then real; defaults 100 subsets of 1000, seed 2020), so with the same features
both give the same number. The subset size shrinks to the smaller set when a set has fewer images.
"""

from __future__ import annotations

import numpy as np
import torch

from genda.errors import DataError

Array = np.ndarray | torch.Tensor

SUBSETS, SUBSET_SIZE, SEED = 100, 1000, 2020  # torch-fidelity's defaults
GRAM_LIMIT = 12_000  # up to this many images in all, kernel matrices are computed once and indexed


def poly_kernel(x: Array, y: Array, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """(xᵀy / d + coef0) ** degree for rows of x (m, d) and y (n, d) -> (m, n), float64."""
    x, y = (np.asarray(a.cpu() if isinstance(a, torch.Tensor) else a, dtype=np.float64) for a in (x, y))
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD² from kernel matrices: mean off-diagonal k_xx + mean off-diagonal k_yy - 2 mean k_xy."""
    m, n = len(k_xx), len(k_yy)
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(xx + yy - 2 * k_xy.sum() / (m * n))


def _features(f: Array, name: str) -> np.ndarray:
    x = np.asarray(f.cpu() if isinstance(f, torch.Tensor) else f, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"KID {name} features must be (n, d), got {tuple(x.shape)}")
    if len(x) < 2:
        raise DataError(f"KID needs at least 2 {name} images (unbiased MMD² divides by n - 1), got {len(x)}")
    return x


def kid(fake: Array, real: Array, subsets: int = SUBSETS, subset_size: int = SUBSET_SIZE, seed: int = SEED) -> dict:
    """KID of fake vs real features (n, d) -> {kid, kid_std, kid_subsets, kid_subset_size, n_real, n_fake}.

    subset_size becomes min(subset_size, n_fake, n_real); subsets=1 with subset_size >= n is the
    full-set unbiased MMD² (deterministic, std 0).
    """
    f, r = _features(fake, "fake"), _features(real, "real")
    if f.shape[1] != r.shape[1]:
        raise DataError(f"KID of {f.shape[1]}-d fake and {r.shape[1]}-d real features")
    if subsets < 1 or subset_size < 2:
        raise DataError(f"KID needs subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    nf, nr = len(f), len(r)
    s = min(subset_size, nf, nr)
    rng = np.random.RandomState(seed)
    draws = [(rng.choice(nf, s, replace=False), rng.choice(nr, s, replace=False)) for _ in range(subsets)]
    mmds = []
    if nf + nr <= GRAM_LIMIT:  # every subset's kernels are slices of the full ones
        k_ff, k_rr, k_fr = poly_kernel(f, f), poly_kernel(r, r), poly_kernel(f, r)
        for i, j in draws:
            mmds.append(mmd2_unbiased(k_ff[i][:, i], k_rr[j][:, j], k_fr[i][:, j]))
    else:
        for i, j in draws:
            a, b = f[i], r[j]
            mmds.append(mmd2_unbiased(poly_kernel(a, a), poly_kernel(b, b), poly_kernel(a, b)))
    return {"kid": float(np.mean(mmds)), "kid_std": float(np.std(mmds)), "kid_subsets": subsets,
            "kid_subset_size": s, "n_real": nr, "n_fake": nf}
