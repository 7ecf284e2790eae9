"""One file per method family: how a batch becomes losses and updates."""

from genda.tasks.base import StepContext, Task

__all__ = ["StepContext", "Task"]
