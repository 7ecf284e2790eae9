"""Config and command-line checks that run before anything is written: each bad value ends in one
`ConfigError` naming the key and what to do (never a traceback from deep inside a run).

`check_config(cfg, args)` runs in `python -m genda`'s precheck (before Hydra creates the run dir)
and again when the Trainer reads its config; `check_device` serves predict, sample and evaluate.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from genda.errors import ConfigError

PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "transformer-engine",
              "transformer-engine-float16", "64", "32", "16", "bf16")
ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps")
# keys a resume may change: the budget, how often things happen, where logs go, not what is learnt
# (trainer.fault: in the config.yaml of runs made before fault injection moved to tests/faults.py)
RESUME_MAY_CHANGE = ("trainer.max_steps", "trainer.max_minutes", "trainer.log_every", "trainer.val_every",
                     "trainer.sample_every", "trainer.checkpoint_every", "trainer.resume", "trainer.progress",
                     "trainer.fault", "logger", "group", "tags", "paths.root_dir", "paths.output_dir",
                     "paths.cache_dir")
_NO_RESUME = (None, False, "null", "none", "None")


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def _whole(cfg: Any, key: str, low: int, hint: str, optional: bool = False) -> int | None:
    v = OmegaConf.select(cfg, key) if isinstance(cfg, DictConfig) else _get(cfg, key)
    if optional and v in (None, False):
        return None
    ok = (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    if not ok or int(v) < low:
        raise ConfigError(f"config key '{key}' = {_show(v)}: {hint}")
    return int(v)


def _get(d: dict, key: str) -> Any:
    for part in key.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _keys_named(node: Any, name: str, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            path = f"{where}.{k}"
            if k == name:
                yield path, v
            yield from _keys_named(v, name, path)


def _positive(key: str, v: Any) -> None:
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise ConfigError(f"config key '{key}' = {_show(v)}: must be a positive number, e.g. {key}=1e-3")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def check_device(name: str | None, flag: str = "--device") -> str | None:
    """A torch device string that exists on this machine, or one ConfigError naming the flag."""
    if name is None:
        return None
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{flag} {name!r} is not a device: use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not cuda_available():
            raise ConfigError(f"{flag} {name}: no CUDA GPU is visible on this machine; use {flag} cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{flag} {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not _mps_available():
        raise ConfigError(f"{flag} {name}: MPS is not available on this machine; use {flag} cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{flag} {name!r}: use cpu, cuda, cuda:N or mps")
    return name


def check_run_dir(path: str | os.PathLike, key: str = "hydra.run.dir") -> None:
    """The run dir is (or can become) a folder this process can write into; nothing is created."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{key}={p} is an existing file, not a folder; pick another {key}")
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{key}={p}: {probe} is a file, so the run dir cannot be created; pick another {key}")
    try:  # os.access says yes to root on a read-only file system: try a real (anonymous) file
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise ConfigError(f"{key}={p}: cannot write into {probe} ({e.strerror}); pick a writable {key}") from None


def check_trainer(t: dict | DictConfig) -> None:
    """The trainer's numbers and hardware (resolved values)."""
    t = OmegaConf.to_container(t, resolve=True) if isinstance(t, DictConfig) else t
    c = {"trainer": t}
    _whole(c, "trainer.max_steps", 0, "must be a whole number of steps >= 1 (0 only evaluates or samples "
           "the checkpoint given by trainer.resume=RUN_DIR_OR_CKPT)")
    _whole(c, "trainer.log_every", 1, "must be a whole number >= 1 (log every N steps)")
    for k in ("val_every", "sample_every", "checkpoint_every"):
        _whole(c, f"trainer.{k}", 0, "must be a whole number >= 0 (0 or null: never)", optional=True)
    for k in ("max_minutes", "grad_clip"):
        _positive(f"trainer.{k}", t.get(k))
    _whole(c, "trainer.num_nodes", 1, "must be a whole number >= 1", optional=True)
    devices = t.get("devices")
    if not (devices == "auto" or isinstance(devices, list) or devices == -1
            or (isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1)):
        raise ConfigError(f"config key 'trainer.devices' = {_show(devices)}: use a count >= 1, -1 or auto")
    precision = t.get("precision")
    if str(precision) not in PRECISIONS or isinstance(precision, bool | float):
        raise ConfigError(f"config key 'trainer.precision' = {_show(precision)}: use one of "
                          f"{', '.join(p for p in PRECISIONS if '-' in p and 'engine' not in p)}")
    acc = t.get("accelerator")
    if acc not in ACCELERATORS:
        raise ConfigError(f"config key 'trainer.accelerator' = {_show(acc)}: use one of {', '.join(ACCELERATORS)}")
    if acc in ("cuda", "gpu") and not cuda_available():
        raise ConfigError(f"trainer.accelerator={acc}: no CUDA GPU is visible on this machine "
                          f"(use trainer.accelerator=cpu or auto)")
    if acc == "mps" and not _mps_available():
        raise ConfigError("trainer.accelerator=mps: MPS is not available here (use trainer.accelerator=cpu or auto)")


def check_data_and_model(cfg: dict) -> None:
    for key, v in _keys_named(cfg.get("data") or {}, "batch_size", "data"):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"config key '{key}' = {_show(v)}: must be a whole number >= 1 (images per batch)")
    for key, v in _keys_named(cfg.get("data") or {}, "val_batch_size", "data"):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"config key '{key}' = {_show(v)}: must be a whole number >= 1 or null")
    for key, v in _keys_named(cfg.get("model") or {}, "lr", "model"):
        _positive(key, v)


def resume_run_dir(resume: Any, run_dir: Path | None) -> Path | None:
    """The run dir a resume continues (None: no resume). A missing path is one ConfigError."""
    if resume in _NO_RESUME:
        return None
    if resume == "auto":
        return run_dir if run_dir is not None and (run_dir / "checkpoints" / "last.ckpt").is_file() else None
    p = Path(str(resume))
    if not p.exists():
        raise ConfigError(f"trainer.resume={p}: no such run dir or checkpoint")
    if p.is_file():
        p = p.parent
    return p.parent if p.name == "checkpoints" else p


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def config_diff(saved: dict, now: dict) -> list[tuple[str, Any, Any]]:
    """(key, saved, now) for every key a resume may not change."""
    a, b = _flat(saved), _flat(now)
    out = []
    for k in sorted(set(a) | set(b)):
        if any(k == m or k.startswith(m + ".") for m in RESUME_MAY_CHANGE):
            continue
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            out.append((k, a.get(k, "<absent>"), b.get(k, "<absent>")))
    return out


def check_resume_config(now: dict, run_dir: Path) -> None:
    """Resuming `run_dir` in place: the config must be the saved one but for budget keys."""
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        return
    try:
        saved = OmegaConf.to_container(OmegaConf.load(saved_path))
    except Exception:
        raise ConfigError(f"{saved_path}: unreadable; cannot check that the resume uses the run's config") from None
    diff = config_diff(saved, now)
    if diff:
        k, a, b = diff[0]
        more = f" (and {len(diff) - 1} more key(s))" if len(diff) > 1 else ""
        hint = run_dir / ".hydra" / "overrides.yaml"
        raise ConfigError(f"trainer.resume: this config differs from {saved_path} at '{k}' (saved {_show(a)}, "
                          f"now {_show(b)}){more}; resume with the run's own overrides"
                          f"{f' (listed in {hint})' if hint.is_file() else ''} or pick a new hydra.run.dir")


def _arg(args: list[str], key: str) -> str | None:
    found = None
    for a in args:
        if a.lstrip("+").startswith(f"{key}="):
            found = a.split("=", 1)[1]
    return found


def plain(cfg: DictConfig) -> dict:
    """The resolved config as saved in a run dir's config.yaml (YAML round trip)."""
    return OmegaConf.to_container(OmegaConf.create(OmegaConf.to_yaml(cfg, resolve=True)))


def check_config(cfg: DictConfig, args: list[str] | None = None, run_dir: str | os.PathLike | None = None) -> None:
    """Everything `python -m genda` can check before it writes anything (see module doc).

    `args`: the raw command-line overrides (for hydra.run.dir); `run_dir`: the run dir when known."""
    now = plain(cfg)
    check_trainer(now.get("trainer") or {})
    check_data_and_model(now)
    if run_dir is None and args:
        run_dir = _arg(args, "hydra.run.dir")
        if run_dir is not None:
            check_run_dir(run_dir)
    run_dir = Path(run_dir) if run_dir is not None else None
    resume = now["trainer"].get("resume")
    source = resume_run_dir(resume, run_dir)
    if now["trainer"].get("max_steps") == 0 and source is None:
        raise ConfigError("trainer.max_steps=0 only evaluates or samples a trained run: give its checkpoint "
                          "with trainer.resume=RUN_DIR_OR_CKPT, or train with trainer.max_steps>=1")
    if source is not None and run_dir is not None and source.resolve() == run_dir.resolve():
        check_resume_config(now, run_dir)
