"""The Trainer's checkpoint bookkeeping: what a checkpoint holds, the atomic save, and the exact
resume (networks, optimisers, schedulers, EMA, grad scaler, RNG and the data position).

`Checkpointing` is a mixin of `genda.train.loop.Trainer`; it reads the attributes `_build` sets
(task, nets, raw_optimizers, schedulers, ema, loader, fabric) and the run's step and best value.
"""

from __future__ import annotations

from pathlib import Path

from genda.errors import CheckpointError
from genda.tasks.base import Task
from genda.train import checkpoint as ckpt_io


def task_id(task: Task) -> str:
    """The task class as module.qualname: a checkpoint resumes only into the same task."""
    return f"{type(task).__module__}.{type(task).__qualname__}"


class Checkpointing:
    """save("last" | "best"), `_resume(path)` and what they read and write."""

    def _state(self) -> dict:
        return {
            "format": ckpt_io.FORMAT, "task": task_id(self.task), "step": self.step,
            "config": self._config_yaml,
            "modules": {k: n.state_dict() for k, n in self.nets.items()},
            "ema": self.ema.state_dict() if self.ema else {},
            "optimizers": {k: o.state_dict() for k, o in self.raw_optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.fabric.strategy.precision.state_dict(),  # AMP's grad scaler; {} without one
            "rng": ckpt_io.rng_state(), "data": self.loader.batch_sampler.state_dict(),
            "best": self.best, "monitor": self.task.monitor,
            "input_shape": self._input_shape,  # (C, H, W) of a training batch: what predict resizes to
        }

    def save(self, which: str = "last") -> Path:
        path = self.ckpt_dir / f"{which}.ckpt"
        if self.rank0:
            try:
                ckpt_io.save_atomic(self._state(), path)
            except OSError as e:
                kept = "the previous one is kept" if path.is_file() else "no earlier checkpoint"
                raise CheckpointError(f"cannot write checkpoint {path}: {e.strerror or e} ({kept}; free space "
                                      f"or pick another hydra.run.dir)") from None
            if which == "last":  # status.json always names the step of the last checkpoint
                self._status("running", checkpoint_step=self.step)
        self.fabric.barrier()
        return path

    def _resume_path(self) -> Path | None:
        r = self.tcfg.resume
        if r in (None, False, "null", "none"):
            return None
        if r == "auto":
            p = self.ckpt_dir / "last.ckpt"
            return p if p.is_file() else None
        p = Path(str(r))
        return ckpt_io.resolve_in_run_dir(p) if p.is_dir() else p

    def _load_weights(self, path: Path) -> None:
        """Networks (and EMA) from a checkpoint of this run, e.g. best.ckpt before finalize."""
        state = ckpt_io.load(path)
        for k, net in self.nets.items():
            ckpt_io.load_module_state(net, state["modules"][k], k, str(path))
        if self.ema:
            self.ema.load_state_dict(state["ema"])
        self._say(f"final evaluation with the weights of {path} (step {state['step']})")

    def _resume(self, path: Path) -> None:
        state = ckpt_io.load(path)
        if state["task"] != task_id(self.task):
            raise CheckpointError(f"{path} was saved by task {state['task']}, this run is {task_id(self.task)}")
        for k, net in self.nets.items():
            if k not in state["modules"]:
                raise CheckpointError(f"{path}: no weights for network '{k}' (another model?)")
            ckpt_io.load_module_state(net, state["modules"][k], k, str(path))
        for k, opt in self.raw_optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        if self.ema:
            self.ema.load_state_dict(state["ema"])
        if state["scaler"]:
            self.fabric.strategy.precision.load_state_dict(state["scaler"])
        self.loader.batch_sampler.load_state_dict(state["data"])
        self.step, self.best = int(state["step"]), state["best"]
        self._pending_rng = state["rng"]  # set after the data iterator exists (creating it draws a seed)
        self._say(f"resumed from {path} at step {self.step}")
