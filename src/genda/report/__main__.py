"""`python -m genda.report run --scale smoke|cpu|full [--only ITEM]` runs the manifest and builds
the report; `python -m genda.report build [--scale S]` rebuilds it from existing run dirs;
`python -m genda.report sweep DIR` writes a multirun's sweep.md / sweep.csv / sweep_grid.png."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genda.config import SCALES
from genda.errors import GendaError
from genda.report.manifest import DEFAULT_MANIFEST, load_manifest


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m genda.report", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sw = sub.add_parser("sweep", help="table (mean ± std over seeds) and grid of a multirun dir")
    sw.add_argument("dir", type=Path, help="the sweep dir (holds 0/, 1/, ... and multirun.yaml)")
    for name, help_ in (
        ("run", "run (or skip/resume) every manifest run, then build the report"),
        ("build", "build the report from existing run dirs; trains nothing"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument(
            "--scale",
            choices=SCALES,
            default=None if name == "build" else "cpu",
            help="run scale (build: default = the scale run last)",
        )
        s.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
        s.add_argument(
            "--runs", type=Path, default=Path("outputs/report_runs"), help="run dirs root"
        )
        s.add_argument("--out", type=Path, default=Path("outputs/report"), help="report folder")
        s.add_argument(
            "--seeds", type=int, default=None, help="seeds per entry (default: the manifest's)"
        )
        if name == "run":
            s.add_argument(
                "--only", help="run only the entries of this item (gan, vae, ...) or entry id"
            )
            s.add_argument(
                "--jobs",
                type=int,
                default=1,
                help="runs at once, each with an equal share of the cores (default 1)",
            )
            s.add_argument(
                "overrides",
                nargs="*",
                help="extra Hydra overrides for every run, e.g. logger.mode=disabled",
            )
    return p.parse_args(argv)


def _last_scale(runs: Path) -> str:
    logs = sorted(runs.glob("*/runner_last.json"), key=lambda p: p.stat().st_mtime)
    if not logs:
        raise GendaError(
            f"no report runs under {runs}: run `python -m genda.report run --scale S` first"
        )
    return logs[-1].parent.name


def main(argv: list[str] | None = None) -> int:
    from genda.report.build import build_report
    from genda.report.runner import run_manifest

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
    try:
        manifest = load_manifest(a.manifest)
        runs = a.runs.resolve()
        if a.command == "run":
            outcomes = run_manifest(
                manifest,
                a.scale,
                runs,
                a.overrides,
                a.only,
                a.seeds,
                say=lambda m: print(m, flush=True),
                jobs=a.jobs,
            )
            failed = [o for o in outcomes if o.state != "complete"]
            print(
                f"[report] {len(outcomes) - len(failed)} complete, {len(failed)} not complete"
                + "".join(f"\n[report]   {o.run.name}: {o.state}: {o.error}" for o in failed),
                flush=True,
            )
        scale = a.scale or _last_scale(runs)
        md, page = build_report(manifest, scale, runs, a.out, a.seeds)
    except GendaError as e:
        print(f"genda.report: error: {e}", file=sys.stderr)
        return 2
    print(f"[report] wrote {md} and {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
