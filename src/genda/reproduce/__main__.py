"""`python -m genda.reproduce --scale smoke|cpu|full [--only ITEM] [--jobs N] [key=value ...]`
trains (or skips, or resumes) every run of the report manifest, then builds the report from the
run dirs (`python -m genda.report build` rebuilds it without training). `make reproduce-report`
runs it with `--scale $(SCALE) --jobs $(JOBS)`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from genda.config import SCALES
from genda.errors import GendaError
from genda.report.manifest import DEFAULT_MANIFEST, load_manifest
from genda.report.records import FINISHED_FORMAT, REPRODUCE_FILE

PROG = "python -m genda.reproduce"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("--scale", choices=SCALES, default="cpu", help="run scale (default cpu)")
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--runs", type=Path, default=Path("outputs/report_runs"), help="run dirs root")
    p.add_argument("--out", type=Path, default=Path("outputs/report"), help="report folder")
    p.add_argument(
        "--seeds", type=int, default=None, help="seeds per entry (default: the manifest's)"
    )
    p.add_argument("--only", help="run only the entries of this item (gan, vae, ...) or entry id")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at once, each with an equal share of the cores (default 1)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        help="extra Hydra overrides for every run, e.g. logger.mode=disabled",
    )
    a = p.parse_args(argv)
    # a stray word (`run`, from the old `genda.report run`) would fail every run one by one
    bad = [o for o in a.overrides if "=" not in o and not o.startswith("~")]
    if bad:
        p.error(f"not a Hydra override (key=value): {' '.join(bad)}")
    if a.jobs < 1:
        p.error("--jobs must be at least 1")
    return a


def main(argv: list[str] | None = None) -> int:
    from genda.report.build import build_report
    from genda.reproduce.runner import TAG, run_manifest

    a = _args(argv)
    t0 = time.time()
    try:
        manifest = load_manifest(a.manifest)
        runs = a.runs.resolve()
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
            f"{TAG} {len(outcomes) - len(failed)} complete, {len(failed)} not complete"
            + "".join(f"\n{TAG}   {o.run.name}: {o.state}: {o.error}" for o in failed),
            flush=True,
        )
        # the wall time of this invocation (evaluators, runs), which the report's header states
        record = {"started": time.strftime(FINISHED_FORMAT, time.localtime(t0)),
                  "seconds_to_build": round(time.time() - t0, 1), "jobs": a.jobs,
                  "argv": list(argv if argv is not None else sys.argv[1:])}
        (runs / a.scale).mkdir(parents=True, exist_ok=True)
        (runs / a.scale / REPRODUCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
        md, page = build_report(manifest, a.scale, runs, a.out, a.seeds)
    except GendaError as e:
        print(f"genda.reproduce: error: {e}", file=sys.stderr)
        return 2
    print(f"[report] wrote {md} and {page}; {(time.time() - t0) / 60:.1f} min in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
