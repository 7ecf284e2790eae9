"""Parts of Domain Separation Networks (Bousmalis et al., NeurIPS 2016) that are not DANN's:
the shared decoder, the difference (soft orthogonality) loss and the scale-invariant MSE.

The encoders, the label classifier and the domain classifier are the DANN ones
(`genda.models.dann`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genda.targets import register_target


@register_target
class DsnDecoder(nn.Module):
    """Shared decoder D: a code (B, in_features) -> image (B, out_channels, 28, 28) in [-1, 1].

    Linear to a (base, 7, 7) map, then two ×2 nearest-neighbour upsamplings each followed by
    conv3x3 + ReLU (base → 32 → 16 channels), a conv3x3 to `out_channels` and tanh. Close to the
    paper's MNIST decoder (fc, reshape, conv3x3 stacks with one upsampling), sized for 28×28."""

    def __init__(self, in_features: int, out_channels: int = 3, base: int = 48) -> None:
        super().__init__()
        self.base = int(base)
        self.fc = nn.Sequential(nn.Linear(in_features, self.base * 7 * 7), nn.ReLU())
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),  # 14x14
            nn.Conv2d(self.base, 32, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),  # 28x28
            nn.Conv2d(32, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, out_channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(code).view(len(code), self.base, 7, 7))


def _centre_and_normalise(h: torch.Tensor, eps: float) -> torch.Tensor:
    """(B, D) features: subtract the batch mean of each feature, then scale each row to unit L2."""
    h = h.flatten(1).float()
    return F.normalize(h - h.mean(0, keepdim=True), dim=1, eps=eps)


def difference_loss(shared: torch.Tensor, private: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """DSN's soft subspace-orthogonality loss ||H_cᵀ H_p||_F² (paper, eq. 3).

    H_c (B, D_c) and H_p (B, D_p) are a batch's shared and private codes, normalised as the
    official implementation does: each feature (column) is centred on its batch mean, then each
    row is scaled to unit L2 norm. The result is the *sum* of the squared entries of the
    (D_c, D_p) correlation matrix, as in the paper's Frobenius norm (the official code averages
    them instead, which only rescales β by 1/(D_c·D_p)). It lies in [0, B²] and is 0 exactly when
    every shared feature column is orthogonal, over the batch, to every private one.
    """
    hc, hp = _centre_and_normalise(shared, eps), _centre_and_normalise(private, eps)
    return (hc.t() @ hp).square().sum()


def scale_invariant_mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Scale-invariant MSE (Eigen et al. 2014; DSN's L_recon): per image, with d = x − x̂
    flattened to k values, (1/k)·||d||² − (1/k²)·(dᵀ1)²; averaged over the batch.

    It is the variance of d: a reconstruction off by a constant everywhere costs nothing, so the
    decoder models shapes rather than the absolute intensity of the image."""
    d = (x.float() - x_hat.float()).flatten(1)
    k = d.shape[1]
    return (d.square().sum(1) / k - d.sum(1).square() / k**2).mean()
