"""The `_target_` allow-list: the exact callables a genda config may name.

A Hydra `_target_` is code: whatever it names is imported and called. genda therefore builds
nothing whose `_target_` is not on this list, wherever the config comes from (command line,
experiment file, a checkpoint's stored config, a report manifest, `hydra.callbacks`).

- genda's own classes register themselves where they are defined, with `@register_target`.
- A short named list of torch / torchvision callables (`TORCH_TARGETS`).
- Hydra's launchers and sweepers, accepted only under `hydra.launcher` / `hydra.sweeper`.
- Your own, deliberately: `GENDA_EXTRA_TARGETS="mypkg.nets.MyNet,mypkg.nets.Other"` in the
  environment, or `genda.targets.allow("mypkg.nets.MyNet")` from Python. Nothing read from a
  file (config, checkpoint, manifest) can extend the list.

This module imports nothing heavy: model files import it to register themselves.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")

ENV_VAR = "GENDA_EXTRA_TARGETS"

# torch / torchvision callables a config may name (exact strings).
TORCH_TARGETS: frozenset[str] = frozenset({
    # optimisers
    "torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD", "torch.optim.RMSprop",
    "torch.optim.Adagrad",
    # LR schedulers
    "torch.optim.lr_scheduler.StepLR", "torch.optim.lr_scheduler.MultiStepLR",
    "torch.optim.lr_scheduler.ExponentialLR", "torch.optim.lr_scheduler.CosineAnnealingLR",
    "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts", "torch.optim.lr_scheduler.LinearLR",
    "torch.optim.lr_scheduler.OneCycleLR",
    # nn layers
    "torch.nn.ReLU", "torch.nn.LeakyReLU", "torch.nn.SiLU", "torch.nn.GELU", "torch.nn.ELU",
    "torch.nn.Tanh", "torch.nn.Sigmoid", "torch.nn.Identity", "torch.nn.Dropout",
    "torch.nn.Dropout2d", "torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", "torch.nn.GroupNorm",
    "torch.nn.LayerNorm", "torch.nn.InstanceNorm2d", "torch.nn.Linear", "torch.nn.Conv2d",
    # torchvision transforms
    "torchvision.transforms.v2.Compose", "torchvision.transforms.v2.Resize",
    "torchvision.transforms.v2.CenterCrop", "torchvision.transforms.v2.RandomCrop",
    "torchvision.transforms.v2.RandomHorizontalFlip", "torchvision.transforms.v2.Normalize",
    "torchvision.transforms.v2.Grayscale", "torchvision.transforms.v2.RGB",
    "torchvision.transforms.Compose", "torchvision.transforms.Resize",
    "torchvision.transforms.CenterCrop", "torchvision.transforms.RandomCrop",
    "torchvision.transforms.RandomHorizontalFlip", "torchvision.transforms.Normalize",
    "torchvision.transforms.Grayscale", "torchvision.transforms.ToTensor",
})

# Hydra plugins, accepted only at `hydra.launcher._target_` / `hydra.sweeper._target_` /
# `hydra.callbacks.*._target_` (the conf/hydra/launcher files and Hydra's defaults).
HYDRA_TARGETS: dict[str, frozenset[str]] = {
    "launcher": frozenset({
        "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
        "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
    }),
    "sweeper": frozenset({
        "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
        # conf/hparams_search: the Optuna sweeper and its samplers
        "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
        "optuna.samplers.TPESampler", "optuna.samplers.RandomSampler",
        "optuna.samplers.CmaEsSampler", "optuna.samplers.NSGAIISampler",
    }),
    "callbacks": frozenset({
        "genda.report.sweep.SweepTable",  # conf/config.yaml: the sweep table after `-m`
        "hydra.experimental.callbacks.LogJobReturnCallback",
    }),
}

# Hydra's logging configs go to logging.config.dictConfig, whose `class` and `()` keys are
# callables too: only these.
LOGGING_CLASSES: frozenset[str] = frozenset({"logging.StreamHandler", "logging.FileHandler"})
LOGGING_EXT: frozenset[str] = frozenset({"ext://sys.stdout", "ext://sys.stderr"})

# Packages whose modules define registered genda targets (imported on demand to register).
GENDA_PACKAGES = ("genda.models.", "genda.tasks.", "genda.data.", "genda.metrics.", "genda.diffusion.")

_REGISTERED: set[str] = set()
_ALLOWED_BY_USER: set[str] = set()
_DOTTED = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")


def register_target(obj: T) -> T:
    """Class decorator: allow configs to name `obj` by its exact dotted path."""
    _REGISTERED.add(f"{obj.__module__}.{obj.__qualname__}")  # type: ignore[attr-defined]
    return obj


def allow(*names: str) -> None:
    """Allow more exact `_target_` strings (your own networks), for this process."""
    for name in names:
        if not isinstance(name, str) or not _DOTTED.fullmatch(name):
            raise ValueError(f"allow({name!r}): give an exact dotted path like 'mypkg.nets.MyNet'")
        _ALLOWED_BY_USER.add(name)


def extra_targets() -> set[str]:
    """`allow(...)` names plus those of the GENDA_EXTRA_TARGETS environment variable."""
    env = {n.strip() for n in os.environ.get(ENV_VAR, "").replace(";", ",").split(",") if n.strip()}
    return _ALLOWED_BY_USER | env


def _import_owner(name: str) -> None:
    """Import the genda module that would define `name`, so its registrations run."""
    module = name.rsplit(".", 1)[0]
    if not _DOTTED.fullmatch(module) or any(p.startswith("_") for p in module.split(".")):
        return
    try:
        importlib.import_module(module)
    except ImportError:
        pass


def genda_targets() -> set[str]:
    """genda's registered classes (every module of the target packages imported)."""
    import pkgutil

    for pkg in GENDA_PACKAGES:
        mod = importlib.import_module(pkg[:-1])
        for info in pkgutil.iter_modules(mod.__path__, pkg):
            if not info.name.rsplit(".", 1)[1].startswith("_"):
                importlib.import_module(info.name)
    return set(_REGISTERED)


def is_allowed(name: object, scope: str | None = None) -> bool:
    """Whether `name` is an allowed `_target_`. scope: None (a genda config node), or one of
    'launcher', 'sweeper', 'callbacks' (under `hydra.`), or 'hydra' (elsewhere under hydra)."""
    if not isinstance(name, str):
        return False
    if name in extra_targets():
        return True
    if scope is not None:
        return name in HYDRA_TARGETS.get(scope, frozenset())
    if name in TORCH_TARGETS:
        return True
    if name.startswith(GENDA_PACKAGES) and name not in _REGISTERED:
        _import_owner(name)
    return name in _REGISTERED


def all_allowed() -> Iterable[str]:
    """Every allowed name outside the hydra node (for docs and tests)."""
    return sorted(genda_targets() | TORCH_TARGETS | extra_targets())
