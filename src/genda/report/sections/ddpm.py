"""Conditional DDPM on digits: 10×10 grid, reverse-process strip, digit accuracy,
hyperparameters and the training loss."""

from __future__ import annotations

from genda.report import doc as D
from genda.report import verdicts
from genda.report.core import Core, _int
from genda.report.figures import series
from genda.report.records import RunRecord, mean_std
from genda.report.sections.gan import sampling_text

ITEM = "ddpm"
TITLE = "Conditional DDPM: digits"


def loss_name(model: dict) -> str:
    """What the run's diffusion loss is, from its saved model config: "ε-prediction MSE",
    "v-prediction MSE, Min-SNR-5 weights", ... (runs from before `prediction` predict ε)."""
    name = f"{'v' if model.get('prediction') == 'v' else 'ε'}-prediction MSE"
    gamma = model.get("min_snr_gamma")
    return f"{name}, Min-SNR-{gamma:g} weights" if isinstance(gamma, int | float) and gamma else name


def loss_curves(b: Core, recs: list[RunRecord], what: str):
    """Denoising loss (train: logged means; val) of the first complete run."""
    r = b.first_ok(recs)
    m = r.metrics
    spec = [(loss_name(r.config.get("model") or {}), [("train", series(m, "train/loss")),
                                                      ("val", series(m, "val/loss"))], None)]
    return b.curves(spec, r.run.name, f"{what} loss ({r.run.name})",
                    f"{what} training loss of `{r.run.name}` (metrics.jsonl)",
                    f"{what} loss rows (train/loss) in {b.run_link(r)}/metrics.jsonl")


def render(b: Core) -> None:
    groups = b.items(ITEM)
    b.doc.add(b.hparam_table({b.label(recs): recs for recs in groups.values()}, "DDPM"))
    for recs in groups.values():
        r, add = b.first_ok(recs), b.doc.add
        ok = [x for x in recs if x.ok]
        acc = mean_std([x.value("accuracy") for x in ok], scale=100.0, digits=1)
        ev = r.json_artifact("eval.json") or {}
        steps = ", ".join(map(str, ev.get("reverse_process_timesteps", []))) or "not recorded"
        add(
            D.Heading(b.label(recs), 3),
            verdicts.ddpm(recs),
            D.Para(b.provenance(recs)),
            *b.failures(recs),
            loss_curves(b, recs, "DDPM"),
            b.image(r, r.role("ddpm_grid"),
                    "10×10 grid: rows = digits 0–9, columns = noises", "10×10 grid", 420),
            b.image(r, r.role("ddpm_strip"),
                    f"The first '0' along its reverse process (timesteps {steps})",
                    "reverse-process strip", 640),
            D.Table(
                ["metric", "value"],
                [
                    ["digit accuracy of generated images (%)", acc],
                    ["images scored (`<digit>_<nnn>.png`)", _int(r.value("n_images"))],
                    ["evaluator", str(ev.get("evaluator", "not recorded"))],
                    ["sampler", str(ev.get("sampler", "not recorded"))],
                    ["sampling time (the scored images)", sampling_text([r])],
                ],
                "LeNet evaluator on the saved 8-bit images",
            ),
        )
        per = ev.get("per_digit") or {}
        if per:
            add(
                D.Table(
                    ["digit", *per],
                    [["accuracy (%)", *(f"{100 * v:.0f}" for v in per.values())]],
                    "Per-digit accuracy",
                )
            )
        add(*b.course_table([("ddpm_acc", [acc])]))
