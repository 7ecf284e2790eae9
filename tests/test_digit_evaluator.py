"""genda's LeNet digit evaluator is trained by one explicit step (`python -m genda.evaluate
train-evaluator`) into the cache; the digit-accuracy metric only loads it, and without it the DDPM
digits task skips the score with one line and a note naming that command."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from genda.errors import CheckpointError
from genda.evaluate import main, train_evaluator
from genda.metrics.accuracy import DigitEvaluator, EvaluatorNotTrained, evaluator_dir


def test_train_evaluator_writes_where_the_metric_reads(capsys):
    """The command trains (or finds) the evaluator in the cache dir `for_domain` loads from."""
    from genda.data.domain import default_cache_dir

    first = train_evaluator("mnistm", "smoke", quiet=True)  # nothing to train once cached
    assert first["run_dir"] == evaluator_dir("mnistm", default_cache_dir(), "smoke", None)
    ev = DigitEvaluator.for_domain("mnistm", default_cache_dir(), scale="smoke")
    assert ev.source == str(first["checkpoint"]) and ev.preprocess == "tanh"
    capsys.readouterr()
    assert main(["train-evaluator", "--domain", "mnistm", "--scale", "smoke"]) == 0  # cached: nothing to do
    out, err = capsys.readouterr()
    assert out.startswith("val_acc ") and str(first["checkpoint"]) in out
    assert "already trained; nothing to do" in err


def test_for_domain_only_loads(tmp_path):
    """An empty cache: EvaluatorNotTrained naming the command; nothing is trained."""
    with pytest.raises(EvaluatorNotTrained, match="train-evaluator --domain mnistm --scale cpu") as e:
        DigitEvaluator.for_domain("mnistm", tmp_path, scale="cpu", data_dir="/data/hw2")
    assert e.value.command == ("python -m genda.evaluate train-evaluator --domain mnistm --scale cpu "
                               f"paths.data_dir=/data/hw2 paths.cache_dir={tmp_path}")
    assert e.value.run_dir == evaluator_dir("mnistm", tmp_path, "cpu", "/data/hw2")
    assert not e.value.run_dir.exists()


@pytest.mark.parametrize(("argv", "needle"), [
    (["train-evaluator", "--domain", "nope"], "'nope'"),
    (["train-evaluator", "--domain", "mnistm", "trainer.max_steps=3"], "trainer.max_steps=3"),
    (["train-evaluator", "--domain", "mnistm", "--scale", "huge"], "huge"),
])
def test_train_evaluator_bad_input_gives_one_error_line(argv, needle, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("genda.evaluate: error: ") and needle in err


class _Out:
    enabled = True

    def __init__(self) -> None:
        self.saved: dict = {}

    def folder(self, *a, **k) -> None: ...
    def grid(self, *a, **k) -> None: ...
    def labelled(self, *a, **k) -> None: ...

    def json(self, name: str, obj: dict) -> None:
        self.saved[name] = obj


def _finalize(evaluator: dict, cache_dir) -> tuple[dict, dict]:
    """A tiny DDPM's finalize (1 image per digit, 2 DDIM steps) against a fake run context."""
    from genda.models.unet import ConditionalUNet
    from genda.tasks.diffusion import ConditionalDDPMTask

    torch.manual_seed(0)
    net = ConditionalUNet(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(), groups=4)
    schedule = {"kind": "linear", "num_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02}
    sampler = {"kind": "ddim", "num_steps": 2, "eta": 0.0, "guidance": 1.0, "clip_x0": True}
    task = ConditionalDDPMTask(net, None, schedule, sampler, evaluator=evaluator, images_per_class=1,
                               strip_points=3)
    data = SimpleNamespace(domain_name="mnistm", cache_dir=str(cache_dir), data_dir=None, info={},
                           split=lambda s: SimpleNamespace(images=torch.zeros(1, 3, 28, 28)),
                           to_uint8=lambda x: ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))
    out = _Out()
    metrics = task.finalize(SimpleNamespace(data=data, out=out))
    return metrics, out.saved["eval"]


def test_ddpm_without_a_trained_evaluator_skips_the_accuracy_with_a_note(tmp_path, capsys):
    metrics, ev = _finalize({"ckpt": None, "scale": "cpu"}, tmp_path)
    assert metrics == {"n_images": 10} and ev["accuracy"] is None and ev["evaluator"] is None
    cmd = f"python -m genda.evaluate train-evaluator --domain mnistm --scale cpu paths.cache_dir={tmp_path}"
    assert cmd in ev["accuracy_skipped"] and "genda.evaluate run RUN_DIR" in ev["accuracy_skipped"]
    lines = [x for x in capsys.readouterr().err.splitlines() if "accuracy" in x]
    assert len(lines) == 1 and lines[0].startswith("[genda] digit accuracy skipped: ") and cmd in lines[0]
    assert json.dumps(ev)  # eval.json stays plain JSON


def test_ddpm_with_a_configured_evaluator_that_is_missing_fails(tmp_path):
    """metrics.classifier.ckpt=PATH is the user's choice: a missing file is an error, not a skip."""
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        _finalize({"ckpt": str(tmp_path / "no.ckpt"), "scale": "cpu"}, tmp_path)
