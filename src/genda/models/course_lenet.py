"""The network inside the course's `Classifier.pth`, with the course's parameter names.

The file is `{"state_dict": {conv1.weight, conv1.bias, conv2.*, fc1.*, fc2.*, fc3.*}}`: conv 3->6 k5,
ReLU, 2x2 max-pool, conv 6->16 k5, ReLU, 2x2 max-pool, flatten (C, H, W), FC 256->128->64->10 with
ReLU. Input: 28x28 RGB normalised with mean = std = 0.5 per channel ((x/255 - 0.5) / 0.5).
No config names it, so it is not on the `_target_` allow-list: only `genda.metrics.accuracy` builds it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# the exact keys of the course's state dict, in its order
COURSE_KEYS = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
               "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias")


class CourseLeNet(nn.Module):
    """x: (B, 3, 28, 28), course-normalised -> logits (B, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def course_normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float as the course's ToTensor() + Normalize(0.5, 0.5)."""
    return (images.to(torch.float32) / 255.0 - 0.5) / 0.5
