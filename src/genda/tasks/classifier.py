"""Supervised classification (the course's LeNet; genda's digit evaluator)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from genda.targets import register_target
from genda.tasks.base import StepContext, Task


@register_target
class ClassifierTask(Task):
    """Cross-entropy on {"image", "label"} batches; validation accuracy picks the best checkpoint."""

    monitor = "acc"
    monitor_mode = "max"

    def __init__(self, net: nn.Module, optimizer: Callable, lr_schedule: str = "cosine") -> None:
        super().__init__()
        self.net = net
        self._optimizer, self.lr_schedule = optimizer, lr_schedule

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": self._optimizer(self.net.parameters())}

    def configure_schedulers(self, optimizers, max_steps):
        if self.lr_schedule == "none":
            return {}
        lam = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, max_steps) / max_steps))  # noqa: E731
        return {"net": torch.optim.lr_scheduler.LambdaLR(optimizers["net"], lam)}

    def training_step(self, batch: dict, ctx: StepContext) -> dict:
        logits = self.net(batch["image"])
        loss = F.cross_entropy(logits, batch["label"])
        ctx.update("net", loss)
        return {"loss": loss, "acc": (logits.argmax(1) == batch["label"]).float().mean()}

    @torch.no_grad()
    def validate(self, ctx: StepContext) -> dict[str, float]:
        correct = total = 0
        loss = 0.0
        for b in ctx.batches("val"):
            logits = self.net(b["image"])
            loss += float(F.cross_entropy(logits, b["label"], reduction="sum"))
            correct += int((logits.argmax(1) == b["label"]).sum())
            total += len(b["label"])
        return {"acc": correct / total, "loss": loss / total, "n": total}

    @torch.no_grad()
    def finalize(self, ctx: StepContext) -> dict[str, float]:
        metrics = self.validate(ctx)
        ctx.out.json("eval", {**metrics, "split": "val", "data": ctx.data.info})
        return metrics

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).argmax(1)

    def summaries(self) -> dict[str, str]:
        from genda.viz.summary import summarize

        return {"net": summarize(self.net, (1, 3, 28, 28))}
