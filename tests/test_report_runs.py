"""`python -m genda.reproduce` end to end: a failing run is reported while the rest completes,
a second invocation trains nothing, an interrupted run resumes, and the smoke-scale report of
the real manifest has every section with no broken image links (`python -m genda.report build`
re-renders it from the run dirs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from genda.report.build import SECTIONS
from genda.report.manifest import DEFAULT_MANIFEST, load_manifest

from .conftest import genda

FIXTURE = {
    "group": "t",
    "runs": {
        "clf": {"experiment": "classifier_mnist", "item": "classifier", "label": "LeNet"},
        "bad": {
            "experiment": "classifier_mnist",
            "item": "classifier",
            "overrides": ["trainer.no_such_key=1"],
        },
    },
}


def _report(tmp: Path, command: str, *args: str, manifest: Path | None = None):
    """`run`: python -m genda.reproduce (trains, then builds); `build`: python -m genda.report build."""
    module, base = ("genda.reproduce", []) if command == "run" else ("genda.report", [command])
    base += ["--runs", str(tmp / "runs"), "--out", str(tmp / "out")]
    if manifest is not None:
        base += ["--manifest", str(manifest)]
    return genda(*base, *args, module=module, timeout=3600)


def _last(tmp: Path, scale: str = "smoke") -> dict[str, dict]:
    return {
        r["run"]: r for r in json.loads((tmp / "runs" / scale / "runner_last.json").read_text())
    }


@pytest.mark.slow
def test_failed_run_is_reported_rest_completes_and_rerun_trains_nothing(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(FIXTURE, sort_keys=False))
    # two at once (--jobs 2): the failure of one does not disturb the other
    first = _report(
        tmp_path,
        "run",
        "--scale",
        "smoke",
        "--jobs",
        "2",
        "logger.mode=disabled",
        manifest=manifest,
    )
    assert first.returncode == 0, first.stderr
    last = _last(tmp_path)
    assert last["clf/seed0"]["state"] == "complete" and last["clf/seed0"]["action"] == "ran"
    assert (
        last["bad/seed0"]["state"] == "failed"
        and "trainer.no_such_key" in last["bad/seed0"]["error"]
    )
    md = (tmp_path / "out" / "REPORT.md").read_text()
    assert re.search(r"\| `bad/seed0` \| classifier \| failed \|.*trainer\.no_such_key", md)
    assert re.search(r"\| LeNet \| \d+\.\d\d \(1 seed\) \| mnist \(embedded stand-in\)", md)
    run = tmp_path / "runs" / "smoke" / "clf" / "seed0"
    stamp = (run / "metrics.jsonl").stat().st_mtime_ns
    second = _report(tmp_path, "run", "--scale", "smoke", "logger.mode=disabled", manifest=manifest)
    assert second.returncode == 0, second.stderr
    assert "clf/seed0: complete, same config: skipped" in second.stdout
    assert _last(tmp_path)["clf/seed0"]["action"] == "skipped"
    assert (run / "metrics.jsonl").stat().st_mtime_ns == stamp
    # an interrupted run with the same config resumes from its checkpoint
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "interrupted"}))
    third = _report(
        tmp_path,
        "run",
        "--scale",
        "smoke",
        "--only",
        "clf",
        "logger.mode=disabled",
        manifest=manifest,
    )
    assert (
        "clf/seed0: resuming" in third.stdout
        and _last(tmp_path)["clf/seed0"]["action"] == "resumed"
    )
    assert "resumed from" in (run / "runner.log").read_text()
    # a changed config is rerun from scratch; the old results are kept aside
    fourth = _report(
        tmp_path,
        "run",
        "--scale",
        "smoke",
        "--only",
        "clf",
        "logger.mode=disabled",
        "trainer.max_steps=3",
        manifest=manifest,
    )
    assert "clf/seed0: running" in fourth.stdout
    assert json.loads((run / "status.json").read_text())["step"] == 3
    assert len(list((tmp_path / "runs" / "smoke" / ".stale").iterdir())) == 1


@pytest.mark.slow
def test_smoke_report_of_the_manifest(tmp_path: Path) -> None:
    """The real manifest at scale=smoke on embedded data (a few minutes on 2 idle cores)."""
    first = _report(tmp_path, "run", "--scale", "smoke", "logger.mode=disabled")
    assert first.returncode == 0, first.stderr
    md = (tmp_path / "out" / "REPORT.md").read_text()
    page = (tmp_path / "out" / "report.html").read_text()
    items = {e.item for e in load_manifest(DEFAULT_MANIFEST).entries}
    for key, title in SECTIONS.items():
        shown = key in items or key in ("arch", "runs")  # a section per item of the manifest
        assert (f"## {title}" in md) == shown and (f"<h2>{title}</h2>" in page) == shown
    assert md.count("hyperparameters from each run's saved config.yaml") == len(items)
    assert "__curves.png" in md and "[ganin2015_t1]" in md and "(n=1)" not in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 10 and all((tmp_path / "out" / p).is_file() for p in links)
    assert page.count("<img ") == len(links)
    # every item of the course reports the manifest asks for (docs/protocols.md)
    for item in ("A: DCGAN (course)", "B: DCGAN", "SN-GAN", "WGAN (weight clipping, RMSprop)",
                 "WGAN-GP", "KID", "diversity", "face score", "VAE", "reconstruction",
                 "10×10 grid", "reverse process", "η", "slerp", "linear interpolation",
                 "trained on source", "DANN", "trained on target", "ADDA", "| DANN + MCC |", "DSN",
                 "t-SNE", "img/s", "End to end: ", "Training curves"):
        assert item in md, item
    verdicts = [x for x in md.splitlines() if x.startswith("**Verdict** — ")]
    assert len(verdicts) >= len(items) - ("classifier" in items), verdicts  # one per section
    ran = _last(tmp_path)
    assert all(r["action"] == "ran" for r in ran.values())
    second = _report(tmp_path, "run", "--scale", "smoke", "logger.mode=disabled")
    assert second.returncode == 0, second.stderr
    again = _last(tmp_path)
    done = [k for k, r in ran.items() if r["state"] == "complete"]
    assert done and all(again[k]["action"] == "skipped" for k in done)
    rebuilt = _report(tmp_path, "build")
    assert rebuilt.returncode == 0 and "wrote" in rebuilt.stdout
