"""The generic training loop. It never knows which method it runs: a Task turns batches
into losses and updates; Lightning Fabric owns device, precision, compile and data parallel."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric
from lightning_fabric.utilities.apply_func import move_data_to_device
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from genda.config import build
from genda.errors import ConfigError, GendaError, Interrupted, NonFiniteLossError
from genda.tasks.base import StepContext, Task
from genda.train import checkpoint as ckpt_io
from genda.train.artifacts import RunArtifacts
from genda.train.ema import EMA
from genda.train.identity import run_identity
from genda.train.logging import RunLogger
from genda.train.resume import Checkpointing
from genda.train.validate import check_config

_log = logging.getLogger("genda")


class _Stop:
    """SIGTERM/SIGINT set a flag; the loop checkpoints at the end of the step and exits."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading_main():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class Trainer(Checkpointing):
    """Runs one task on one data module inside one run dir (checkpoints: genda.train.resume)."""

    def __init__(self, cfg: DictConfig, run_dir: str | os.PathLike) -> None:
        check_config(cfg, run_dir=run_dir)  # one ConfigError naming the key, before anything is built
        self.cfg = cfg
        # plain values: OmegaConf re-parses ${s:...} interpolations on every read (hot loop)
        self.tcfg = _Plain(OmegaConf.to_container(cfg.trainer, resolve=True))
        self._config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
        self.run_dir = Path(run_dir)
        self.fabric = Fabric(accelerator=self.tcfg.accelerator, devices=self.tcfg.devices,
                             num_nodes=self.tcfg.num_nodes, strategy=self.tcfg.strategy,
                             precision=self.tcfg.precision)
        self.fabric.launch()
        self.rank0 = self.fabric.is_global_zero
        self.fabric.seed_everything(int(cfg.seed), workers=True, verbose=False)
        if self.tcfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            # no NaN-filling of every new tensor: a debugging aid that determinism does not need
            # (torch's docs), and nearly all that deterministic mode cost the DANN CPU step (profiled)
            torch.utils.deterministic.fill_uninitialized_memory = False
        self.step, self.best = 0, None
        self._pending_rng = None
        self._input_shape: list[int] | None = None
        self.ckpt_dir = self.run_dir / "checkpoints"

    # -- building ----------------------------------------------------------------
    def _build(self) -> None:
        self.data = build(self.cfg, "data")
        self.task: Task = build(self.cfg, "model")
        if not isinstance(self.task, Task):
            raise ConfigError(f"config key 'model._target_' must build a genda Task, got {type(self.task).__name__}")
        self.task.load_initial_weights()
        self.task.to(self.fabric.device)
        self.nets = self.task.networks()
        for net in self.nets.values():
            if self.tcfg.channels_last:
                net.to(memory_format=torch.channels_last)
        self.summaries = self.task.summaries()  # before wrapping: tables show the networks themselves
        raw_opts = self.task.configure_optimizers()
        self.schedulers = self.task.configure_schedulers(raw_opts, max(1, int(self.tcfg.max_steps)))  # 0: evaluate only
        for name, net in self.nets.items():
            wrapped = torch.compile(net) if self.tcfg.compile else net
            setattr(self.task, name, self.fabric.setup_module(wrapped))
        self.optimizers = {k: self.fabric.setup_optimizers(o) for k, o in raw_opts.items()}
        self.raw_optimizers = raw_opts
        missing = [k for k in self.task.ema if k not in self.nets]
        if missing:
            raise ConfigError(f"task EMA names unknown networks {missing}; networks: {sorted(self.nets)}")
        self.ema = EMA({k: (self.nets[k], d) for k, d in self.task.ema.items()}) if self.task.ema else None
        self._first_net = next(iter(self.task.networks().values()))
        self.loader = self.data.train_loader(self.fabric.global_rank, self.fabric.world_size)

    # -- steps -------------------------------------------------------------------
    def _update(self, name: str, loss: torch.Tensor) -> None:
        if name not in self.optimizers:
            raise ConfigError(f"task updated unknown optimiser {name!r}; known: {sorted(self.optimizers)}")
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        if self.tcfg.grad_clip:
            self.fabric.clip_gradients(self._first_net, opt, max_norm=float(self.tcfg.grad_clip),
                                       error_if_nonfinite=False)
        opt.step()
        if name in self.schedulers:
            self.schedulers[name].step()
        self._finite = self._finite & torch.isfinite(loss.detach()).all()

    def _to_device(self, batch: Any) -> Any:
        if self.fabric.device.type != "cpu":  # loaders give CPU tensors: nothing to move on CPU
            batch = move_data_to_device(batch, self.fabric.device)
        if self.tcfg.channels_last:
            batch = _channels_last(batch)
        return batch

    def _batches(self, split: str = "val", domain: str | None = None):
        loader = self.data.val_loader(domain=domain, split=split) if domain else self.data.val_loader(split=split)
        for b in loader:
            yield self._to_device(b)

    def _ctx(self) -> StepContext:
        return StepContext(update=self._update, step=self.step, max_steps=int(self.tcfg.max_steps),
                           data=self.data, out=self.out, batches=self._batches,
                           log=lambda m: self.logger.log(m, self.step))

    @contextlib.contextmanager
    def _eval_mode(self):
        self.task.eval()
        with self.ema.swapped() if self.ema else contextlib.nullcontext(), torch.no_grad():
            yield
        self.task.train()

    def _check_finite(self, logs: dict) -> None:
        bad = not bool(self._finite) or any(
            isinstance(v, torch.Tensor) and not torch.isfinite(v).all() for v in logs.values())
        if bad:
            last = self.ckpt_dir / "last.ckpt"
            keep = f"last good checkpoint kept: {last}" if last.is_file() else "no checkpoint was written yet"
            raise NonFiniteLossError(f"non-finite loss by step {self.step} (lower the learning rate or "
                                     f"set trainer.grad_clip); {keep}")

    def _validate(self) -> dict:
        with self._eval_mode():
            metrics = self.task.validate(self._ctx())
        if metrics:
            self.logger.log({f"val/{k}": v for k, v in metrics.items()}, self.step)
            m = self.task.monitor
            if self.tcfg.keep_best and m and m in metrics:
                v = float(metrics[m])
                better = self.best is None or (v < self.best if self.task.monitor_mode == "min" else v > self.best)
                if better:
                    self.best = v
                    self.save("best")
        return metrics

    # -- run ---------------------------------------------------------------------
    def _say(self, msg: str) -> None:
        if self.rank0:
            print(f"[genda] {msg}", file=sys.stderr, flush=True)
            _log.info(msg)  # the Hydra job log, <run dir>/genda.log

    def _status(self, state: str, **extra: Any) -> None:
        if self.rank0:
            text = json.dumps({"state": state, "step": self.step, **extra}) + "\n"
            ckpt_io.atomic_write(self.run_dir / "status.json", lambda f: f.write(text.encode()))

    def fit(self) -> dict:
        cfg = self.cfg
        ident = run_identity(cfg)
        self.logger = RunLogger(self.run_dir, OmegaConf.to_container(cfg, resolve=True),
                                mode=cfg.logger.mode, project=cfg.logger.project,
                                name=ident["name"], group=ident["group"], tags=ident["tags"],
                                entity=cfg.logger.entity, enabled=self.rank0,
                                job_type=ident["job_type"], run=ident["run"],
                                log_checkpoints=bool(cfg.logger.get("log_checkpoints", False)),
                                system_metrics=bool(cfg.logger.get("system_metrics", False)))
        self.out = RunArtifacts(self.run_dir, self.logger, lambda: self.step, enabled=self.rank0)
        interrupted = None
        try:
            if self.rank0:  # temp files of a checkpoint write that a kill cut short
                for folder in (self.run_dir, self.ckpt_dir):
                    for tmp in ckpt_io.stale_temp_files(folder):
                        tmp.unlink(missing_ok=True)
                        self._say(f"removed {tmp}, left by an interrupted write")
            self._status("running")
            self._build()
            if self.rank0:
                (self.run_dir / "config.yaml").write_text(self._config_yaml)
                for k, text in self.summaries.items():
                    self.out.text(f"summary_{k}", text)
                self.logger.run["data"] = self.data.info
                self.logger.log({f"data/{k}": v for k, v in _flat(self.data.info).items()
                                 if isinstance(v, int | float | bool)}, 0)
            path = self._resume_path()
            if path is not None:
                self._resume(path)
                self._status("running")
            result = self._train()
            state, signum = result.pop("_state"), result.pop("_signal", None)
            self._status(state, **{k: v for k, v in result.items() if _jsonable(v)})
            if state == "interrupted":
                interrupted = Interrupted(signum, str(self.run_dir), self.step)
        except BaseException as e:
            with contextlib.suppress(OSError):  # a full disk must not hide the first error
                self._status("failed", error=str(e).splitlines()[0] if str(e) else type(e).__name__)
            if isinstance(e, OSError) and not isinstance(e, GendaError):
                where = e.filename or self.run_dir
                raise GendaError(f"cannot write {where}: {e.strerror or e} (free space or pick another "
                                 f"hydra.run.dir)") from None
            raise
        finally:
            self.logger.close()
        if interrupted is not None:
            raise interrupted
        return result

    def _train(self) -> dict:
        t = self.tcfg
        max_steps = int(t.max_steps)
        deadline = time.time() + 60 * float(t.max_minutes) if t.max_minutes else None
        self._finite = torch.tensor(True, device=self.fabric.device)
        sums: dict[str, torch.Tensor] = {}
        n_sum, seen, t_log = 0, 0, time.time()
        bar = tqdm(total=max_steps, initial=self.step, disable=not (t.progress and self.rank0),
                   dynamic_ncols=True, mininterval=1.0, file=sys.stderr, desc=str(self.cfg.name))
        it = iter(self.loader)
        if self._pending_rng is not None:
            ckpt_io.set_rng_state(self._pending_rng)
        state, stopped_by = "complete", None
        self.task.train()
        with _Stop() as stop:
            while self.step < max_steps:
                batch = self._to_device(next(it))
                if self._input_shape is None:
                    self._input_shape = _image_shape(batch)
                logs = self.task.training_step(batch, self._ctx())
                self.step += 1
                if self.ema:
                    self.ema.update()
                for k, v in logs.items():
                    v = v.detach().float() if isinstance(v, torch.Tensor) else torch.tensor(float(v))
                    sums[k] = sums.get(k, 0) + v
                n_sum += 1
                seen += _batch_size(batch)
                bar.update(1)
                if self.step % int(t.log_every) == 0 or self.step == max_steps:
                    self._check_finite(sums)
                    dt = max(1e-9, time.time() - t_log)
                    row = {f"train/{k}": float(v) / n_sum for k, v in sums.items()}
                    row["train/images_per_s"] = seen * self.fabric.world_size / dt
                    row["train/epoch"] = self.loader.batch_sampler.epoch
                    self.logger.log(row, self.step)
                    bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in row.items() if k != "train/epoch"})
                    sums, n_sum, seen, t_log = {}, 0, 0, time.time()
                if t.val_every and self.step % int(t.val_every) == 0:
                    self._validate()
                if t.sample_every and self.step % int(t.sample_every) == 0:
                    with self._eval_mode():
                        self.task.sample(self._ctx())
                over_budget = deadline is not None and time.time() > deadline
                if (t.checkpoint_every and self.step % int(t.checkpoint_every) == 0) or stop.signal or over_budget:
                    self._check_finite({})
                    self.save("last")
                if stop.signal:
                    state, stopped_by = "interrupted", signal.Signals(stop.signal).name
                    break
                if over_budget:
                    self._say(f"wall-clock budget trainer.max_minutes={t.max_minutes} reached at step {self.step}")
                    break
        bar.close()
        if state == "interrupted":
            return {"_state": state, "_signal": stop.signal, "step": self.step, "signal": stopped_by}
        self._check_finite({})
        self.save("last")
        if t.finalize_on == "best" and (self.ckpt_dir / "best.ckpt").is_file():
            self._load_weights(self.ckpt_dir / "best.ckpt")
        with self._eval_mode():
            final = self.task.finalize(self._ctx()) or {}
        self.out.write_index(self.task)  # artifacts/index.json: the task's roles -> files
        self.logger.log({f"final/{k}": v for k, v in final.items()}, self.step)
        summary = {"step": self.step, **final}
        if self.best is not None:
            summary[f"best_{self.task.monitor}"] = self.best
        self.logger.summary(summary)
        self.logger.final_table(summary, [self.run_dir / "artifacts" / "eval.json"],
                                [self.ckpt_dir / "last.ckpt", self.ckpt_dir / "best.ckpt"])
        return {"_state": state, **summary}


class _Plain(dict):
    """Resolved trainer config with attribute access (cheap in the hot loop)."""

    def __getattr__(self, key: str) -> Any:
        try:
            v = self[key]
        except KeyError:
            raise ConfigError(f"config key 'trainer.{key}' is missing") from None
        return _Plain(v) if isinstance(v, dict) else v


def _image_shape(batch: Any) -> list[int] | None:
    """(C, H, W) of a batch's images (the target side of a UDA pair)."""
    if isinstance(batch, dict):
        if isinstance(batch.get("image"), torch.Tensor) and batch["image"].ndim == 4:
            return list(batch["image"].shape[1:])
        for k in ("target", *batch):
            if isinstance(batch.get(k), dict) and (shape := _image_shape(batch[k])) is not None:
                return shape
    return None


def resume_command(run_dir: str, overrides: list[str]) -> str:
    """The command that continues an interrupted run: its own overrides, resumed in place."""
    import shlex

    keep = [o for o in overrides if not o.lstrip("+~").startswith(("trainer.resume=", "hydra.run.dir="))]
    args = [*keep, f"trainer.resume={run_dir}", f"hydra.run.dir={run_dir}"]
    return " ".join([shlex.quote(sys.executable), "-m", "genda", *map(shlex.quote, args)])


def _channels_last(batch: Any) -> Any:
    """4-D tensors of a batch in channels_last (a no-op for those already in it)."""
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.ndim == 4 else batch
    if type(batch) is dict:
        return {k: _channels_last(v) for k, v in batch.items()}
    from lightning_utilities.core.apply_func import apply_to_collection

    return apply_to_collection(batch, torch.Tensor, _channels_last)


def _batch_size(batch: Any) -> int:
    if isinstance(batch, dict):
        if "image" in batch:
            return len(batch["image"])
        return sum(_batch_size(v) for v in batch.values() if isinstance(v, dict))
    return 0


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _jsonable(v: Any) -> bool:
    return isinstance(v, int | float | str | bool) or v is None
