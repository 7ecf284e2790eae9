"""A run's identity for W&B and summary.json: readable name, group, tags, job type, swept values.

Name = experiment + the overrides that distinguish the run + seed (`dann_mnistm_usps lambda_max=0.3
s1`); group = the same without the seed, so the seeds of one variant sit together in W&B (a
report build keeps its own group as a prefix); tags = scale, data domains, method.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

# overrides that say where or how a run is logged or stored, not what it is
_NOT_IDENTITY = ("hydra.", "logger.", "paths.", "trainer.resume", "trainer.progress",
                 "trainer.devices", "trainer.num_nodes", "trainer.accelerator", "metrics.cache",
                 "trainer.log_every", "trainer.sample_every", "trainer.checkpoint_every",
                 "name=", "group=", "tags=")
_NOT_VALUE = ("experiment", "scale", "seed")


def task_overrides() -> list[str]:
    """The command-line overrides of this Hydra job ([] outside a Hydra app)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return [str(o) for o in HydraConfig.get().overrides.task]
    except Exception:  # noqa: BLE001 - identity is cosmetic; never fail a run over it
        pass
    return []


def _split(o: str) -> tuple[str, str]:
    key, _, value = o.lstrip("+~").partition("=")
    return key, value


def distinguishing(overrides: list[str]) -> dict[str, str]:
    """`key: value` of the overrides that change what the run is (experiment, scale, seed aside)."""
    out = {}
    for o in overrides:
        key, value = _split(o)
        if key in _NOT_VALUE or any(o.lstrip("+~").startswith(p) for p in _NOT_IDENTITY):
            continue
        out[key] = value
    return out


def _short(key: str, keys: list[str]) -> str:
    last = key.split(".")[-1]
    return last if sum(k.split(".")[-1] == last for k in keys) == 1 else key


def _domains(cfg: DictConfig) -> list[str]:
    data = cfg.get("data") or {}
    out = []
    for side in ("source", "target"):
        node = data.get(side) if isinstance(data, DictConfig) else None
        if isinstance(node, DictConfig) and node.get("domain"):
            out.append(str(node.get("domain")))
    if not out and isinstance(data, DictConfig) and data.get("domain"):
        out.append(str(data.get("domain")))
    return out


def _method(cfg: DictConfig) -> str | None:
    target = OmegaConf.select(cfg, "model._target_", default=None)
    if not isinstance(target, str):
        return None
    mode = OmegaConf.select(cfg, "model.mode", default=None)
    name = target.rsplit(".", 1)[-1].removesuffix("Task").lower()
    return f"{name}:{mode}" if isinstance(mode, str) else name


def run_identity(cfg: DictConfig, overrides: list[str] | None = None,
                 job_type: str = "train") -> dict[str, Any]:
    """name, group, tags, job_type for the logger and `run` for summary.json."""
    overrides = task_overrides() if overrides is None else overrides
    values = distinguishing(overrides)
    keys = list(values)
    variant = " ".join(f"{_short(k, keys)}={v}" for k, v in values.items())
    base = str(cfg.get("name") or "run")
    seed = cfg.get("seed")
    group_variant = f"{base} {variant}".strip()
    prefix = OmegaConf.select(cfg, "logger.group", default=None)
    group = f"{prefix}/{group_variant}" if prefix else group_variant
    scale = OmegaConf.select(cfg, "scale.name", default=None)
    tags = [str(t) for t in (OmegaConf.select(cfg, "logger.tags", default=None) or [])]
    for t in (f"scale:{scale}" if scale else None, *(f"data:{d}" for d in _domains(cfg)),
              f"method:{_method(cfg)}" if _method(cfg) else None):
        if t and t not in tags:
            tags.append(t)
    return {
        "name": f"{group_variant} s{seed}" if seed is not None else group_variant,
        "group": group,
        "tags": [t[:64] for t in tags],  # W&B refuses tags over 64 characters
        "job_type": job_type,
        "run": {"experiment": base, "scale": scale, "seed": seed, "overrides": values,
                "all_overrides": list(overrides)},
    }
