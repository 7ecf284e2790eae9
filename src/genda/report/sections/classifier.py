"""Digit classifier (LeNet): validation accuracy per run, hyperparameters and curves."""

from __future__ import annotations

from genda.report import doc as D
from genda.report.core import Core
from genda.report.figures import series
from genda.report.records import mean_std, seed_list

ITEM = "classifier"
TITLE = "Digit classifier (LeNet)"


def render(b: Core) -> None:
    groups = b.items(ITEM)
    rows = []
    for recs in groups.values():
        ok = [r for r in recs if r.ok]
        rows.append(
            [
                b.label(recs),
                mean_std([r.value("acc") for r in ok], 100.0, 2),
                b.first_ok(recs).data_text(),
                seed_list(r.run.seed for r in ok),
                b.run_link(b.first_ok(recs)) if ok else f"failed: {recs[0].error}",
            ]
        )
    b.doc.add(
        D.Table(
            ["run", "val accuracy (%)", "data", "seeds", "run dir"],
            rows,
            f"LeNet (the course's digit classifier); scale {b.scale}",
        ),
        b.hparam_table({b.label(recs): recs for recs in groups.values()}, "Digit classifier"),
    )
    for recs in groups.values():
        r = b.first_ok(recs)
        if not r.ok:
            continue
        m = r.metrics
        spec = [("cross-entropy", [("train", series(m, "train/loss")), ("val", series(m, "val/loss"))], None),
                ("accuracy", [("train", series(m, "train/acc")), ("val", series(m, "val/acc"))], None)]
        b.doc.add(b.curves(spec, r.run.name, f"{b.label(recs)} ({r.run.name})",
                           f"{b.label(recs)}: training curves (metrics.jsonl)",
                           f"classifier curves in {b.run_link(r)}/metrics.jsonl"))
