"""GAN on faces: the FID / KID / face-score table, the numbers to beat, hyperparameters,
training curves (D and G losses, D(x) and D(G(z))), first-32 grids and architectures."""

from __future__ import annotations

import math

from genda.report import doc as D
from genda.report import verdicts
from genda.report.core import Core
from genda.report.records import RunRecord, face_detectors, kid_text, mean_std, seed_list

ITEM = "gan"
TITLE = "GAN: faces 64×64 (methods A and B)"


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0


def curves(b: Core, recs: list[RunRecord]):
    """D and G losses; D's mean output on real and generated images — as probabilities
    σ(mean logit) for the BCE loss, raw critic values for hinge / Wasserstein losses; the
    validation FID / KID against steps when the run validated."""
    r = b.first_ok(recs)
    loss = str((r.config.get("model") or {}).get("loss", "bce"))
    from genda.report.figures import series

    m = r.metrics
    if loss == "bce":
        outputs = ("D output as probability: σ(mean logit)",
                   [("D(x), real", series(m, "train/d_real", _sigmoid)),
                    ("D(G(z)), generated", series(m, "train/d_fake", _sigmoid))], (0.0, 1.0))
    else:
        outputs = (f"critic output ({loss} loss: not a probability)",
                   [("D(x), real", series(m, "train/d_real")),
                    ("D(G(z)), generated", series(m, "train/d_fake"))], None)
    spec = [("losses", [("D loss", series(m, "train/d_loss")), ("G loss", series(m, "train/g_loss"))], None),
            outputs,
            # runs that validate (B at cpu: every 1,000 steps): the FID-against-steps curve
            ("validation FID and KID × 10³ (lower is better)",
             [("FID", series(m, "val/fid")), ("KID × 10³", series(m, "val/kid", lambda v: 1000.0 * v))], None)]
    return b.curves(
        spec, r.run.name, f"{b.label(recs)} ({r.run.name})",
        f"Training curves of `{r.run.name}` (means over each logging interval of metrics.jsonl)",
        f"GAN training curves (train/d_loss, train/g_loss rows) in {b.run_link(r)}/metrics.jsonl",
    )


def sampling_text(ok) -> str:
    """`1,234 img/s (1000 in 0.8 s)` from eval.json's generation time (first seed); '—' if not recorded."""
    ev = next((e for e in (r.json_artifact("eval.json") or {} for r in ok) if e.get("images_per_s")), None)
    if ev is None:
        return "—"
    return f"{ev['images_per_s']:,.0f} img/s ({ev['n_sampled']} in {ev['sample_seconds']:.1f} s)"


def render(b: Core) -> None:
    groups = b.items(ITEM)
    rows, add = [], b.doc.add
    for recs in groups.values():
        ok = [r for r in recs if r.ok]
        rows.append(
            [
                b.label(recs),
                mean_std([r.value("fid") for r in ok]),
                kid_text(ok),
                mean_std([r.value("diversity") for r in ok]),
                mean_std([r.face_score() for r in ok], digits=1),
                mean_std([r.face_score(real=True) for r in ok], digits=1),
                face_detectors(ok),
                b.fid_counts(recs),
                sampling_text(ok),
                b.first_ok(recs).data_text(),
                seed_list(r.run.seed for r in ok),
                b.run_link(b.first_ok(recs)) if ok else f"failed: {recs[0].error}",
            ]
        )
    add(
        D.Table(
            ["method", "FID ↓", "KID ×10³ ↓", "diversity", "face score ↑ (%)", "real val face score (%)",
             "face detector", "n_real / n_fake", "sampling", "data", "seeds", "run dir"],
            rows,
            f"FID and KID (pytorch-fid InceptionV3 pool3, weights: {b.fid_weights(groups)}; KID: "
            "unbiased MMD², cubic polynomial kernel, 100 subsets of min(1000, n)) and face score (% "
            "of images with exactly one face; diversity: per-pixel spread of the generated images over the real ones, about 1 when as varied as the data, near 0 when collapsed; hog: dlib HOG as the course's face_recognition, mtcnn: "
            "facenet-pytorch) of the run's final images, beside the same detector's score of the "
            f"real val images (the ceiling); sampling: generation time of the final images, first "
            f"seed; scale {b.scale}",
        )
    )
    add(verdicts.gan(groups))
    oks = [[r for r in recs if r.ok] for recs in groups.values()]
    add(
        *b.course_table(
            [
                ("fid", [mean_std([r.value("fid") for r in ok]) for ok in oks]),
                ("face_score", [b.face_text(ok) for ok in oks]),
            ],
            [b.label(recs).split(":")[0] for recs in groups.values()],
        )
    )
    add(b.hparam_table({b.label(recs).split(":")[0]: recs for recs in groups.values()}, "GAN"))
    for recs in groups.values():
        r = b.first_ok(recs)
        add(
            D.Heading(b.label(recs), 3),
            D.Para(b.provenance(recs)),
            *b.failures(recs),
            curves(b, recs),
            b.image(
                r,
                r.role("gan_grid"),
                f"{b.label(recs)}: first 32 generated images (seed {r.run.seed})",
                "first-32 grid",
                540,
            ),
        )
        if recs[0].run.entry.info.get("architecture", True):
            add(*b.architectures(recs))
