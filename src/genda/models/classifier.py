"""The course's LeNet digit classifier (docs/protocols.md)."""

from __future__ import annotations

import torch
from torch import nn

from genda.targets import register_target


@register_target
class LeNet(nn.Module):
    """Conv 3->6 k5, pool, Conv 6->16 k5, pool, FC 256->128->64->10, ReLU. x: (B, C, 28, 28)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
