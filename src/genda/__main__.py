"""Hydra entry point: `python -m genda experiment=NAME [overrides]` (add -m for sweeps)."""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from genda.config import CONF_DIR, check_targets, register_resolvers
from genda.errors import GendaError

register_resolvers()


def _fail(msg: str) -> None:
    print(f"genda: error: {msg}", file=sys.stderr)
    sys.exit(2)


def _first_of_sweeps(args: list[str]) -> list[str]:
    """The overrides of the sweep's first job (enough to check keys and names)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for o in OverridesParser.create().parse_overrides(args):
        if o.key_or_group.startswith("hydra"):
            continue
        if o.is_sweep_override():
            out.append(f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}")
        else:
            out.append(o.input_line)
    return out


def precheck(argv: list[str]) -> None:
    """Compose the config once before Hydra runs, so bad names and keys give one line."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    args = [a for a in argv if not a.startswith("-")]
    try:
        overrides = _first_of_sweeps(args)
    except HydraException as e:
        _fail(f"cannot parse overrides: {str(e).splitlines()[0]}")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
            check_targets(cfg)
            OmegaConf.resolve(cfg)
    except MissingConfigException as e:
        group = next((o.split("=", 1)[0] for o in overrides if "=" in o and str(e).find(
            f"'{o.split('=', 1)[0]}/") >= 0), None)
        known = ""
        if group:
            known = "; available: " + ", ".join(sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")))
        _fail(f"{str(e).splitlines()[0].replace('In ' + repr('config') + ': ', '')}{known}")
    except GendaError as e:
        _fail(str(e))
    except (HydraException, OmegaConfBaseException) as e:
        line = str(e).strip().splitlines()[0]
        if line.startswith("Could not override '"):
            key = line.split("'")[1]
            line = f"unknown config key '{key}' (check the spelling; +{key}=VALUE adds a new key)"
        _fail(line)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from genda.train import Trainer

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        summary = Trainer(cfg, run_dir).fit()
    except GendaError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail(f"interrupted; run dir {run_dir}")
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"[genda] run dir: {run_dir}\n[genda] metrics: {run_dir}/metrics.jsonl\n"
              f"[genda] checkpoint: {run_dir}/checkpoints/last.ckpt\n"
              f"[genda] summary: {({k: v for k, v in summary.items() if not isinstance(v, dict)})}",
              file=sys.stderr)
    best = [v for k, v in summary.items() if k.startswith("best_") and isinstance(v, int | float)]
    return float(best[0]) if best else None  # the monitored metric, for Hydra sweepers


if __name__ == "__main__":
    if not any(a in ("--help", "-h", "--cfg", "-c", "--info", "--hydra-help") or a.startswith("--cfg")
               for a in sys.argv[1:]):
        precheck(sys.argv[1:])
    main()
