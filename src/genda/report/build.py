"""The report builder: reads the manifest's run dirs (never trains) and writes
`REPORT.md` + a self-contained `report.html` with every course report item (docs/protocols.md).

Each item's section lives in `genda.report.sections.<item>`; the shared helpers in
`genda.report.core`; the course's and published numbers, with their sources, in
`baselines.yaml`. A section appears when the manifest has runs of its item at the scale. A
missing run or artefact becomes a visible "missing" note; a failed run a failed row."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from genda.report import doc as D
from genda.report.core import Core, load_baselines
from genda.report.manifest import Manifest, report_group
from genda.report.records import FINISHED_FORMAT, REPRODUCE_FILE, read_json
from genda.report.sections import MODULES

__all__ = ["SECTIONS", "Builder", "build_report", "load_baselines", "training_time_line"]

SECTIONS = {
    **{m.ITEM: m.TITLE for m in MODULES},
    "arch": "Architecture summaries",
    "runs": "All runs",
}
ITEM_SECTIONS = {m.ITEM: m for m in MODULES}


def training_time_line(runners: list[dict]) -> str:
    """One sentence on the training time, from each run's runner.json (its last execution):
    the sum of the runs' seconds and the span from the first start to the last finish."""
    timed = []
    for r in runners:
        try:
            end = time.mktime(time.strptime(str(r["finished"]), FINISHED_FORMAT))
            timed.append((end - float(r["seconds"]), end, float(r["seconds"])))
        except (KeyError, TypeError, ValueError):
            continue
    if not timed:
        return "Training time: not recorded (no run was executed by `genda.reproduce`)."
    start, end = min(t[0] for t in timed), max(t[1] for t in timed)
    fmt = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t))  # noqa: E731
    return (f"Training time, as last executed: {sum(t[2] for t in timed) / 60:.1f} run-minutes over "
            f"{len(timed)} runs, {(end - start) / 60:.1f} min from the first start ({fmt(start)}) to the "
            f"last finish ({fmt(end)}); runs skipped as complete keep their earlier time.")


class Builder(Core):
    """Collects the run records of one scale and renders the report into `out_dir`."""

    def wall_time_line(self) -> str:
        """' End to end: N min ...' from the last `genda.reproduce` of this scale ('' if none)."""
        rec = read_json(self.runs_root / self.scale / REPRODUCE_FILE) or {}
        if "seconds_to_build" not in rec:
            return ""
        return (f" **End to end: {rec['seconds_to_build'] / 60:.1f} min** (the last `python -m "
                f"genda.reproduce --scale {self.scale}`, started {rec.get('started', '?')} with "
                f"--jobs {rec.get('jobs', '?')}: evaluator training and every run it executed or "
                "skipped, up to this page's build).")

    def sections(self) -> dict[str, str]:
        """The sections of this report: the items the manifest has runs of, then the rest."""
        have = {r.run.entry.item for r in self.records}
        return {k: t for k, t in SECTIONS.items() if k not in ITEM_SECTIONS or k in have}

    def header(self) -> None:
        n = {
            s: sum(r.state == s for r in self.records)
            for s in ("complete", "failed", "interrupted", "not run")
        }
        self.doc.add(
            D.Para(
                f"Built {time.strftime('%Y-%m-%d %H:%M:%S')} from the run dirs of `{self.manifest.path.name}` at "
                f"scale **{self.scale}** (W&B group `{report_group(self.manifest, self.scale)}`). Runs: "
                f"{n['complete']} complete, {n['failed']} failed, {n['interrupted']} interrupted, "
                f"{n['not run']} not run (of {len(self.records)}). "
                + training_time_line([r.runner for r in self.records])
                + self.wall_time_line()
            ),
            D.Para(
                "Every number below names its data — an **embedded stand-in** built offline by genda "
                "(docs/data.md in the genda repository) or the user's **real** course data — its "
                "scale, seeds and run dir (linked relative to this report). Numbers on stand-ins are "
                "not comparable with the course's, whose baselines are shown beside each table for "
                "orientation, each with its source. Each section lists the hyperparameters read from "
                "its runs' saved config.yaml and the training curves of their metrics.jsonl."
            ),
        )
        self.doc.add(self.data_table())

    def data_table(self) -> D.Table:
        """Each domain the runs used: stand-in or real (logged), and its provenance line (the
        one a run logged in eval.json where there is one, else the domain registry's)."""
        from genda.data.domain import domain_names

        what = domain_names()
        used: dict[str, bool | None] = {}
        for r in self.records:
            for name, emb in r.domains():
                used[name] = used.get(name) if emb is None else emb
            info = (r.json_artifact("eval.json") or {}).get("data") or {}
            for d in (info, *(v for v in info.values() if isinstance(v, dict))):
                if d.get("domain") and d.get("provenance"):
                    what[d["domain"]] = d["provenance"]
        kind = {True: "embedded stand-in", False: "real"}
        rows = [
            [f"`{n}`", kind.get(e, "not logged"), what.get(n, "?")] for n, e in sorted(used.items())
        ]
        return D.Table(["domain", "kind", "provenance"], rows, "Data used by the report's runs")

    def arch(self) -> None:
        for item in ("vae", "ddpm", "ddim", "uda", "classifier"):
            for recs in self.items(item).values():
                self.doc.add(*self.architectures(recs))

    def runs(self) -> None:
        rows = [
            [
                f"`{r.run.name}`",
                r.run.entry.item,
                r.state,
                str(r.steps if r.steps is not None else "—"),
                r.data_text(),
                self.run_link(r),
                r.error or "",
            ]
            for r in self.records
        ]
        self.doc.add(D.Table(["run", "item", "state", "steps", "data", "run dir", "error"], rows))

    def build(self) -> tuple[Path, Path]:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.img.exists():
            shutil.rmtree(self.img)
        self.img.mkdir()
        self.header()
        for key, title in self.sections().items():
            self.doc.add(D.Heading(title))
            if key in ITEM_SECTIONS:
                ITEM_SECTIONS[key].render(self)
            else:
                getattr(self, key)()
        return D.write(self.doc, self.out)


def build_report(
    manifest: Manifest, scale: str, runs_root: Path, out_dir: Path, seeds: int | None = None
) -> tuple[Path, Path]:
    """Write REPORT.md and report.html for `scale` from the run dirs under `runs_root`."""
    return Builder(manifest, scale, runs_root, out_dir, seeds).build()
