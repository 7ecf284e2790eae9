"""The UDA tasks' losses: the domain classifier's BCE (DANN, ADDA, DSN) and the target-side losses
UDATask adds with `mcc_weight` (Minimum Class Confusion) and `pseudo_weight` (pseudo-labels).
`genda.tasks.uda` re-exports them (`from genda.tasks.uda import mcc_loss` keeps working)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def domain_loss(logits: torch.Tensor, n_source: int) -> tuple[torch.Tensor, torch.Tensor]:
    """BCE of domain logits (B,) whose first `n_source` rows are source (0), the rest target (1);
    also the batch's domain accuracy."""
    target = torch.zeros_like(logits)
    target[n_source:] = 1.0
    loss = F.binary_cross_entropy_with_logits(logits, target)
    return loss, ((logits > 0).float() == target).float().mean()


def mcc_loss(logits: torch.Tensor, temperature: float = 2.5) -> torch.Tensor:
    """Minimum Class Confusion (Jin et al., "Minimum Class Confusion for Versatile Domain
    Adaptation", ECCV 2020, eq. 1-6) of target logits (B, C): temperature-scaled probabilities,
    entropy-based example weights, the class-correlation matrix normalised per row, and the mean
    over classes of its off-diagonal mass (0 = no two classes confused)."""
    b, c = logits.shape
    p = F.softmax(logits / temperature, dim=1)
    entropy = -(p * torch.log(p + 1e-5)).sum(1).detach()
    w = 1.0 + torch.exp(-entropy)
    w = (b * w / w.sum()).unsqueeze(1)
    corr = (p * w).t() @ p
    corr = corr / corr.sum(1, keepdim=True)
    return (corr.sum() - corr.trace()) / c


def pseudo_label_loss(logits: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Confidence-thresholded self-training (pseudo-labels, Lee 2013; the fixed threshold of
    FixMatch, Sohn et al. 2020): cross-entropy of target logits against their own arg-max where the
    detached softmax confidence is >= `threshold`, averaged over the whole batch; and the fraction
    of the batch that passed."""
    conf, label = F.softmax(logits.detach(), 1).max(1)
    mask = (conf >= threshold).float()
    return (F.cross_entropy(logits, label, reduction="none") * mask).mean(), mask.mean()
