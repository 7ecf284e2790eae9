"""Loading a trained run (run dir or checkpoint) back into its task, for sample/predict/evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from genda.config import build, stored_config
from genda.errors import CheckpointError
from genda.tasks.base import Task
from genda.train import checkpoint as ckpt_io


@dataclass
class LoadedRun:
    task: Task
    cfg: DictConfig
    path: Path
    step: int
    weights: str  # "EMA" or "live"


def load_run(run_or_ckpt: str | Path, device: str | torch.device = "cpu", which: str = "best") -> LoadedRun:
    """Build the run's task from its saved config and load its weights (EMA where the run kept one).

    A run dir resolves to checkpoints/best.ckpt when present (GANs collapse late), else last.ckpt."""
    p = Path(run_or_ckpt)
    if not p.exists():
        raise CheckpointError(f"no run dir or checkpoint at {p}")
    if p.is_dir():
        try:
            p = ckpt_io.resolve_in_run_dir(p, which)
        except CheckpointError:
            p = ckpt_io.resolve_in_run_dir(p, "last")
    state = ckpt_io.load(p)
    cfg = stored_config(state["config"], str(p))  # allow-list checked before anything is built
    task = build(cfg, "model")
    nets = task.networks()
    ema = state.get("ema") or {}
    for name, net in nets.items():
        src = ema.get(name, state["modules"].get(name))
        if src is None:
            raise CheckpointError(f"{p}: no weights for network '{name}'")
        ckpt_io.load_module_state(net, src, name, str(p))
    step = int(state["step"])
    on_load = getattr(task, "on_load", None)  # e.g. ADDA: which encoder classifies at this step
    if callable(on_load):
        on_load(step=step, max_steps=int(OmegaConf.select(cfg, "trainer.max_steps", default=step)))
    task.to(device).eval()
    return LoadedRun(task, cfg, p, step, "EMA" if ema else "live")


def data_module_of(cfg: DictConfig, domain: str = "target"):
    """The run's data module, unloaded (for its preprocessing): the target side of a UDA pair."""
    data = build(cfg, "data")
    return getattr(data, domain, data)


def overrides_method(task: Task, name: str) -> bool:
    return getattr(type(task), name) is not getattr(Task, name)
