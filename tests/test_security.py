"""Config-borne code execution: every `_target_` genda builds, from any source, must be on the
exact allow-list (genda.targets), checked before anything is instantiated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from genda import targets
from genda.config import CONF_DIR, build, check_overrides, check_targets, stored_config
from genda.errors import ConfigError
from genda.train import checkpoint as ckpt_io

from .conftest import genda

EXEC = "torch.fx.graph_module._exec_with_source"
BAD = [
    "torch.hub.load",
    "torch.load",
    "torch._inductor.codecache.PyCodeCache.load",
    "torchvision.io.write_file",
    "torch.os.system",
    "builtins.open",
    EXEC,
    "genda.models.dann.torch.load",  # a genda module's import is not a genda callable
    "torch.optim.Adam.__init__",
]


def _payload(marker: Path) -> dict:
    """A node that, if instantiated, runs code that creates `marker`."""
    return {"_target_": EXEC, "_convert_": "all", "globals": {},
            "src": f"import pathlib; pathlib.Path({str(marker)!r}).write_text('pwned')"}


def _evil_config(marker: Path) -> str:
    return OmegaConf.to_yaml(OmegaConf.create({
        "seed": 0,
        "model": {"_target_": "genda.tasks.classifier.ClassifierTask", "net": _payload(marker),
                  "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}},
        "data": {"_target_": "genda.data.module.DomainData", "domain": "uci_digits"},
        "trainer": {"max_steps": 1},
    }))


@pytest.fixture
def evil_run(tmp_path: Path) -> tuple[Path, Path]:
    """A hand-made run dir whose checkpoint's stored config names _exec_with_source."""
    marker = tmp_path / "marker"
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt_io.save_atomic({"format": ckpt_io.FORMAT, "task": "genda.tasks.classifier.ClassifierTask",
                         "step": 1, "config": _evil_config(marker), "modules": {}, "ema": {}}, ckpt)
    return ckpt.parents[1], marker


def _one_line_refusal(proc, key: str, target: str) -> None:
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "error:" in lines[0] and f"config key '{key}'" in lines[0] and repr(target) in lines[0]
    assert "is not an allowed target" in lines[0]


def test_the_payload_is_live(tmp_path: Path) -> None:
    """Sanity: the crafted node really runs code when instantiated without the check."""
    marker = tmp_path / "marker"
    instantiate(OmegaConf.create(_payload(marker)))
    assert marker.read_text() == "pwned"


def test_commands_refuse_a_checkpoint_that_names_exec(evil_run, tmp_path: Path) -> None:
    run, marker = evil_run
    ckpt = run / "checkpoints" / "last.ckpt"
    folder = tmp_path / "digits"
    folder.mkdir()
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(folder / "3_001.png")
    commands = [
        ("genda.predict", [str(run), str(folder), str(tmp_path / "pred.csv")]),
        ("genda.predict", [str(ckpt), str(folder), str(tmp_path / "pred.csv")]),
        ("genda.sample", [str(run), str(tmp_path / "samples")]),
        ("genda.evaluate", ["accuracy", "--folder", str(folder), "--classifier", str(ckpt)]),
        ("genda", ["experiment=ddpm_digits", "scale=smoke", "logger.mode=disabled",
                   f"metrics.classifier.ckpt={ckpt}", f"hydra.run.dir={tmp_path / 'ddpm'}"]),
    ]
    for module, args in commands:
        proc = genda(*args, module=module, timeout=120)
        _one_line_refusal(proc, "model.net._target_", EXEC)
        assert str(ckpt) in proc.stderr, "the message names the checkpoint"
        assert not marker.exists(), module
    assert not (tmp_path / "pred.csv").exists() and not (tmp_path / "ddpm" / "checkpoints").exists()


def test_in_process_loaders_refuse(evil_run, tmp_path: Path) -> None:
    from genda.metrics.accuracy import DigitEvaluator, accuracy_of_folder
    from genda.runs import load_run

    run, marker = evil_run
    folder = tmp_path / "digits"
    folder.mkdir()
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(folder / "7_001.png")
    calls = [lambda: load_run(run), lambda: load_run(run / "checkpoints" / "last.ckpt"),
             lambda: DigitEvaluator.from_checkpoint(run / "checkpoints" / "last.ckpt"),
             lambda: accuracy_of_folder(folder, run / "checkpoints" / "last.ckpt")]
    for call in calls:
        with pytest.raises(ConfigError, match=r"config key 'model\.net\._target_' = "
                                              r"'torch\.fx\.graph_module\._exec_with_source'"):
            call()
    assert not marker.exists()


def test_a_stored_config_cannot_extend_the_list(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(targets.ENV_VAR, raising=False)
    text = OmegaConf.to_yaml(OmegaConf.create({
        "extra_targets": ["torch.hub.load"], "GENDA_EXTRA_TARGETS": "torch.hub.load",
        "model": {"_target_": "torch.hub.load"}}))
    with pytest.raises(ConfigError, match="'model._target_' = 'torch.hub.load'"):
        stored_config(text, "x.ckpt")


@pytest.mark.parametrize("target", BAD)
def test_bad_targets_are_refused_in_process(target: str, tmp_path: Path) -> None:
    assert not targets.is_allowed(target)
    cfg = OmegaConf.create({"model": {"_target_": "genda.tasks.classifier.ClassifierTask",
                                      "net": {"_target_": target, "file": str(tmp_path / "m")}}})
    with pytest.raises(ConfigError, match=rf"config key 'model\.net\._target_' = '{target}' is not an "):
        build(cfg, "model")
    with pytest.raises(ConfigError, match=r"'hydra\.callbacks\.x\._target_'"):
        check_targets(OmegaConf.create({"hydra": {"callbacks": {"x": {"_target_": target}}}}))
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("target", BAD)
def test_precheck_refuses_overrides_and_callbacks(target: str, tmp_path: Path, capsys) -> None:
    from genda.__main__ import precheck

    marker = tmp_path / "m"
    for args, key in [
        (["experiment=classifier_mnist", f"model.optimizer._target_={target}"], "model.optimizer._target_"),
        (["experiment=classifier_mnist", f"+hydra.callbacks.x={{_target_:{target},file:{marker},mode:w}}"],
         "hydra.callbacks.x._target_"),
    ]:
        with pytest.raises(SystemExit) as e:
            precheck(args)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("genda: error: config key ") and key in err[0], err
        assert repr(target) in err[0]
    assert not marker.exists()


@pytest.mark.parametrize("args,key,target", [
    (["model.optimizer._target_=torch.hub.load"], "model.optimizer._target_", "torch.hub.load"),
    (["+hydra.callbacks.x={_target_:builtins.open,file:MARKER,mode:w}"], "hydra.callbacks.x._target_",
     "builtins.open"),
    (["+hydra.job_logging.handlers.x={class:builtins.open,file:MARKER,mode:w}"],
     "hydra.job_logging.handlers.x.class", "builtins.open"),
    (["hydra.launcher._target_=torch.load"], "hydra.launcher._target_", "torch.load"),
])
def test_genda_command_refuses_before_hydra_runs(args, key, target, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    args = [a.replace("MARKER", str(marker)) for a in args]
    proc = genda("experiment=classifier_mnist", "scale=smoke", "logger.mode=disabled",
                 f"hydra.run.dir={tmp_path / 'run'}", *args, timeout=120)
    _one_line_refusal(proc, key, target)
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_hydra_defaults_and_launchers_pass(capsys) -> None:
    from genda.__main__ import precheck

    for extra in ([], ["hydra/launcher=joblib_local"], ["hydra/launcher=slurm"],
                  ["hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]):
        precheck(["experiment=dann_usps_mnistm", "hydra.run.dir=/tmp/never_used", *extra])
    for search in sorted((CONF_DIR / "hparams_search").glob("*.yaml")):  # Optuna sweeper + sampler
        precheck(["-m", "experiment=dann_usps_mnistm", f"hparams_search={search.stem}"])
    for logging_cfg in sorted((CONF_DIR / "hydra" / "job_logging").glob("*.yaml")):
        precheck(["experiment=dann_usps_mnistm", f"hydra/job_logging={logging_cfg.stem}"])
    assert capsys.readouterr().err == ""


def test_manifest_overrides_are_checked(tmp_path: Path) -> None:
    from genda.report.manifest import load_manifest

    for spec in ({"overrides": ["model.net._target_=torch.hub.load"]},
                 {"overrides": ["+hydra.callbacks.x={_target_:builtins.open,file:/tmp/x}"]},
                 {"sweep": {"model.optimizer._target_": ["torch.optim.Adam", "torch.os.system"]}}):
        path = tmp_path / "manifest.yaml"
        path.write_text(yaml.safe_dump({"runs": {"bad": {"experiment": "classifier_mnist",
                                                         "item": "classifier", **spec}}}))
        with pytest.raises(ConfigError, match="is not an allowed target") as e:
            load_manifest(path)
        assert "entry 'bad'" in str(e.value)
    check_overrides(["model.optimizer._target_=torch.optim.SGD", "hydra/launcher=joblib_local"])


def test_users_extend_the_list_deliberately(monkeypatch) -> None:
    name = "mypkg.nets.MyNet"
    monkeypatch.delenv(targets.ENV_VAR, raising=False)
    assert not targets.is_allowed(name)
    monkeypatch.setenv(targets.ENV_VAR, f"{name}, mypkg.nets.Other")
    assert targets.is_allowed(name) and targets.is_allowed("mypkg.nets.Other")
    monkeypatch.delenv(targets.ENV_VAR)
    monkeypatch.setattr(targets, "_ALLOWED_BY_USER", set())
    targets.allow(name)
    assert targets.is_allowed(name)
    with pytest.raises(ValueError):
        targets.allow("not a name")


def _targets_in(node, path: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if k == "_target_":
                yield p, v
            else:
                yield from _targets_in(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _targets_in(v, f"{path}[{i}]")


def test_every_conf_target_is_allowed() -> None:
    """Keeps the allow-list complete: every `_target_` in conf/ (and the alternatives the configs'
    comments name, e.g. DeepCNN) is on it."""
    seen = []
    for f in sorted(CONF_DIR.rglob("*.yaml")):
        rel = f.relative_to(CONF_DIR)
        prefix = ".".join(rel.parts[:-1]) if rel.parts[0] == "hydra" else ""
        for path, target in _targets_in(yaml.safe_load(f.read_text()) or {}, prefix):
            parts = path.split(".")
            scope = None
            if parts[0] == "hydra":
                scope = parts[1] if len(parts) > 2 and parts[1] in targets.HYDRA_TARGETS else "hydra"
            assert targets.is_allowed(target, scope), f"{rel}: {path} = {target}"
            seen.append(target)
    assert "genda.tasks.uda.UDATask" in seen and "torch.optim.Adam" in seen
    assert targets.is_allowed("genda.models.dann.DeepCNN")


def test_registered_genda_targets_exist() -> None:
    """Each registered name resolves to the class Hydra would import."""
    from hydra.utils import get_class

    names = targets.genda_targets()
    assert {"genda.models.classifier.LeNet", "genda.tasks.uda.ADDATask",
            "genda.data.module.PairedDomainData"} <= names
    for n in names:
        assert f"{get_class(n).__module__}.{get_class(n).__qualname__}" == n


@pytest.mark.parametrize("value", [
    "${oc.create:{_target_: builtins.print, _args_: [pwned]}}",
    "${oc.decode:'{_target_: builtins.print, _args_: [pwned]}'}",
    "${s:{_target_: builtins.print},b,c}",
    "${s:[{_target_: builtins.print}],b,c}",
])
def test_interpolations_that_build_nodes_are_checked(value: str) -> None:
    """A resolver can turn a string into a config node: the check follows interpolations."""
    cfg = OmegaConf.create({"scale": {"name": "smoke"},
                            "model": {"_target_": "torch.nn.Identity", "extra": value}})
    with pytest.raises(ConfigError, match=r"config key 'model\.extra(\[0\])?\._target_' = 'builtins\.print'"):
        build(cfg, "model")


def test_unresolvable_interpolations() -> None:
    """Plain references may stay unresolved while checking (`${hydra:job.num}` before Hydra runs);
    anything else that does not resolve is refused, since its targets cannot be seen."""
    ok = OmegaConf.create({"a": "${hydra:job.num}", "b": "${no.such.key}/x", "c": "${now:%H:%M}"})
    check_targets(ok)
    bad = OmegaConf.create({"model": {"extra": "${oc.create:${oc.env:GENDA_NO_SUCH_VAR}}"}})
    with pytest.raises(ConfigError, match=r"'model\.extra' .* does not resolve"):
        check_targets(bad)


def test_evaluate_run_refuses_a_run_dir_config_that_names_exec(evil_run, tmp_path: Path) -> None:
    """`genda.evaluate run RUN_DIR` builds from the run dir's config.yaml: it passes the list first."""
    run, marker = evil_run
    (run / "config.yaml").write_text(_evil_config(marker))
    proc = genda("run", str(run), "--checkpoint", "last", module="genda.evaluate", timeout=120)
    _one_line_refusal(proc, "model.net._target_", EXEC)
    assert not marker.exists() and not (run / "rescored").exists()
