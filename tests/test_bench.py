"""The benchmark runner: one table, results.json with date/machine/numbers, failures isolated.
No timing assertions: speed is reported by `make bench`, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks import __main__ as runner
from benchmarks.common import compare


def _fake_side(times: list[float], calls: list[str], label: str):
    """A side that reports its own seconds from `times` and records call order."""
    it = iter(times)

    def fn() -> float:
        calls.append(label)
        return next(it)

    return fn


def test_compare_alternates_and_takes_the_median_ratio() -> None:
    calls: list[str] = []
    row = compare(
        "t",
        "fake",
        ("A", _fake_side([9.0, 1.0, 2.0, 4.0], calls, "a")),
        ("B", _fake_side([9.0, 3.0, 2.0, 2.0], calls, "b")),
        repeats=3,
        warmup=1,
        work=10,
    )
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then ABBA order
    assert row.a_seconds == [1.0, 2.0, 4.0] and row.b_seconds == [3.0, 2.0, 2.0]
    assert row.ratio == 1.0  # median of 3.0, 1.0, 0.5
    assert row.to_dict()["a_per_s"] == 5.0  # 10 images / median 2 s


def test_runner_reports_a_failing_benchmark_and_runs_the_rest(tmp_path: Path, monkeypatch) -> None:
    def fake_run(name: str, quick: bool):
        if name == "broken":
            raise RuntimeError("boom\nsecond line")
        return {
            "x": compare(
                "good", "fake A vs B", ("A", lambda: 1.0), ("B", lambda: 3.0), repeats=2, warmup=0
            ),
            "other": {
                "comparison": "their row",
                "time_ratio": 2.5,
                "a": "x",
                "b": "y",
                "repeats": 1,
            },
        }

    monkeypatch.setattr(runner, "discover", lambda: ["broken", "good"])
    monkeypatch.setattr(runner, "run_one", fake_run)
    assert runner.main(["--quick", "--out", str(tmp_path)]) == 1
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["benchmarks"]["broken"]["status"] == "failed"
    assert doc["benchmarks"]["broken"]["error"] == "RuntimeError: boom"
    assert doc["benchmarks"]["good"]["status"] == "ok"
    ratios = [r.get("B/A time (median)") for r in doc["rows"]]
    assert ratios == [None, "3.000", "2.500 (time_ratio)"]
    assert "FAILED" in (tmp_path / "table.md").read_text()


def test_unknown_benchmark_is_a_clear_error(capsys) -> None:
    with pytest.raises(SystemExit):
        runner.main(["--only", "nonexistent"])
    assert "unknown benchmark(s) ['nonexistent']" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_of_one_real_benchmark_writes_results_json(tmp_path: Path) -> None:
    assert runner.main(["--only", "scaling", "--quick", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["quick"] is True and doc["date"]
    assert {"cpu", "cores", "torch", "device"} <= doc["machine"].keys()
    assert doc["benchmarks"]["scaling"]["status"] == "ok"
    rows = [r for r in doc["rows"] if r["benchmark"] == "scaling"]
    assert len(rows) == 4 and all(set(runner.COLUMNS) <= r.keys() for r in rows)
    for key in ("epoch_2x", "epoch_4x", "sampling_2x", "sampling_4x"):
        res = doc["benchmarks"]["scaling"]["result"][key]
        assert res["ratio"] > 0 and len(res["a_seconds"]) == len(res["b_seconds"]) == res["repeats"]


def test_doc_only_writes_the_table_of_an_earlier_run_without_running(
    tmp_path: Path, monkeypatch
) -> None:
    def must_not_run(name: str, quick: bool):
        raise AssertionError("--doc-only ran a benchmark")

    doc_path = tmp_path / "BENCHMARKS.md"
    doc_path.write_text(f"intro\n\n{runner.BEGIN}\nold table\n{runner.END}\n\nafter\n")
    results = {
        "date": "2026-11-24T02:05:00+00:00",
        "quick": False,
        "total_seconds": 480.0,
        "machine": {
            "cpu": "AMD EPYC",
            "cores": 2,
            "torch": "2.14.1",
            "device": "cpu",
            "load_average": [0.3, 0.5, 0.6],
            "env": {},
        },
        "rows": [{"benchmark": "good", "comparison": "A vs B", "B/A time (median)": "3.000"}],
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    monkeypatch.setattr(runner, "run_one", must_not_run)
    monkeypatch.setattr(runner, "ROOT", tmp_path)
    assert runner.main(["--doc-only", "--out", str(tmp_path)]) == 0
    text = doc_path.read_text()
    assert text.startswith("intro\n") and text.endswith("after\n") and "old table" not in text
    assert "Run 2026-11-24T02:05:00+00:00 on AMD EPYC, 2 cores" in text and "| 3.000" in text

    with pytest.raises(SystemExit):
        runner.main(["--doc-only", "--out", str(tmp_path / "nothing")])
