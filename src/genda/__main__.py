"""Hydra entry point: `python -m genda experiment=NAME [overrides]` (add -m for sweeps)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from genda.config import CONF_DIR, check_overrides, check_targets, register_resolvers
from genda.errors import GendaError

register_resolvers()
_log = logging.getLogger("genda")


def _fail(msg: str) -> None:
    print(f"genda: error: {msg}", file=sys.stderr)
    sys.exit(2)


# root keys that moved into another node: an override of the old key names the new one
MOVED_KEYS = {"sampler.": "model.sampler."}  # the diffusion models' sampler block


def _first_of_sweeps(args: list[str]) -> list[str]:
    """The overrides of the sweep's first job (enough to check keys and names)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for o in OverridesParser.create().parse_overrides(args):
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
        check_overrides(args)  # every sweep value, not only the first job's
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            # with the hydra node: Hydra instantiates hydra.callbacks (and the launcher, sweeper,
            # logging handlers) before main() runs, so they are checked here, before Hydra starts
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
            check_targets(cfg)
            with open_dict(cfg):
                del cfg["hydra"]
            OmegaConf.resolve(cfg)
            check_classifier_ckpt(cfg)
            from genda.train.validate import check_config
            check_config(cfg, args)  # numbers, devices, run dir, resume (genda.train.validate)
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
            moved = next((n + key[len(o):] for o, n in MOVED_KEYS.items() if key.startswith(o)), None)
            line = (f"config key '{key}' moved: use {moved}=VALUE" if moved else
                    f"unknown config key '{key}' (check the spelling; +{key}=VALUE adds a new key)")
        _fail(line)


def check_classifier_ckpt(cfg: DictConfig) -> None:
    """`metrics.classifier.ckpt=` names a checkpoint that scoring builds from: check its stored
    config now rather than after training."""
    ckpt = OmegaConf.select(cfg, "metrics.classifier.ckpt", default=None)
    if ckpt and Path(str(ckpt)).is_file():
        from genda.metrics.accuracy import check_classifier

        check_classifier(str(ckpt))  # a genda checkpoint's stored config, or the course's Classifier.pth


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from genda.errors import Interrupted
    from genda.train import Trainer
    from genda.train.loop import resume_command

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    try:
        # second line of defence (the precheck refuses these before Hydra starts)
        check_targets(cfg)
        check_targets(OmegaConf.create({"callbacks": hydra_cfg.callbacks}), "hydra")
        summary = Trainer(cfg, run_dir).fit()
    except GendaError as e:
        _fail(str(e))
    except Interrupted as e:  # SIGTERM/SIGINT: checkpoint and status.json written; 143/130 for schedulers
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"[genda] {e}; resume with:\n{resume_command(e.run_dir, list(hydra_cfg.overrides.task))}",
                  file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:  # a second Ctrl-C: stopped without a checkpoint
        print(f"genda: error: interrupted; run dir {run_dir}", file=sys.stderr)
        sys.exit(130)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"[genda] run dir: {run_dir}\n[genda] metrics: {run_dir}/metrics.jsonl\n"
              f"[genda] checkpoint: {run_dir}/checkpoints/last.ckpt\n"
              f"[genda] summary: {({k: v for k, v in summary.items() if not isinstance(v, dict)})}",
              file=sys.stderr)
    _log.info("run dir %s; summary %s", run_dir, {k: v for k, v in summary.items() if not isinstance(v, dict)})
    return monitored(summary)


def monitored(summary: dict) -> float | None:
    """The value a Hydra sweeper (Optuna) optimises: the best validated value of the task's monitor
    (`best_<monitor>`), else the final score of the same name (runs without mid-run validation)."""
    for k, v in summary.items():
        if k.startswith("best_") and isinstance(v, int | float):
            return float(v)
    for k in ("fid", "target_acc", "acc", "loss"):
        if isinstance(summary.get(k), int | float):
            return float(summary[k])
    return None


# Hydra's own flags that compose no job (help, completion, info) skip the precheck; those that
# would load code or configs from elsewhere are refused (a rerun unpickles a file).
_NO_JOB_FLAGS = ("--help", "-h", "--cfg", "-c", "--info", "-i", "--hydra-help", "--shell-completion",
                 "-sc")
_REFUSED_FLAGS = ("--experimental-rerun",)


def _hydra_flag_args(argv: list[str]) -> tuple[bool, str | None]:
    """(skip the precheck?, a refused flag) for Hydra's own command-line flags."""
    for a in argv:
        name = a.split("=", 1)[0]
        if name in _REFUSED_FLAGS:
            return False, name
    return any(a.split("=", 1)[0] in _NO_JOB_FLAGS or a.startswith("--cfg") for a in argv), None


if __name__ == "__main__":
    skip, refused = _hydra_flag_args(sys.argv[1:])
    if refused:
        _fail(f"{refused} is not supported: it unpickles a saved job; re-run the job's command "
              f"(its overrides are in <run dir>/.hydra/overrides.yaml)")
    if not skip:
        precheck(sys.argv[1:])
    main()
