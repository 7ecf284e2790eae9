"""Run logging: metrics.jsonl (read by tests and the report) and Weights & Biases."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch


def _scalar(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        v = v.detach().float().item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class RunLogger:
    """Writes one JSON object per log event to `<run_dir>/metrics.jsonl` and mirrors it to W&B.

    Only rank 0 writes. W&B mode: offline (default, no account needed), online, disabled."""

    def __init__(self, run_dir: Path, config: dict, mode: str = "offline", project: str = "genda",
                 name: str | None = None, group: str | None = None, tags: list[str] | None = None,
                 entity: str | None = None, enabled: bool = True, job_type: str = "train",
                 run: dict | None = None, log_checkpoints: bool = False,
                 system_metrics: bool = False) -> None:
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.run = dict(run or {})  # what the run is (experiment, scale, seed, overrides, data)
        self._wandb = None
        self.log_checkpoints = bool(log_checkpoints)
        self._t0 = time.time()
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.run_dir / "metrics.jsonl", "a", buffering=1)  # noqa: SIM115
        if mode not in ("offline", "online", "disabled"):
            from genda.errors import ConfigError
            raise ConfigError(f"logger.mode={mode!r}: use offline, online or disabled")
        if mode != "disabled":
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            self._wandb = wandb.init(
                mode=mode, dir=str(self.run_dir), project=project, entity=entity, name=name,
                group=group, tags=list(tags or []), config=config, reinit="finish_previous",
                job_type=job_type,
                settings=wandb.Settings(console="wrap" if system_metrics else "off",
                                        x_disable_stats=not system_metrics),
            )

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if not self.enabled or not metrics:
            return
        row = {"step": int(step), "time": round(time.time() - self._t0, 3)}
        row.update({k: _scalar(v) for k, v in metrics.items()})
        self._file.write(json.dumps(row) + "\n")
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if k not in ("step", "time")}, step=int(step))

    def log_image(self, key: str, path: str, step: int, caption: str | None = None) -> None:
        """One W&B key per kind of picture (`samples`, `grid`, `tsne/class`): one panel with a
        step slider, not one panel per step."""
        if self._wandb is not None:
            import wandb

            self._wandb.log({key: wandb.Image(path, caption=caption)}, step=int(step))

    def summary(self, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: _scalar(v) for k, v in metrics.items()}
        text = json.dumps({**clean, "run": self.run} if self.run else clean, indent=2, default=str)
        (self.run_dir / "summary.json").write_text(text + "\n")
        if self._wandb is not None:
            self._wandb.summary.update(clean)

    def final_table(self, metrics: dict[str, Any], eval_files: list[Path], checkpoints: list[Path]) -> None:
        """At the end of a run: the final metrics as a W&B Table (`final`), the run's eval.json
        files saved with the run, and (logger.log_checkpoints) the checkpoints as a model Artifact."""
        if self._wandb is None:
            return
        import wandb

        rows = [[k, _scalar(v)] for k, v in metrics.items() if isinstance(_scalar(v), int | float | str)]
        self._wandb.log({"final": wandb.Table(columns=["metric", "value"], data=[[k, str(v)] for k, v in rows])})
        for f in eval_files:
            if f.is_file():
                self._wandb.save(str(f), base_path=str(self.run_dir), policy="now")
        ckpts = [c for c in checkpoints if c.is_file()]
        if self.log_checkpoints and ckpts:
            art = wandb.Artifact(f"{self._wandb.id}-model", type="model",
                                 metadata={k: v for k, v in rows})
            for c in ckpts:
                art.add_file(str(c), name=c.name)
            self._wandb.log_artifact(art, aliases=["latest"])

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """All rows of a run's metrics.jsonl."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
