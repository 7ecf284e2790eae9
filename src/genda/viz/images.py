"""Float image tensors -> [0, 1] for saving: linear from a value range, or per-image min-max (the
course's way of saving DDIM outputs). The one implementation the artefact writer and the DDIM task
share."""

from __future__ import annotations

import torch


def to_unit(images: torch.Tensor, value_range=(-1.0, 1.0), normalize: str = "clamp") -> torch.Tensor:
    """Float images -> [0, 1] on the CPU. 'clamp' maps value_range linearly; 'minmax' rescales each
    image by its own min and max over all channels."""
    x = images.detach().float().cpu()
    if normalize == "minmax":
        lo = x.flatten(1).min(1).values.view(-1, 1, 1, 1)
        hi = x.flatten(1).max(1).values.view(-1, 1, 1, 1)
        return (x - lo) / (hi - lo).clamp_min(1e-12)
    lo, hi = value_range
    return ((x - lo) / (hi - lo)).clamp(0, 1)
