"""The generic loop, checkpoints, EMA, logging and artefacts."""

from genda.train.loop import Trainer

__all__ = ["Trainer"]
