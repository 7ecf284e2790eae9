"""Digit accuracy with genda's own LeNet evaluator, the way the course scores generated digits."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from genda.config import build, stored_config
from genda.data.folders import decode, png_names
from genda.errors import CheckpointError, DataError
from genda.kernel import file_lock
from genda.train import checkpoint as ckpt_io

EVALUATOR_RECIPE = "lenet-v1"  # bump when the evaluator's training recipe changes


class DigitEvaluator:
    """A trained LeNet. `accuracy(images, labels)`: images (B, 3, H, W) in [-1, 1] (resized to 28)."""

    def __init__(self, net: torch.nn.Module, source: str) -> None:
        self.net, self.source = net.eval(), source

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> DigitEvaluator:
        state = ckpt_io.load(path)
        cfg = stored_config(state["config"], str(path))  # allow-list checked before anything is built
        if not str(OmegaConf.select(cfg, "model._target_", default="")).endswith("ClassifierTask"):
            raise CheckpointError(f"{path} is not a classifier run (model is {cfg.model.get('_target_')})")
        net = build(cfg, "model.net")
        ckpt_io.load_module_state(net, state["modules"]["net"], "net", str(path))
        return cls(net.to(device), source=str(path))

    @classmethod
    def for_domain(cls, domain: str, cache_dir: str | os.PathLike, device: str | torch.device = "cpu",
                   scale: str = "cpu", data_dir: str | None = None) -> DigitEvaluator:
        """The evaluator trained on `domain`'s real training split (trained once, then cached)."""
        key = hashlib.sha256(f"{EVALUATOR_RECIPE}|{domain}|{scale}|{data_dir}".encode()).hexdigest()[:12]
        run_dir = Path(cache_dir) / "evaluators" / f"lenet_{domain}_{scale}_{key}"
        best = run_dir / "checkpoints" / "best.ckpt"
        status = run_dir / "status.json"
        with file_lock(run_dir.parent / f".{run_dir.name}.lock"):  # parallel runs: train once
            done = status.is_file() and json.loads(status.read_text()).get("state") == "complete"
            if not (best.is_file() and done):  # an interrupted training resumes from its last.ckpt
                cmd = [sys.executable, "-m", "genda", "experiment=classifier_mnist", f"data.domain={domain}",
                       f"scale={scale}", "logger.mode=disabled", "trainer.progress=false",
                       f"hydra.run.dir={run_dir}", f"paths.cache_dir={cache_dir}"]
                if data_dir:
                    cmd.append(f"paths.data_dir={data_dir}")
                print(f"[genda] training the LeNet evaluator on {domain} ({scale}) -> {run_dir}", file=sys.stderr)
                proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if proc.returncode != 0 or not best.is_file():
                    tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
                    raise DataError(f"training the evaluator for domain {domain!r} failed: {tail}")
        return cls.from_checkpoint(best, device)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        dev = next(self.net.parameters()).device
        out = []
        for chunk in images.split(batch_size):
            x = chunk.to(dev, torch.float32)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if x.shape[-1] != 28:
                x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
            out.append(self.net(x).argmax(1).cpu())
        return torch.cat(out)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.predict(images) == labels.cpu()).float().mean())


def read_labelled_folder(folder: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """PNGs named `<label>_<nnn>.png` (label = first character, as the course script) ->
    images (N, C, H, W) in [-1, 1], labels, names."""
    folder = Path(folder)
    names = png_names(folder)
    bad = [n for n in names if not n[0].isdigit()]
    if bad:
        raise DataError(f"{folder / bad[0]}: name must start with its digit label, e.g. 3_001.png")
    x = decode([folder / n for n in names]).float() / 127.5 - 1.0
    return x, torch.tensor([int(n[0]) for n in names]), names


def accuracy_of_folder(folder: str | os.PathLike, ckpt: str | os.PathLike,
                       device: str | torch.device = "cpu") -> dict:
    """Course script: accuracy of a LeNet checkpoint on a folder of `<label>_<nnn>.png`."""
    x, y, names = read_labelled_folder(folder)
    ev = DigitEvaluator.from_checkpoint(ckpt, device)
    return {"accuracy": ev.accuracy(x, y), "n": len(names), "classifier": str(ckpt)}
