"""DDIM on faces: the η grid (assembled from per-η runs or the run's own), slerp / linear
interpolation, the MSE against ground truth, hyperparameters and the training loss."""

from __future__ import annotations

from genda.report import doc as D
from genda.report import figures, verdicts
from genda.report.core import Core, _eta
from genda.report.records import RunRecord, mean_std
from genda.report.sections.ddpm import loss_curves
from genda.report.sections.gan import sampling_text

ITEM = "ddim"
TITLE = "DDIM: faces"


def render(b: Core) -> None:
    groups = b.items(ITEM)
    b.doc.add(b.hparam_table({b.label(recs): recs for recs in groups.values()}, "DDIM"))
    for recs in groups.values():
        add = b.doc.add
        r = b.first_ok(recs)
        ev = r.json_artifact("eval.json") or {}
        eta0 = [x for x in recs if x.ok and (_eta(x) or 0.0) == 0.0]
        add(D.Heading(b.label(recs), 3), verdicts.ddim(eta0), D.Para(b.provenance(recs)),
            *b.failures(recs))
        add(
            D.Para(
                f"UNet weights: {ev.get('weights', 'not recorded')}; noises: "
                f"{ev.get('noise', 'not recorded')}; images min-max normalised per image."
            )
        )
        if not (r.config.get("model") or {}).get("ckpt"):
            add(loss_curves(b, recs, "DDIM face UNet"))
        add(eta_grid(b, recs))
        for src, what in ((r.role("ddim_slerp"), "slerp"),
                          (r.role("ddim_lerp"), "linear interpolation")):
            add(b.image(r, src, f"{what} between noise 00 and 01, α = 0, 0.1, …, 1 (η = 0)", what, 760))
        mse = mean_std([x.value("mse") for x in eta0], digits=2)
        add(
            D.Table(
                ["metric", "value"],
                [["MSE vs ground truth, η = 0 (0–255 pixels)", mse],
                 ["sampling time (ddim/ images, η of the run)", sampling_text(eta0[:1])]],
                "MSE of ddim/00.png…09.png against GT/00.png…09.png, averaged over images",
            )
        )
        if mse == "—" and eta0:
            add(
                D.Missing(
                    "the DDIM MSE: it needs the course's ground truth (model.gt_dir, with "
                    "model.ckpt=UNet.pt and model.noise_dir)"
                )
            )
        add(*b.course_table([("ddim_mse", [mse])]))


def eta_grid(b: Core, recs: list[RunRecord]):
    """The η grid: assembled from per-η runs (a row of noises 00–03 each), or one run's own."""
    seed = recs[0].run.seed
    runs = sorted((x for x in recs if x.ok and x.run.seed == seed), key=lambda x: _eta(x) or 0.0)
    if len(runs) < 2:
        r = runs[0] if runs else recs[0]
        return b.image(
            r,
            r.role("ddim_eta_grid"),
            "DDIM η grid of one run: rows η = 0, 0.25, 0.5, 0.75, 1; columns noises 00–03",
            "η grid",
            520,
        )
    rows = []
    for r in runs:
        k = int((r.config.get("model") or {}).get("eta_grid_noises", 4))
        images = r.role_files("ddim_images")[:k]
        if images:
            rows.append((f"η = {_eta(r)}", figures.row_of(images)))
    if not rows:
        return D.Missing("per-η DDIM outputs (artifacts/ddim/00.png… in each η run)")
    path = figures.labelled_rows(
        rows,
        b.new_image(f"{recs[0].run.entry.id}__eta_grid.png"),
        "DDIM: noises 00–03 (columns) × η (rows)",
    )
    return D.Image(path, f"DDIM η grid assembled from the {len(rows)} per-η runs (seed {seed})", 560)
