"""`python -m benchmarks [--only NAME ...] [--quick]`: run every benchmarks/bench_*.py `run()`,
print one table and write outputs/bench/results.json (date, machine, every number).

A failing benchmark is reported and the others still run."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import Comparison, machine

ROOT = Path(__file__).resolve().parents[1]
RATIO_KEYS = ("ratio", "median_ratio", "speedup", "time_ratio")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
COLUMNS = ("benchmark", "comparison", "side A", "side B", "B/A time (median)", "repeats")


def discover() -> list[str]:
    """Names of the benchmark modules, e.g. ['loop', 'knobs', ...] for bench_loop.py, ..."""
    return sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))


def run_one(name: str, quick: bool) -> Any:
    """Import benchmarks.bench_<name> and call its run() (with quick= when it takes it)."""
    module = importlib.import_module(f"benchmarks.bench_{name}")
    params = inspect.signature(module.run).parameters
    return module.run(quick=quick) if "quick" in params else module.run()


def jsonable(obj: Any) -> Any:
    """Results as plain JSON: Comparisons as dicts, tensors as numbers, the rest as text."""
    if isinstance(obj, Comparison):
        return obj.to_dict()
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if obj is None or isinstance(obj, int | float | str | bool):
        return obj
    return str(obj)


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _side(d: dict, which: str) -> str:
    for key in (f"side_{which}", which, f"{which}_label"):
        if key in d:
            return _fmt(d[key])
    return ""


def rows_of(benchmark: str, obj: Any, path: str = "") -> list[dict]:
    """Table rows found in a benchmark's result: Comparisons, or dicts holding a ratio key."""
    if isinstance(obj, Comparison):
        return [
            {
                "benchmark": obj.benchmark,
                "comparison": obj.comparison,
                "side A": obj.describe("a"),
                "side B": obj.describe("b"),
                "B/A time (median)": f"{obj.ratio:.3f}",
                "repeats": str(len(obj.a_seconds)),
            }
        ]
    if isinstance(obj, dict):
        key = next((k for k in RATIO_KEYS if isinstance(obj.get(k), int | float)), None)
        if key is not None:
            return [
                {
                    "benchmark": benchmark,
                    "comparison": str(obj.get("comparison", path or key)),
                    "side A": _side(obj, "a"),
                    "side B": _side(obj, "b"),
                    "B/A time (median)": f"{obj[key]:.3f}"
                    + ("" if key == "ratio" else f" ({key})"),
                    "repeats": _fmt(obj.get("repeats", "")),
                }
            ]
        return [
            r
            for k, v in obj.items()
            for r in rows_of(benchmark, v, f"{path}.{k}" if path else str(k))
        ]
    if isinstance(obj, list | tuple):
        return [r for i, v in enumerate(obj) for r in rows_of(benchmark, v, f"{path}[{i}]")]
    return []


def table(rows: list[dict]) -> str:
    """A Markdown table of the rows (also readable on a terminal)."""
    widths = [max(len(c), *(len(r.get(c, "")) for r in rows)) if rows else len(c) for c in COLUMNS]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line([r.get(c, "") for c in COLUMNS]) for r in rows]
    return "\n".join(out)


def update_doc(doc_path: Path, doc: dict, text: str) -> None:
    """Replace the block between the BEGIN/END markers of BENCHMARKS.md with this run's table."""
    m = doc["machine"]
    block = (
        f"{BEGIN}\nRun {doc['date']}{' (--quick)' if doc['quick'] else ''} on {m['cpu']}, {m['cores']} cores, "
        f"torch {m['torch']}, device {m['device']}, load average {', '.join(f'{x:.2f}' for x in m['load_average'])}, env {m['env']}; "
        f"{doc['total_seconds']:.0f} s in all.\n\n{text}\n{END}"
    )
    old = doc_path.read_text()
    if BEGIN not in old or END not in old:
        raise SystemExit(f"{doc_path} has no {BEGIN} ... {END} block to update")
    doc_path.write_text(old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) :])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"benchmarks to run, of {discover()}")
    ap.add_argument(
        "--quick", action="store_true", help="smallest sizes, fewest repeats, no torch.compile"
    )
    ap.add_argument(
        "--out", type=Path, default=ROOT / "outputs" / "bench", help="folder for results.json"
    )
    ap.add_argument(
        "--write-doc", action="store_true", help="also put the table into BENCHMARKS.md"
    )
    ap.add_argument(
        "--doc-only",
        action="store_true",
        help="run nothing: put the table of --out/results.json (an earlier run) into BENCHMARKS.md",
    )
    args = ap.parse_args(argv)
    if args.doc_only:
        path = args.out / "results.json"
        if not path.is_file():
            ap.error(f"--doc-only: {path} not found; run `python -m benchmarks` first")
        doc = json.loads(path.read_text())
        update_doc(ROOT / "BENCHMARKS.md", doc, table(doc["rows"]))
        print(f"[bench] BENCHMARKS.md table from {path} ({doc['date']})", file=sys.stderr)
        return 0
    names = discover()
    unknown = sorted(set(n.removeprefix("bench_") for n in args.only or []) - set(names))
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; available: {names}")
    if args.only:
        names = [n for n in names if n in {o.removeprefix("bench_") for o in args.only}]
    if args.quick:
        os.environ["GENDA_BENCH_QUICK"] = "1"  # for benchmarks whose run() takes no arguments
    started = dt.datetime.now(dt.timezone.utc)
    results, rows = {}, []
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            value = run_one(name, args.quick)
            results[name] = {
                "status": "ok",
                "seconds": time.perf_counter() - t0,
                "result": jsonable(value),
            }
            rows += rows_of(name, value) or [
                {"benchmark": name, "comparison": "(no ratio; see results.json)"}
            ]
        except (Exception, SystemExit) as e:  # one broken benchmark must not stop the others
            err = f"{type(e).__name__}: {e}".splitlines()[0]
            results[name] = {
                "status": "failed",
                "seconds": time.perf_counter() - t0,
                "error": err,
                "traceback": traceback.format_exc(),
            }
            rows.append({"benchmark": name, "comparison": f"FAILED: {err}"[:120]})
        print(
            f"[bench] {name}: {results[name]['status']} in {results[name]['seconds']:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    text = table(rows)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {
        "date": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "ratio": "B/A = median over repeats of time_B / time_A (A is the subject: genda, or the knob on)",
        "rows": rows,
        "benchmarks": results,
        "total_seconds": (dt.datetime.now(dt.timezone.utc) - started).total_seconds(),
    }
    (args.out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "table.md").write_text(text + "\n")
    print(f"[bench] wrote {args.out / 'results.json'}", file=sys.stderr)
    if args.write_doc:
        update_doc(ROOT / "BENCHMARKS.md", doc, text)
    return 1 if any(r["status"] == "failed" for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
