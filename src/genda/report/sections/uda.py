"""Domain adaptation: one accuracy table over pairs (trained on source / DANN / trained on
target / ADDA, and DSN where its runs exist), the course's and published numbers with their
sources, hyperparameters per method, training curves per pair and t-SNE per method."""

from __future__ import annotations

from genda.report import doc as D
from genda.report import verdicts
from genda.report.core import LEGEND_WIDTH, Core, cite, load_baselines, sources_table
from genda.report.figures import series
from genda.report.records import RunRecord, mean_std, seed_list

ITEM = "uda"
TITLE = "Domain adaptation: DANN and the improved methods (ADDA, DSN)"
METHODS = ("source_only", "dann", "dann_ft", "target_only", "adda", "mcc", "dsn")
OPTIONAL = ("dann_ft", "mcc", "dsn")  # a column only when the manifest has such runs
IMPROVED = ("mcc", "dsn")  # the methods beyond ADDA, checked against DANN by the verdicts
NAMES = {
    "source_only": "trained on source",
    "dann": "DANN",
    "dann_ft": "DANN from source only",
    "target_only": "trained on target",
    "adda": "ADDA",
    "mcc": "DANN + MCC",
    "dsn": "DSN",
}


def method(r: RunRecord) -> str:
    """source_only | dann | target_only (the UDA task's mode) | dann_ft (DANN fine-tuning a
    source-only run, `model.source_ckpt`) | adda | mcc (a UDA run with the MCC loss) | dsn."""
    model = r.config.get("model") or {}
    target = str(model.get("_target_", ""))
    if float(model.get("mcc_weight") or 0.0) > 0:
        return "mcc"
    exp = r.run.entry.experiment
    if target.endswith("DSNTask") or exp.startswith("dsn"):
        return "dsn"
    if target.endswith("ADDATask") or exp.startswith("adda"):
        return "adda"
    mode = str(model.get("mode") or dict(r.run.variant).get("model.mode") or "dann")
    return "dann_ft" if mode == "dann" and model.get("source_ckpt") else mode


def _pairs(b: Core) -> dict[str, dict[str, list[RunRecord]]]:
    pairs: dict[str, dict[str, list[RunRecord]]] = {}
    for r in b.records:
        if r.run.entry.item == ITEM:
            pair = str(r.run.entry.info.get("pair", r.run.entry.id))
            pairs.setdefault(pair, {}).setdefault(method(r), []).append(r)
    return pairs


def _cell(recs: list[RunRecord]) -> str:
    if not recs:
        return "not in manifest"
    ok = [r for r in recs if r.ok]
    cell = mean_std([r.value("target_acc") for r in ok], 100.0, 1)
    states = [r.state for r in recs if not r.ok]
    return cell + "".join(f" ({states.count(s)} {s})" for s in sorted(set(states)))


def reference_tables() -> list:
    """The course's numbers to beat, two students' full tables and the published DANN table."""
    base = load_baselines()
    keys = [x["baseline"]["source"] for x in base["course_uda"]]
    keys += [x["best_student"]["source"] for x in base["course_uda"]]
    keys += [x["source"] for x in base["student_uda"] + base["published_dann"]]
    three = ["source_only", "dann", "target_only"]
    return [
        D.Table(
            ["pair (course data)", "method", "course baseline", "best student"],
            [[x["pair"], x["method"], cite(x["baseline"]), cite(x["best_student"])]
             for x in base["course_uda"]],
            "Course numbers to beat, target val accuracy (%) on the course's real data",
        ),
        D.Table(
            ["pair (course data)", "source", "source only", "DANN", "train on target"],
            [[x["pair"], f"[{x['source']}]", *(x[k] for k in three)] for x in base["student_uda"]],
            "Two student reports' full tables (%, course data, one run each)",
        ),
        D.Table(
            ["pair (real data)", "source", "source only", "DANN", "train on target"],
            [[x["pair"], f"[{x['source']}]", *(x[k] for k in three)] for x in base["published_dann"]],
            "Published DANN (Ganin & Lempitsky 2015, Table 1)",
        ),
        sources_table(keys),
    ]


def curves(b: Core, pair: str, by: dict[str, list[RunRecord]]):
    """Classification loss, domain loss and λ (and DSN's reconstruction / difference losses)
    against steps, one line per method (its first complete run)."""
    runs = {m: b.first_ok(by[m]) for m in METHODS if m in by}

    def lines(key: str, only=None):
        return [(NAMES[m], series(r.metrics, key)) for m, r in runs.items() if only is None or m in only]

    spec = [
        ("classification loss (labelled batch)", lines("train/cls_loss"), None),
        ("domain loss (ADDA: phase 2; DSN: similarity)", lines("train/domain_loss", ("dann", "dann_ft", "adda", "dsn")), None),
        ("λ (gradient reversal weight)", lines("train/lambda", ("dann", "dann_ft", "dsn")), None),
        ("DSN reconstruction loss", lines("train/recon_loss", ("dsn",)), None),
        ("DSN difference loss", lines("train/difference_loss", ("dsn",)), None),
    ]
    name = f"uda__{next(iter(runs.values())).run.entry.id}"
    return b.curves(spec, name, f"Training curves: {pair}",
                    f"{pair}: training curves of each method's first complete run (metrics.jsonl)",
                    f"UDA training curves of {pair} (train/cls_loss rows in metrics.jsonl)")


def render(b: Core) -> None:
    pairs = _pairs(b)
    present = {m for by in pairs.values() for m in by}
    methods = [m for m in METHODS if m not in OPTIONAL or m in present]
    rows = []
    for pair, by in pairs.items():
        some = next(iter(by.values()))
        seeds = seed_list(r.run.seed for v in by.values() for r in v if r.ok)
        rows.append([pair, b.first_ok(some).data_text(), *(_cell(by.get(m, [])) for m in methods), seeds])
    add = b.doc.add
    add(
        D.Table(
            ["pair", "data", *(NAMES[m] for m in methods), "seeds"],
            rows,
            f"Target val accuracy (%), mean ± std over seeds; scale {b.scale}",
        ),
    )
    add(*(verdicts.uda(pair, by, [m for m in IMPROVED if m in methods], NAMES)
           for pair, by in pairs.items()))
    add(*reference_tables())
    by_method: dict[str, list[RunRecord]] = {}
    for by in pairs.values():
        for m, recs in by.items():
            by_method.setdefault(m, []).extend(recs)
    add(b.hparam_table({NAMES[m]: by_method[m] for m in methods if m in by_method},
                       "Domain adaptation (all pairs)"))
    for pair, by in pairs.items():
        add(D.Heading(f"{pair}: training curves and t-SNE", 3), curves(b, pair, by))
        for m in methods:
            if m not in by:
                continue
            r = b.first_ok(by[m])
            add(
                D.Para(f"{NAMES[m]} — {b.provenance(by[m])}"),
                *b.failures(by[m]),
                D.Gallery(
                    [
                        b.image(r, src, f"{NAMES[m]}: latent coloured by {w}", f"t-SNE by {w}",
                                LEGEND_WIDTH)
                        for src, w in ((r.role("uda_tsne_class"), "class"),
                                       (r.role("uda_tsne_domain"), "domain"))
                    ]
                ),
            )
