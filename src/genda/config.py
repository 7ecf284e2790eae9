"""Config helpers: the per-scale resolver, the `_target_` allow-list, safe instantiate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from genda.errors import ConfigError
from genda.targets import ENV_VAR, LOGGING_CLASSES, LOGGING_EXT, is_allowed


def _conf_dir() -> Path:
    """The Hydra configs: `conf/` of a source checkout (editable install), else the copy shipped
    inside the wheel as package data (`genda/conf`, see pyproject.toml)."""
    here = Path(__file__).resolve().parent
    for cand in (here.parents[1] / "conf", here / "conf"):
        if (cand / "config.yaml").is_file():
            return cand
    return here / "conf"


CONF_DIR = _conf_dir()
SCALES = ("smoke", "cpu", "full")


def _by_scale(smoke: Any, cpu: Any, full: Any, *, _root_: DictConfig) -> Any:
    """`${s:SMOKE,CPU,FULL}` picks the value for the selected `scale.name`. conf/ no longer uses
    it (per-scale values are files: conf/<group>/<name>/<scale>.yaml, see conf/config.yaml); kept
    for command-line overrides and configs written with it, e.g. `'trainer.max_steps=${s:4,200,5000}'`."""
    name = OmegaConf.select(_root_, "scale.name", default="cpu")
    if name not in SCALES:
        raise ConfigError(f"scale={name!r}: use one of {', '.join(SCALES)}")
    return {"smoke": smoke, "cpu": cpu, "full": full}[name]


def _config_groups() -> str:
    """`${genda_groups:}` (the `--help` page, conf/config.yaml): one `group: option, ...` line per
    group a user picks (conf/<group>/*.yaml). Hydra's own `$APP_CONFIG_GROUPS` also lists the
    per-scale folders (`experiment/dcgan_a: cpu, full, smoke`), which are not choices."""
    lines = []
    for group in sorted(p for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra"):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        if options:
            lines.append(f"{group.name}: {', '.join(options)}\n")
    return "".join(lines)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("s"):
        OmegaConf.register_new_resolver("s", _by_scale)
    if not OmegaConf.has_resolver("genda_groups"):
        OmegaConf.register_new_resolver("genda_groups", _config_groups)


register_resolvers()


ALLOWED_HELP = ('see "Allowed `_target_`s" in README.md; add your own with '
                f"{ENV_VAR}=pkg.module.Name")


def _refuse(path: str, target: Any, source: str | None) -> ConfigError:
    where = f"in {source}; " if source else ""
    return ConfigError(f"config key '{path}' = {target!r} is not an allowed target ({where}{ALLOWED_HELP})")


def _value(cfg: DictConfig, key: Any) -> Any:
    """The node's value, resolved when it can be (an unresolvable one is shown raw)."""
    try:
        return cfg[key]
    except Exception:
        node = cfg._get_node(key)
        return node._value() if node is not None else None


def _scope(path: str) -> str | None:
    """Which allow-list applies at `path`: None (genda's), or a hydra plugin kind."""
    if not (path == "hydra" or path.startswith(("hydra.", "hydra["))):
        return None
    parts = path.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in ("launcher", "sweeper", "callbacks") else "hydra"


# An interpolation that may stay unresolved while checking (e.g. `${hydra:job.num}` before Hydra
# runs): node references, `hydra:` and `now:` only -- none of them can build a new config node
# (`oc.create`, `oc.decode`, a resolver given a `{...}` literal can, so those must resolve).
_PLAIN_INTERPOLATION = re.compile(r"(?:\$\{(?:hydra:[\w.\[\]]+|now:[^${}\[\]]*|[\w.\[\]]+)\}|\$(?!\{)|[^$])*")


def _child(cfg: DictConfig | ListConfig, key: Any, path: str, source: str | None) -> None:
    """Check one child: a nested node, or what an interpolation resolves to."""
    node = cfg._get_node(key)
    if node is None:
        return
    if node._is_interpolation():
        try:
            value = cfg[key]
        except Exception as e:
            raw = node._value()
            if isinstance(raw, str) and _PLAIN_INTERPOLATION.fullmatch(raw):
                return
            where = f" (in {source})" if source else ""
            raise ConfigError(f"config key '{path}' = {raw!r} does not resolve, so its targets "
                              f"cannot be checked{where}: {str(e).strip().splitlines()[0]}") from e
        if isinstance(value, dict | list):  # a resolver may return plain containers
            value = OmegaConf.create(value)
        if isinstance(value, DictConfig | ListConfig):
            check_targets(value, path, source)
    elif isinstance(node, DictConfig | ListConfig):
        check_targets(node, path, source)


def check_targets(cfg: Any, where: str = "", source: str | None = None) -> None:
    """Refuse any `_target_` that is not on the allow-list (genda.targets), before anything is
    built; interpolations are followed to what they resolve to. `where`: the key path of `cfg`;
    `source`: the file it came from, for the message. Under `hydra.job_logging` /
    `hydra.hydra_logging` the logging factories (`class`, `()`, `ext://`) are checked too."""
    if isinstance(cfg, DictConfig):
        if cfg._is_none() or cfg._is_missing() or cfg._is_interpolation():
            return
        logging_node = where.startswith(("hydra.job_logging", "hydra.hydra_logging"))
        for key in cfg.keys():
            path = f"{where}.{key}" if where else str(key)
            if key == "_target_":
                target = _value(cfg, key)
                if not is_allowed(target, _scope(path)):
                    raise _refuse(path, target, source)
                continue
            _child(cfg, key, path, source)
            if logging_node and not isinstance(cfg._get_node(key), DictConfig | ListConfig):
                value = _value(cfg, key)
                if key in ("class", "()") and value not in LOGGING_CLASSES:
                    raise _refuse(path, value, source)
                if isinstance(value, str) and value.startswith("ext://") and value not in LOGGING_EXT:
                    raise _refuse(path, value, source)
    elif isinstance(cfg, ListConfig):
        if cfg._is_none() or cfg._is_missing() or cfg._is_interpolation():
            return
        for i in range(len(cfg)):
            _child(cfg, i, f"{where}[{i}]", source)


def stored_config(text: Any, source: str) -> DictConfig:
    """A config read from a file genda did not just compose (a checkpoint's, a run dir's), checked
    against the allow-list as a whole before anything is built from it. It cannot extend the
    list: only the environment and the calling code can."""
    try:
        cfg = OmegaConf.create(text)
    except Exception as e:
        raise ConfigError(f"{source}: stored config is not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{source}: stored config is not a mapping")
    check_targets(cfg, source=source)
    return cfg


def check_overrides(overrides: list[str], source: str | None = None) -> None:
    """Check the `_target_`s that command-line style overrides (`key=value`, sweeps included)
    would put into a config, without composing it: for lists of overrides genda reads from a
    file (the report manifest) before it starts any run."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as e:
        raise ConfigError(f"{source + ': ' if source else ''}cannot parse overrides: "
                          f"{str(e).strip().splitlines()[0]}") from e
    for o in parsed:
        if o.is_delete() or "/" in o.key_or_group or "@" in o.key_or_group:
            continue  # deleting a key, or picking a config group's file from conf/
        values = list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()]
        for value in values:
            cfg = OmegaConf.create({})
            OmegaConf.update(cfg, o.key_or_group, value, force_add=True)
            check_targets(cfg, source=source)


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
