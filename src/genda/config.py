"""Config helpers: the per-scale resolver, the `_target_` allow-list, safe instantiate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from genda.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
ALLOWED_TARGET_PREFIXES = ("genda.", "torch.", "torchvision.")
SCALES = ("smoke", "cpu", "full")


def _by_scale(smoke: Any, cpu: Any, full: Any, *, _root_: DictConfig) -> Any:
    """`${s:SMOKE,CPU,FULL}` picks the value for the selected `scale.name`."""
    name = OmegaConf.select(_root_, "scale.name", default="cpu")
    if name not in SCALES:
        raise ConfigError(f"scale={name!r}: use one of {', '.join(SCALES)}")
    return {"smoke": smoke, "cpu": cpu, "full": full}[name]


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("s"):
        OmegaConf.register_new_resolver("s", _by_scale)


register_resolvers()


def check_targets(cfg: Any, where: str = "") -> None:
    """Refuse any `_target_` that is not a genda, torch or torchvision callable."""
    if isinstance(cfg, DictConfig):
        for key in cfg.keys():
            path = f"{where}.{key}" if where else str(key)
            if key == "_target_":
                target = cfg[key]
                if not isinstance(target, str) or not target.startswith(ALLOWED_TARGET_PREFIXES):
                    raise ConfigError(
                        f"config key '{path}' = {target!r} is not allowed: _target_ must name a "
                        f"genda, torch or torchvision callable")
            else:
                node = cfg._get_node(key)
                if isinstance(node, DictConfig | ListConfig):
                    check_targets(node, path)
    elif isinstance(cfg, ListConfig):
        for i, item in enumerate(cfg):
            check_targets(item, f"{where}[{i}]")


def build(cfg: DictConfig, key: str, **kwargs: Any) -> Any:
    """Instantiate `cfg[key]` after checking its targets; errors name the key."""
    node = OmegaConf.select(cfg, key)
    if node is None:
        raise ConfigError(f"config key '{key}' is missing")
    check_targets(node, key)
    try:
        return instantiate(node, **kwargs)
    except Exception as e:  # hydra wraps constructor errors; keep one line naming the key
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        root = e
        while root.__cause__ is not None:
            root = root.__cause__
        if root is not e and str(root):
            msg = f"{msg}: {str(root).splitlines()[0]}"
        raise ConfigError(f"cannot build '{key}': {msg}") from e
