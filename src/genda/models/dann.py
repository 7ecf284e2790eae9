"""Networks for unsupervised domain adaptation (DANN, ADDA): feature extractors, a label
classifier, a domain classifier, and the gradient reversal layer (Ganin & Lempitsky 2015)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from genda.targets import register_target


class GradReverse(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by -lambd backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.neg() * ctx.lambd, None


def grad_reverse(x: torch.Tensor, lambd: float) -> torch.Tensor:
    """Gradient reversal: returns `x`; gradients flowing back are scaled by -lambd."""
    return GradReverse.apply(x, lambd)


def dann_lambda(progress: float, lambda_max: float = 1.0, gamma: float = 10.0) -> float:
    """The paper's schedule λ_p = λ_max·(2/(1+exp(−γp))−1), p in [0, 1] the training progress."""
    return lambda_max * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


class DomainBatchNorm2d(nn.Module):
    """Domain-specific batch normalisation (Chang et al., "Domain-Specific Batch Normalization
    for Unsupervised Domain Adaptation", CVPR 2019): one BatchNorm2d (statistics and affine
    parameters) per domain, all other weights shared. `domain` (set by the owning extractor before
    each forward) picks the branch: 0 = source, 1 = target."""

    def __init__(self, channels: int, domains: int = 2) -> None:
        super().__init__()
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(domains))
        self.domain = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bns[self.domain](x)


@register_target
class DannCNN(nn.Module):
    """The DANN paper's MNIST extractor: conv5x5 32, pool, conv5x5 48, pool (ReLU).
    x: (B, C, 28, 28) -> (B, 768). `batch_norm` adds BN after each conv (common re-implementations);
    `domain_bn` makes those BNs domain-specific (`DomainBatchNorm2d`): call `forward(x, domain)`
    with domain 0 (source) or 1 (target) and give each domain its own batch."""

    def __init__(
        self, in_channels: int = 3, batch_norm: bool = False, dropout: float = 0.0,
        domain_bn: bool = False,
    ) -> None:
        super().__init__()
        self.domain_specific = bool(batch_norm and domain_bn)
        if self.domain_specific:
            norm = lambda c: DomainBatchNorm2d(c)  # noqa: E731
        elif batch_norm:
            norm = lambda c: nn.BatchNorm2d(c)  # noqa: E731
        else:
            norm = lambda c: nn.Identity()  # noqa: E731
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5),
            norm(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 48, 5),
            norm(48),
            nn.Dropout2d(dropout),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.out_features = 48 * 4 * 4

    def forward(self, x: torch.Tensor, domain: int = 0) -> torch.Tensor:
        if self.domain_specific:
            for m in self.net:
                if isinstance(m, DomainBatchNorm2d):
                    m.domain = int(domain)
        return self.net(x)


def encode(encoder: nn.Module, x: torch.Tensor, domain: int) -> torch.Tensor:
    """`encoder(x)`, telling an extractor with domain-specific BN which domain `x` is from
    (0 source, 1 target)."""
    return encoder(x, domain) if getattr(encoder, "domain_specific", False) else encoder(x)


@register_target
class DeepCNN(nn.Module):
    """A deeper VGG-style extractor: three blocks of two conv3x3+BN+ReLU and a pool
    (64, 128, 256 channels), global average pool. x: (B, C, 28, 28) -> (B, 256)."""

    def __init__(self, in_channels: int = 3, batch_norm: bool = True, dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in (64, 128, 256):
            for _ in range(2):
                layers += [
                    nn.Conv2d(c_in, c, 3, padding=1, bias=not batch_norm),
                    nn.BatchNorm2d(c) if batch_norm else nn.Identity(),
                    nn.ReLU(),
                ]
                c_in = c
            layers += [nn.MaxPool2d(2), nn.Dropout2d(dropout)]
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def mlp(
    in_features: int, hidden: Sequence[int], out_features: int, dropout: float = 0.0
) -> nn.Sequential:
    """Linear-ReLU(-Dropout) stack ending in a plain Linear layer."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_features, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        in_features = h
    return nn.Sequential(*layers, nn.Linear(in_features, out_features))


@register_target
class LabelClassifier(nn.Module):
    """Digit head on features: (B, in_features) -> logits (B, num_classes). Paper: 100-100-10."""

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (100, 100),
        num_classes: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = mlp(in_features, hidden, num_classes, dropout)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


@register_target
class DomainClassifier(nn.Module):
    """Domain head on features: (B, in_features) -> logit (B,) of "target". Paper: 100-1;
    ADDA's discriminator: 500-500-1."""

    def __init__(
        self, in_features: int, hidden: Sequence[int] = (100,), dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.net = mlp(in_features, hidden, 1, dropout)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f).squeeze(1)
