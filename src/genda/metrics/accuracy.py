"""Digit accuracy the way the course scores generated digits: with genda's own LeNet evaluator (a
genda classifier checkpoint) or with the course's `Classifier.pth` (its LeNet, its preprocessing).

A metric only loads evaluators. genda's cached LeNet for a domain is trained by an explicit step,
`python -m genda.evaluate train-evaluator --domain D [--scale S]` (genda.evaluate), into
`evaluator_dir(...)`, where `DigitEvaluator.for_domain` finds it."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from genda.config import build, stored_config
from genda.data.folders import decode, png_names
from genda.errors import CheckpointError, ConfigError, DataError
from genda.kernel import CKPT_FORMAT, file_lock, load_module_state, read_torch_file
from genda.models.course_lenet import COURSE_KEYS, CourseLeNet, course_normalize

EVALUATOR_RECIPE = "lenet-v1"  # bump when the evaluator's training recipe changes
EVALUATOR_EXPERIMENT = "classifier_mnist"  # the recipe: this experiment with data.domain=<domain>


class EvaluatorNotTrained(ConfigError):
    """The cached LeNet evaluator of a domain is not there (or unfinished); `command` trains it."""

    def __init__(self, message: str, run_dir: Path, command: str) -> None:
        super().__init__(message)
        self.run_dir, self.command = run_dir, command


def evaluator_dir(domain: str, cache_dir: str | os.PathLike, scale: str = "cpu",
                  data_dir: str | None = None) -> Path:
    """The run dir of `domain`'s LeNet evaluator in the cache, one per recipe, domain, scale and
    data folder: written by `python -m genda.evaluate train-evaluator`, read by `for_domain`."""
    key = hashlib.sha256(f"{EVALUATOR_RECIPE}|{domain}|{scale}|{data_dir}".encode()).hexdigest()[:12]
    return Path(cache_dir) / "evaluators" / f"lenet_{domain}_{scale}_{key}"


def evaluator_lock(run_dir: Path) -> Path:
    """The lock file held while an evaluator trains (and while a metric checks for it)."""
    return run_dir.parent / f".{run_dir.name}.lock"


def evaluator_trained(run_dir: Path) -> bool:
    """Whether the evaluator run in `run_dir` finished (status complete, best.ckpt written)."""
    status = run_dir / "status.json"
    try:
        done = json.loads(status.read_text()).get("state") == "complete"
    except (OSError, ValueError, AttributeError):
        return False
    return done and (run_dir / "checkpoints" / "best.ckpt").is_file()


def train_evaluator_command(domain: str, scale: str = "cpu", data_dir: str | None = None,
                            cache_dir: str | os.PathLike | None = None) -> str:
    """The command that trains `domain`'s evaluator where `for_domain` will look for it."""
    from genda.data.domain import default_cache_dir

    parts = ["python", "-m", "genda.evaluate", "train-evaluator", "--domain", domain, "--scale", scale]
    if data_dir:
        parts.append(f"paths.data_dir={data_dir}")
    if cache_dir is not None and Path(cache_dir) != default_cache_dir():
        parts.append(f"paths.cache_dir={cache_dir}")
    return shlex.join(parts)


class DigitEvaluator:
    """A trained LeNet. `accuracy(images, labels)`: images (B, C, H, W) uint8, or float in [-1, 1]
    (resized to 28x28, grey repeated to RGB).

    preprocess: 'tanh' (genda's LeNet, trained on [-1, 1] inputs), 'affine' (a genda LeNet trained
    with data.normalize unit/meanstd: pixels/255 * scale + shift per channel) or 'course' (the
    course's `Classifier.pth`: uint8 pixels -> (x/255 - 0.5)/0.5, float inputs quantised to the
    uint8 a PNG would hold first, as the course's script reads saved PNGs)."""

    def __init__(self, net: torch.nn.Module, source: str, preprocess: str = "tanh",
                 affine: tuple[list[float], list[float]] | None = None) -> None:
        if preprocess not in ("tanh", "course", "affine"):
            raise ValueError(f"preprocess={preprocess!r}: use 'tanh', 'affine' or 'course'")
        self.net, self.source, self.preprocess = net.eval(), source, preprocess
        scale, shift = affine or ([2.0], [-1.0])
        self._affine = torch.tensor(scale).view(-1, 1, 1), torch.tensor(shift).view(-1, 1, 1)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> DigitEvaluator:
        """A genda classifier checkpoint (has `format`) or the course's `Classifier.pth` (a dict with
        `state_dict` holding exactly conv1.weight ... fc3.bias, or that state dict bare). Loaded with
        weights_only=True; from the course file nothing is built but the fixed `CourseLeNet`."""
        path, raw, course = read_classifier(path)
        if course is not None:
            net = CourseLeNet()
            load_module_state(net, course, "course LeNet", str(path))
            return cls(net.to(device), source=str(path), preprocess="course")
        cfg = stored_config(raw["config"], str(path))  # allow-list checked before anything is built
        if not str(OmegaConf.select(cfg, "model._target_", default="")).endswith("ClassifierTask"):
            raise CheckpointError(f"{path} is not a classifier run (model is {cfg.model.get('_target_')})")
        net = build(cfg, "model.net")
        load_module_state(net, raw["modules"]["net"], "net", str(path))
        normalize = str(OmegaConf.select(cfg, "data.normalize", default="tanh"))
        if normalize == "tanh":
            return cls(net.to(device), source=str(path))
        if normalize == "unit":
            return cls(net.to(device), source=str(path), preprocess="affine", affine=([1.0], [0.0]))
        mean = [float(v) for v in (OmegaConf.select(cfg, "data.mean", default=None) or [0.5])]
        std = [float(v) for v in (OmegaConf.select(cfg, "data.std", default=None) or [0.5])]
        m, sd = torch.tensor(mean), torch.tensor(std)
        return cls(net.to(device), source=str(path), preprocess="affine",
                   affine=((1.0 / sd).tolist(), (-m / sd).tolist()))

    @classmethod
    def for_domain(cls, domain: str, cache_dir: str | os.PathLike, device: str | torch.device = "cpu",
                   scale: str = "cpu", data_dir: str | None = None) -> DigitEvaluator:
        """The evaluator trained on `domain`'s real training split, from the cache. Loads only:
        a missing one is EvaluatorNotTrained naming the `python -m genda.evaluate train-evaluator`
        command that trains it (a training in progress is waited for)."""
        run_dir = evaluator_dir(domain, cache_dir, scale, data_dir)
        with file_lock(evaluator_lock(run_dir)):  # held by train-evaluator while it trains
            ready = evaluator_trained(run_dir)
        if not ready:
            command = train_evaluator_command(domain, scale, data_dir, cache_dir)
            raise EvaluatorNotTrained(f"no trained LeNet evaluator for domain {domain!r} at scale {scale} "
                                      f"(looked in {run_dir}); train it once with `{command}`", run_dir, command)
        return cls.from_checkpoint(run_dir / "checkpoints" / "best.ckpt", device)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        dev = next(self.net.parameters()).device
        out = []
        for chunk in images.split(batch_size):
            x = chunk.to(dev)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if x.dtype == torch.uint8:
                if x.shape[-2:] != (28, 28):
                    from torchvision.transforms import v2

                    x = v2.Resize((28, 28), antialias=True)(x)  # as fit_images
                if self.preprocess == "course":
                    x = course_normalize(x)
                elif self.preprocess == "affine":
                    x = x.float() / 255.0 * self._affine[0].to(dev) + self._affine[1].to(dev)
                else:
                    x = x.float() / 127.5 - 1.0
            else:
                x = x.float()
                if x.shape[-2:] != (28, 28):
                    x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
                if self.preprocess == "course":  # the uint8 PNG the course's script would read
                    x = course_normalize(((x + 1.0) * 127.5).round().clamp(0, 255))
                elif self.preprocess == "affine":
                    x = (x + 1.0) / 2.0 * self._affine[0].to(dev) + self._affine[1].to(dev)
            out.append(self.net(x).argmax(1).cpu())
        return torch.cat(out)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.predict(images) == labels.cpu()).float().mean())


def read_classifier(path: str | os.PathLike) -> tuple[Path, dict, dict[str, torch.Tensor] | None]:
    """Load a classifier file (weights_only) -> (path, contents, the course LeNet's state dict or None
    for a genda checkpoint); anything else is one CheckpointError naming the file."""
    path, raw = read_torch_file(path, what="classifier",
                                hint="truncated, not a torch file, or not plain tensors?")
    course = course_state_dict(raw)
    if course is not None:
        return path, raw, course
    if not (isinstance(raw, dict) and "format" in raw):
        raise CheckpointError(f"{path}: neither a genda checkpoint (no 'format' key) nor the course's "
                              f"Classifier.pth (a dict with 'state_dict' holding exactly "
                              f"{COURSE_KEYS[0]} ... {COURSE_KEYS[-1]}); found {_describe(raw)}")
    if raw["format"] != CKPT_FORMAT:
        raise CheckpointError(f"{path} is not a genda checkpoint (format {CKPT_FORMAT} expected)")
    return path, raw, None


def check_classifier(path: str | os.PathLike) -> str:
    """Check a classifier file before training ('course' or 'genda'): the course layout's shapes,
    or a genda checkpoint's stored config against the allow-list. Builds nothing from the file."""
    path, raw, course = read_classifier(path)
    if course is not None:
        load_module_state(CourseLeNet(), course, "course LeNet", str(path))
        return "course"
    stored_config(raw["config"], str(path))
    return "genda"


def course_state_dict(raw: object) -> dict[str, torch.Tensor] | None:
    """The course LeNet's state dict when `raw` (a loaded file) is in the course's layout, else None."""
    if isinstance(raw, dict) and "format" not in raw and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if (isinstance(raw, dict) and set(raw) == set(COURSE_KEYS)
            and all(isinstance(v, torch.Tensor) for v in raw.values())):
        return dict(raw)
    return None


def _describe(raw: object) -> str:
    if isinstance(raw, dict):
        keys = [str(k) for k in raw][:4]
        return f"a dict with keys {keys}{' ...' if len(raw) > 4 else ''}" if raw else "an empty dict"
    return f"a {type(raw).__name__}"


def read_labelled_folder(folder: str | os.PathLike, uint8: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """PNGs named `<label>_<nnn>.png` (label = first character, as the course script) ->
    images (N, C, H, W) in [-1, 1] (uint8=True: the decoded uint8 pixels), labels, names."""
    folder = Path(folder)
    names = png_names(folder)
    bad = [n for n in names if not n[0].isdigit()]
    if bad:
        raise DataError(f"{folder / bad[0]}: name must start with its digit label, e.g. 3_001.png")
    x = decode([folder / n for n in names])
    x = x if uint8 else x.float() / 127.5 - 1.0
    return x, torch.tensor([int(n[0]) for n in names]), names


def accuracy_of_folder(folder: str | os.PathLike, ckpt: str | os.PathLike,
                       device: str | torch.device = "cpu") -> dict:
    """Course script: accuracy of a LeNet checkpoint on a folder of `<label>_<nnn>.png`."""
    x, y, names = read_labelled_folder(folder)
    ev = DigitEvaluator.from_checkpoint(ckpt, device)
    return {"accuracy": ev.accuracy(x, y), "n": len(names), "classifier": str(ckpt)}
