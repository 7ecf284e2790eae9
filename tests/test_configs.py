"""Every experiment composes, resolves and names only allowed targets; every one runs at smoke."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from genda.config import CONF_DIR, check_targets
from genda.train import checkpoint as ckpt_io

from .conftest import EXPERIMENTS, genda


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("scale", ["smoke", "cpu", "full"])
def test_experiment_composes(experiment: str, scale: str) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}", f"scale={scale}"])
    check_targets(cfg)
    OmegaConf.resolve(cfg)
    assert cfg.name == experiment, "each experiment sets name: <file stem>"
    assert int(cfg.trainer.max_steps) > 0


def test_scales_differ() -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        smoke = compose("config", overrides=["experiment=classifier_mnist", "scale=smoke"])
        cpu = compose("config", overrides=["experiment=classifier_mnist"])
    assert smoke.trainer.max_steps < cpu.trainer.max_steps
    assert cpu.scale.name == "cpu"


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_at_smoke(experiment: str, smoke_run) -> None:
    run_dir = smoke_run(experiment)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "complete", status
    state = ckpt_io.load(run_dir / "checkpoints" / "last.ckpt")  # weights_only: plain tensors and numbers
    assert state["step"] == status["step"]
    assert (run_dir / "metrics.jsonl").stat().st_size > 0
    assert (run_dir / "config.yaml").is_file()


@pytest.mark.parametrize("args,needle", [
    (["experiment=no_such_experiment"], "experiment/no_such_experiment"),
    (["experiment=classifier_mnist", "trainer.no_such_key=1"], "unknown config key 'trainer.no_such_key'"),
    (["experiment=ddim_faces", "sampler.eta=0.5"], "moved: use model.sampler.eta=VALUE"),  # a former root key
    (["experiment=classifier_mnist", "model.optimizer._target_=os.system"], "is not an allowed target"),
    (["experiment=classifier_mnist", "data=no_such_data"], "data/no_such_data"),
    (["experiment=classifier_mnist", "scale=huge"], "scale/huge"),
])
def test_bad_config_gives_one_line(args: list[str], needle: str) -> None:
    proc = genda(*args, "logger.mode=disabled")
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("genda: error:") and needle in lines[0]
