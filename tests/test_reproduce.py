"""`genda.reproduce`, the room above the report that trains the manifest's runs: skip/resume
planning, the cores shared by parallel runs, and its command line (the report's old `run` names
it). The end-to-end runs are in test_report_runs.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from genda.errors import ConfigError
from genda.report.__main__ import main as report_main
from genda.report.manifest import load_manifest
from genda.reproduce.__main__ import main as reproduce_main
from genda.reproduce.runner import command_overrides, compose_config, plan, threads_per_job


def _manifest(tmp_path: Path, spec: dict):
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    return load_manifest(path)


def test_plan_skips_only_complete_runs_with_the_same_config(tmp_path: Path) -> None:
    m = _manifest(
        tmp_path, {"runs": {"c": {"experiment": "classifier_mnist", "item": "classifier"}}}
    )
    run = m.expand("smoke", tmp_path)[0]
    wanted = compose_config(command_overrides(run, "smoke", "g", ["logger.mode=disabled"]))
    assert wanted["trainer"]["max_steps"] == 4 and wanted["group"] == "g" and wanted["seed"] == 0
    assert plan(run, wanted) == "fresh"
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "config.yaml").write_text(yaml.safe_dump(wanted))
    (run.run_dir / "status.json").write_text('{"state": "interrupted", "step": 2}')
    assert plan(run, wanted) == "fresh"  # no checkpoint to resume from
    (run.run_dir / "checkpoints").mkdir()
    (run.run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert plan(run, wanted) == "resume"
    (run.run_dir / "status.json").write_text('{"state": "complete", "step": 4}')
    assert plan(run, wanted) == "skip"
    other = compose_config(
        command_overrides(run, "smoke", "g", ["logger.mode=disabled", "trainer.max_steps=5"])
    )
    assert plan(run, other) == "fresh"
    w_and_b = compose_config(
        command_overrides(run, "smoke", "other-group", ["logger.mode=offline"])
    )
    assert (
        w_and_b["logger"]["mode"] == "offline" and plan(run, w_and_b) == "skip"
    )  # cannot change results
    assert compose_config(["experiment=no_such_experiment"]) is None


# -- the builder on fabricated run dirs ----------------------------------------------------


def test_parallel_jobs_share_the_cores() -> None:
    assert threads_per_job(1) == {}
    env = threads_per_job(2)
    assert env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))


def test_report_run_names_the_new_command_and_trains_nothing(tmp_path: Path, capsys) -> None:
    args = ["--scale", "smoke", "--only", "ddpm", "--runs", str(tmp_path / "runs")]
    assert report_main(["run", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"python -m genda.reproduce {' '.join(args)}" in err[0]
    assert not (tmp_path / "runs").exists()


def test_reproduce_refuses_a_word_that_is_no_override(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        reproduce_main(["run", "--scale", "smoke", "--runs", str(tmp_path / "runs")])
    assert e.value.code == 2 and "not a Hydra override (key=value): run" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_eta_guesses_only_from_runs_alike_and_says_when_it_is_a_lower_bound(tmp_path: Path) -> None:
    """A fresh build's first runs (the DDPM, the GANs: many minutes) must not set the ETA of the
    dozens of UDA runs: a run is guessed from its own last time, its entry's finished seeds, or
    finished runs of its kind; the rest are counted as not timed yet."""
    from genda.report.manifest import Entry, Run
    from genda.reproduce.runner import estimate, eta_text

    def run(eid: str, exp: str, item: str, seed: int) -> Run:
        return Run(Entry(eid, exp, item), (), seed, tmp_path / eid / f"seed{seed}")

    ddpm = run("ddpm_digits", "ddpm_digits", "ddpm", 0)
    dann = [run("uda_mnistm_usps", "dann_mnistm_usps", "uda", s) for s in range(2)]
    dann2 = run("uda_svhn_usps", "dann_svhn_usps", "uda", 0)
    adda = run("adda_svhn_usps", "adda_svhn_usps", "uda", 0)
    runs = [ddpm, *dann, dann2, adda]
    none = {r.name: None for r in runs}
    finished = {ddpm.name: 800.0}
    assert eta_text(runs, finished, none, 2, 60) == "; 4 runs left (no time measured for them yet)"
    finished[dann[0].name] = 30.0
    assert estimate(dann[1], runs, finished, none) == 30.0  # its entry's other seed
    assert estimate(dann2, runs, finished, none) == 30.0  # same kind: a DANN run of another pair
    assert estimate(adda, runs, finished, none) is None  # ADDA: nothing alike has finished
    assert eta_text(runs, finished, none, 2, 60) == "; 3 left, ETA ≥ ~0 min, 1 not timed yet (elapsed 1 min)"
    assert estimate(adda, runs, finished, {**none, adda.name: 240.0}) == 240.0  # its last build's time
    text = eta_text(runs, finished, {**none, adda.name: 240.0}, 1, 120)
    assert text == "; 3 left, ETA ~5 min (elapsed 2 min)"  # (30 + 30 + 240) s on one worker


def test_uses_passes_the_same_seeds_run_and_overrides_can_be_per_scale(tmp_path: Path) -> None:
    so = {"experiment": "dann_usps_mnistm", "item": "uda", "sweep": {"model.mode": ["source_only", "dann"]}}
    adda = {"experiment": "adda_usps_mnistm", "item": "uda", "uses": {"model.source_ckpt": "uda/mode_source_only"},
            "overrides": {"all": ["model.target_lr=1e-5"], "cpu": ["trainer.max_steps=300"]}}
    m = _manifest(tmp_path, {"seeds": {"smoke": 1, "cpu": 2, "full": 1}, "runs": {"uda": so, "adda": adda}})
    runs = [r for r in m.expand("cpu", tmp_path / "r") if r.entry.id == "adda"]
    assert [r.overrides() for r in runs] == [
        ["experiment=adda_usps_mnistm", "model.target_lr=1e-5", "trainer.max_steps=300",
         f"model.source_ckpt='{(tmp_path / 'r/cpu/uda/mode_source_only' / f'seed{s}').resolve()}'", f"seed={s}"]
        for s in (0, 1)]
    smoke = next(r for r in m.expand("smoke", tmp_path / "r") if r.entry.id == "adda")
    assert "trainer.max_steps=300" not in smoke.overrides() and "model.target_lr=1e-5" in smoke.overrides()
    wanted = compose_config(command_overrides(runs[1], "cpu", "g", []))
    assert wanted["model"]["source_ckpt"] == str(runs[1].uses[0][1]) and wanted["trainer"]["max_steps"] == 300
    for bad, why in (({"model.source_ckpt": "uda/mode_target_only"}, "not a run of an entry listed before"),
                     ({"model.source_ckpt": "later"}, "not a run of an entry listed before"),
                     ("uda", "uses must map")):
        with pytest.raises(ConfigError, match=why):
            _manifest(tmp_path, {"runs": {"uda": so, "adda": {**adda, "uses": bad}, "later": so}})
    with pytest.raises(ConfigError, match="overrides must be a list"):
        _manifest(tmp_path, {"runs": {"uda": {**so, "overrides": {"huge": ["x=1"]}}}})
    with pytest.raises(ConfigError, match="a path with a quote"):  # passed as a quoted Hydra value
        m.expand("cpu", tmp_path / "it's")
    fewer = _manifest(tmp_path, {"seeds": 3, "runs": {"uda": {**so, "seeds": 1}, "adda": adda}})
    with pytest.raises(ConfigError, match="uses uda/mode_source_only for 3 seed"):
        fewer.expand("cpu", tmp_path)


def test_a_run_waits_for_the_runs_it_uses_and_reruns_after_them(tmp_path: Path) -> None:
    import threading

    from genda.reproduce.runner import missing_inputs

    so = {"experiment": "dann_usps_mnistm", "item": "uda", "sweep": {"model.mode": ["source_only"]}}
    adda = {"experiment": "adda_usps_mnistm", "item": "uda", "uses": {"model.source_ckpt": "uda/mode_source_only"}}
    m = _manifest(tmp_path, {"runs": {"uda": so, "adda": adda}})
    dep, run = m.expand("smoke", tmp_path)
    done = {dep.name: threading.Event(), run.name: threading.Event()}
    done[dep.name].set()
    why = missing_inputs(run, [dep, run], done, {dep.name: "failed"})
    assert why == f"model.source_ckpt needs the run {dep.run_dir.resolve()}, which is failed"
    assert missing_inputs(run, [dep, run], done, {dep.name: "complete"}) is None
    assert "which is not trained" in missing_inputs(run, [run], done, {})  # `--only adda`, never trained
    dep.run_dir.mkdir(parents=True)
    (dep.run_dir / "status.json").write_text('{"state": "complete"}')
    assert missing_inputs(run, [run], done, {}) is None  # trained by an earlier build
    # same config, complete -- but the source run was retrained after it started: fresh
    wanted = compose_config(command_overrides(run, "smoke", "g", []))
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "config.yaml").write_text(yaml.safe_dump(wanted))
    (run.run_dir / "status.json").write_text('{"state": "complete"}')
    ckpt = dep.run_dir / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"x")
    os.utime(run.run_dir / "config.yaml", (1e9, 1e9))
    assert plan(run, wanted) == "fresh"
    os.utime(ckpt, (1e9 - 10, 1e9 - 10))
    assert plan(run, wanted) == "skip"


def test_a_run_whose_input_failed_is_not_started_and_says_why(tmp_path: Path) -> None:
    import json

    from genda.reproduce.runner import run_manifest

    so = {"experiment": "dann_usps_mnistm", "item": "uda", "sweep": {"model.mode": ["source_only"]},
          "overrides": ["data.source.domain=no_such_domain"]}  # fails in seconds, before training
    adda = {"experiment": "adda_usps_mnistm", "item": "uda", "uses": {"model.source_ckpt": "uda/mode_source_only"}}
    m = _manifest(tmp_path, {"runs": {"uda": so, "adda": adda}})
    dep, run = m.expand("smoke", tmp_path / "r")
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "status.json").write_text('{"state": "complete"}')  # an old result: set aside
    (run.run_dir / "config.yaml").write_text("seed: 0\n")
    said: list[str] = []
    outcomes = run_manifest(m, "smoke", tmp_path / "r", ["logger.mode=disabled"], say=said.append, jobs=2)
    assert [o.state for o in outcomes] == ["failed", "failed"]
    assert outcomes[1].action == "not started" and "which is failed" in outcomes[1].error
    record = json.loads((run.run_dir / "runner.json").read_text())
    assert record["state"] == "failed" and str(dep.run_dir.resolve()) in record["error"]
    assert not (run.run_dir / "status.json").exists() and list((tmp_path / "r/smoke/.stale").iterdir())
    assert any("adda/seed0: not started (model.source_ckpt needs the run" in x for x in said)
