"""One artefact schema: each task declares its artefact roles (Task.ARTEFACTS), the loop writes
the files found to <run dir>/artifacts/index.json at the end of a run, and the report looks for
artefacts only there. Every role the report reads is declared by a task; a run without an index
(made before it) gives "missing" cells, not a traceback."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
from pathlib import Path

import pytest

import genda.tasks
from genda.kernel import ARTEFACT_INDEX, ARTEFACT_INDEX_SCHEMA
from genda.report.build import build_report
from genda.report.manifest import load_manifest
from genda.report.records import RunRecord
from genda.tasks.base import Every, Task
from genda.tasks.ddim_faces import DDIMFaceTask
from genda.train.artifacts import find_roles, write_index

REPORT = Path(genda.tasks.__file__).resolve().parents[1] / "report"
ROLE_READERS = ("role", "role_files", "role_json")  # RunRecord's readers of index.json


def _task_classes() -> set[type[Task]]:
    for mod in pkgutil.iter_modules(genda.tasks.__path__):
        importlib.import_module(f"genda.tasks.{mod.name}")
    found, todo = set(), [Task]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return {c for c in found if c.__module__.startswith("genda.")}  # not this file's _Fake


def _roles_the_report_reads() -> dict[str, str]:
    """{role: file} of every RunRecord.role / role_files / role_json call in genda.report."""
    roles = {}
    for path in REPORT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ROLE_READERS and node.args
                    and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "self")):
                arg = node.args[0]
                where = f"{path.name}:{node.lineno}"
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), \
                    f"{where}: name the role literally, so this test sees it"
                roles[arg.value] = where
    return roles


def test_every_role_the_report_reads_is_declared_by_a_task() -> None:
    declared = {role for cls in _task_classes() for role in cls.ARTEFACTS}
    read = _roles_the_report_reads()
    assert len(read) >= 15, sorted(read)  # GAN, VAE, DDPM, DDIM and UDA figures
    undeclared = {r: where for r, where in read.items() if r not in declared}
    assert not undeclared, f"the report reads roles no task declares: {undeclared}"


def test_declarations_are_name_tuples_or_every() -> None:
    for cls in _task_classes():
        for role, spec in cls.ARTEFACTS.items():
            ok = isinstance(spec, Every) or (
                isinstance(spec, tuple) and spec and all(isinstance(s, str) for s in spec))
            assert ok, f"{cls.__name__}.ARTEFACTS[{role!r}] = {spec!r}"
    assert Task.ARTEFACTS == {}  # a task that declares nothing gets an empty index


class _Fake(Task):
    ARTEFACTS = {"grid": ("grid_labelled.png", "grid.png"), "rows": Every("rows/*.png"),
                 "absent": ("nothing.png",), "none_many": Every("none/*.png")}


def test_index_lists_the_first_existing_file_of_each_role(tmp_path: Path) -> None:
    art = tmp_path / "artifacts"
    for name in ("grid.png", "rows/01.png", "rows/00.png"):
        (art / name).parent.mkdir(parents=True, exist_ok=True)
        (art / name).write_bytes(b"x")
    path = write_index(art, _Fake)
    assert path == art / ARTEFACT_INDEX and not list(art.glob(".*.tmp"))  # atomic: no temp left
    doc = json.loads(path.read_text())
    assert doc == {"schema": ARTEFACT_INDEX_SCHEMA, "task": "_Fake",
                   "artefacts": {"grid": "grid.png", "rows": ["rows/00.png", "rows/01.png"]}}
    (art / "grid_labelled.png").write_bytes(b"x")
    assert find_roles(art, _Fake.ARTEFACTS)["grid"] == "grid_labelled.png"  # first candidate wins
    with pytest.raises(TypeError, match="not 'grid.png'"):
        find_roles(art, {"grid": "grid.png"})  # a bare string, not a 1-tuple


def test_report_reads_roles_from_the_index_only(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    art = run_dir / "artifacts"
    (art / "rows").mkdir(parents=True)
    for name in ("grid.png", "rows/00.png", "rows/01.png", "other.png"):
        (art / name).write_bytes(b"x")
    rec = RunRecord(type("Run", (), {"run_dir": run_dir})())
    assert rec.index is None and rec.role("grid") is None  # no index yet: nothing found
    write_index(art, _Fake)
    rec = RunRecord(rec.run)
    assert rec.role("grid") == art / "grid.png" and rec.role("absent") is None
    assert rec.role_files("rows") == [art / "rows/00.png", art / "rows/01.png"]
    (art / "rows/01.png").unlink()  # deleted after the index was written
    assert rec.role_files("rows") == [art / "rows/00.png"]
    bad = {"schema": ARTEFACT_INDEX_SCHEMA, "task": "x",
           "artefacts": {"a": "../../etc/passwd", "b": "/etc/passwd", "c": ["other.png", 3]}}
    (art / ARTEFACT_INDEX).write_text(json.dumps(bad))
    rec = RunRecord(rec.run)
    assert rec.role("a") is None and rec.role("b") is None and rec.role("c") == art / "other.png"
    (art / ARTEFACT_INDEX).write_text(json.dumps({**bad, "schema": 99}))
    assert RunRecord(rec.run).index is None  # another schema: read as no index


def test_runs_without_an_index_get_missing_cells_not_a_traceback(tmp_path: Path) -> None:
    from .test_report import _fake_run

    spec = {"group": "t", "runs": {"gan_a": {"experiment": "dcgan_a", "item": "gan", "label": "A"}}}
    (tmp_path / "m.yaml").write_text(json.dumps(spec))
    m = load_manifest(tmp_path / "m.yaml")
    run = m.expand("smoke", tmp_path / "runs")[0]
    _fake_run(run, "faces_embedded", {"fid": 100.0}, {"first32.png": "png"})
    (run.run_dir / "artifacts" / ARTEFACT_INDEX).unlink()  # a run made before the index
    build_report(m, "smoke", tmp_path / "runs", tmp_path / "out")
    md = (tmp_path / "out" / "REPORT.md").read_text()
    assert "**missing:** first-32 grid of `gan_a/seed0`" in md and "no artifacts/index.json" in md


@pytest.mark.slow
def test_a_smoke_run_writes_a_valid_index(smoke_run) -> None:
    art = smoke_run("ddim_faces") / "artifacts"
    doc = json.loads((art / ARTEFACT_INDEX).read_text())
    assert doc["schema"] == ARTEFACT_INDEX_SCHEMA and doc["task"] == "DDIMFaceTask"
    assert set(doc["artefacts"]) == set(DDIMFaceTask.ARTEFACTS)  # the smoke run writes every role
    assert doc["artefacts"]["ddim_eta_grid"] == "eta_grid_labelled.png"
    assert doc["artefacts"]["ddim_images"] == [f"ddim/{i:02d}.png" for i in range(4)]
    for rel in doc["artefacts"].values():
        for p in rel if isinstance(rel, list) else [rel]:
            assert (art / p).is_file(), p
