"""Exponential moving averages of chosen networks, swapped in for evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EMA:
    """EMA copies of `nets` (name -> module, decay) built on torch's AveragedModel."""

    def __init__(self, nets: dict[str, tuple[nn.Module, float]]) -> None:
        self.live = {k: m for k, (m, _) in nets.items()}
        self.avg = {k: AveragedModel(m, multi_avg_fn=get_ema_multi_avg_fn(d), use_buffers=True)
                    for k, (m, d) in nets.items()}

    def update(self) -> None:
        for k, m in self.live.items():
            self.avg[k].update_parameters(m)

    def state_dict(self) -> dict:
        return {k: a.module.state_dict() for k, a in self.avg.items()} | {
            f"{k}.n_averaged": a.n_averaged for k, a in self.avg.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, a in self.avg.items():
            a.module.load_state_dict(state[k])
            a.n_averaged.copy_(state[f"{k}.n_averaged"])

    @contextmanager
    def swapped(self) -> Iterator[None]:
        """Run the block with the EMA weights in the live networks, then restore them."""
        saved = {k: {n: t.detach().clone() for n, t in m.state_dict().items()} for k, m in self.live.items()}
        try:
            with torch.no_grad():
                for k, m in self.live.items():
                    m.load_state_dict(self.avg[k].module.state_dict())
            yield
        finally:
            with torch.no_grad():
                for k, m in self.live.items():
                    m.load_state_dict(saved[k])
