"""Every option of every config group composes on its own with the root config, at every scale, and
per-scale values live in per-scale files (conf/<group>/<name>/<scale>.yaml), not in `${s:...}`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from genda.config import CONF_DIR, SCALES, check_targets

CONF = Path(CONF_DIR)


def _per_scale_dirs() -> list[Path]:
    """conf/<group>/<name>/: the per-scale files of conf/<group>/<name>.yaml."""
    return sorted(d for d in CONF.rglob("*") if d.is_dir() and d.with_suffix(".yaml").is_file())


def _group_options() -> list[tuple[str, str]]:
    """(group, option) for every selectable config: not Hydra's own groups, not per-scale files."""
    scale_dirs = set(_per_scale_dirs())
    out = []
    for f in sorted(CONF.rglob("*.yaml")):
        rel = f.relative_to(CONF)
        if len(rel.parts) < 2 or rel.parts[0] == "hydra" or f.parent in scale_dirs:
            continue
        out.append(("/".join(rel.parts[:-1]), f.stem))
    return out


# extra overrides an option needs to compose alone (none: every option is self-contained, e.g. the
# diffusion models hold their own `model.sampler` block rather than reading a root `sampler:`)
NEEDS: dict[tuple[str, str], list[str]] = {}


def test_groups_found() -> None:
    options = _group_options()
    assert ("experiment", "dann_mnistm_usps") in options and ("data", "mnist") in options
    assert ("trainer", "gpu") in options and ("scale", "smoke") in options
    assert not any(g.startswith("experiment/") for g, _ in options)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("group,option", _group_options())
def test_option_composes_alone(group: str, option: str, scale: str) -> None:
    overrides = [f"{group}={option}", *NEEDS.get((group, option), [])]
    if group != "scale":
        overrides.append(f"scale={scale}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    check_targets(cfg)
    OmegaConf.resolve(cfg)
    assert not OmegaConf.missing_keys(cfg), "a `???` key that no per-scale file sets"
    assert cfg.scale.name == (option if group == "scale" else scale)


def test_no_scale_triples_left() -> None:
    """`${s:SMOKE,CPU,FULL}` is gone from conf/: per-scale values are read in per-scale files."""
    left = [str(f.relative_to(CONF)) for f in sorted(CONF.rglob("*.yaml"))
            if "${s:" in "".join(x.split("#")[0] for x in f.read_text().splitlines())]
    assert left == []


@pytest.mark.parametrize("folder", _per_scale_dirs(), ids=lambda d: str(d.relative_to(CONF)))
def test_per_scale_files_are_complete_and_loaded(folder: Path) -> None:
    """conf/<group>/<name>/ has one file per scale, with the same keys, and <name>.yaml loads the
    chosen one from its defaults list."""
    files = {f.stem: yaml.safe_load(f.read_text()) or {} for f in folder.glob("*.yaml")}
    assert sorted(files) == sorted(SCALES)

    def keys(d: dict, prefix: str = "") -> set[str]:
        return {k for key, v in d.items()
                for k in (keys(v, f"{prefix}{key}.") if isinstance(v, dict) else {f"{prefix}{key}"})}

    assert keys(files["smoke"]) == keys(files["cpu"]) == keys(files["full"])
    parent = yaml.safe_load(folder.with_suffix(".yaml").read_text())
    assert {f"{folder.name}@_here_": "${scale}"} in parent["defaults"]
    assert parent["defaults"].index("_self_") < parent["defaults"].index({f"{folder.name}@_here_": "${scale}"})


def test_scale_files_apply_and_overrides_win() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cpu = compose("config", overrides=["experiment=dann_mnistm_usps", "scale=cpu"])
        smoke = compose("config", overrides=["experiment=dann_mnistm_usps", "scale=smoke"])
        mine = compose("config", overrides=["experiment=dann_mnistm_usps", "scale=cpu",
                                            "trainer.max_steps=7", "data.source.limit_val=3"])
        plain = compose("config", overrides=["scale=full"])
    assert cpu.trainer.max_steps == 600 and smoke.trainer.max_steps == 4  # experiment/dann_mnistm_usps/
    assert cpu.data.source.limit_val == 1000 and smoke.data.source.limit_val == 64  # data/pair_digits/
    assert mine.trainer.max_steps == 7 and mine.data.source.limit_val == 3
    assert plain.trainer.max_steps == 100000 and plain.logger.system_metrics is True  # trainer/default/, logger/wandb/
