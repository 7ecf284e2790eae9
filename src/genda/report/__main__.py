"""`python -m genda.report build [--scale S]` builds the report from existing run dirs (it never
trains); `python -m genda.report sweep DIR` writes a multirun's sweep.md / sweep.csv /
sweep_grid.png. Training the manifest's runs, then building, is `python -m genda.reproduce`
(`make reproduce-report`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from genda.config import SCALES
from genda.errors import GendaError
from genda.report.manifest import DEFAULT_MANIFEST, load_manifest
from genda.report.records import RUNNER_LAST_FILE


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m genda.report", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sw = sub.add_parser("sweep", help="table (mean ± std over seeds) and grid of a multirun dir")
    sw.add_argument("dir", type=Path, help="the sweep dir (holds 0/, 1/, ... and multirun.yaml)")
    s = sub.add_parser("build", help="build the report from existing run dirs; trains nothing")
    s.add_argument(
        "--scale", choices=SCALES, default=None, help="run scale (default: the scale run last)"
    )
    s.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    s.add_argument("--runs", type=Path, default=Path("outputs/report_runs"), help="run dirs root")
    s.add_argument("--out", type=Path, default=Path("outputs/report"), help="report folder")
    s.add_argument(
        "--seeds", type=int, default=None, help="seeds per entry (default: the manifest's)"
    )
    return p.parse_args(argv)


def _last_scale(runs: Path) -> str:
    logs = sorted(runs.glob(f"*/{RUNNER_LAST_FILE}"), key=lambda p: p.stat().st_mtime)
    if not logs:
        raise GendaError(
            f"no report runs under {runs}: train them with `python -m genda.reproduce --scale S`"
        )
    return logs[-1].parent.name


def moved_run(args: list[str]) -> str:
    """The one line `genda.report run ...` answers: the report never trains (it cannot import
    the trainer, `genda.reproduce`, which sits above it), so the command is named, not run."""
    cmd = shlex.join(["python", "-m", "genda.reproduce", *args])
    return (
        f"genda.report: error: `run` moved out of the report, which only reads run dirs; "
        f"train and build with: {cmd}  (or `make reproduce-report`)"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        print(moved_run(argv[1:]), file=sys.stderr)
        return 2
    a = _args(argv)
    if a.command == "sweep":
        from genda.report.sweep import write

        try:
            out = write(a.dir)
        except GendaError as e:
            print(f"genda.report: error: {e}", file=sys.stderr)
            return 2
        print("[report] wrote " + ", ".join(str(p) for p in out.values()))
        return 0
    from genda.report.build import build_report

    try:
        manifest = load_manifest(a.manifest)
        runs = a.runs.resolve()
        scale = a.scale or _last_scale(runs)
        md, page = build_report(manifest, scale, runs, a.out, a.seeds)
    except GendaError as e:
        print(f"genda.report: error: {e}", file=sys.stderr)
        return 2
    print(f"[report] wrote {md} and {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
