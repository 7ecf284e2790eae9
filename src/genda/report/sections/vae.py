"""VAE on faces: learning curves (the run's own curves.png), reconstructions with per-image
MSE, random samples scored like the GANs, hyperparameters and the t-SNE of latent means."""

from __future__ import annotations

import numpy as np

from genda.report import doc as D
from genda.report import figures, verdicts
from genda.report.core import LEGEND_WIDTH, Core
from genda.report.records import RunRecord, face_detectors, kid_text, mean_std
from genda.report.sections.gan import sampling_text

ITEM = "vae"
TITLE = "VAE: faces"


def render(b: Core) -> None:
    groups = b.items(ITEM)
    b.doc.add(b.hparam_table({b.label(recs): recs for recs in groups.values()}, "VAE"))
    for recs in groups.values():
        r, add = b.first_ok(recs), b.doc.add
        ok = [x for x in recs if x.ok]
        add(D.Heading(b.label(recs), 3), verdicts.vae(recs), D.Para(b.provenance(recs)),
            *b.failures(recs))
        caption = "Learning curves: reconstruction MSE and KL (train: logged means; val)"
        own = r.role("vae_curves")  # the run's own figure, else drawn here
        curve = None if own else figures.curves(
            r.metrics,
            ["train/recon", "train/kl", "val/recon", "val/kl"],
            b.new_image(f"{r.run.name.replace('/', '__')}__curves.png"),
            f"VAE learning curves ({r.run.name})",
        )
        add(
            b.image(r, own, caption, "learning curves", 900) if own
            else D.Image(curve, caption, 900) if curve
            else D.Missing(f"recon/KL rows in {b.run_link(r)}/metrics.jsonl")
        )
        add(b.image(r, r.role("vae_recon"), "Top: val images; bottom: reconstructions",
                    "reconstructions", 640))
        mse = r.role_json("vae_recon_mse")
        if mse and "mse" in mse:
            key = "mse_255" if "mse_255" in mse else "mse"
            add(
                D.Table(
                    ["image", *[str(i) for i in range(len(mse[key]))], "mean"],
                    [
                        [
                            f"MSE ({'0–255' if key == 'mse_255' else '[-1, 1]'} pixels)",
                            *[f"{v:.1f}" if key == "mse_255" else f"{v:.4f}" for v in mse[key]],
                            f"{np.mean(mse[key]):.4g}",
                        ]
                    ],
                    "Per-image reconstruction MSE",
                )
            )
        else:
            add(D.Missing(f"per-image MSE (reconstruction_mse.json) of `{r.run.name}`"))
        add(b.image(r, r.role("vae_samples"), "32 random samples z ~ N(0, I)", "samples", 540))
        add(
            D.Table(
                ["metric", "value"],
                [
                    ["FID ↓", mean_std([x.value("fid") for x in ok])],
                    ["KID ×10³ ↓", kid_text(ok)],
                    [f"face score ↑ (%, {face_detectors(ok)})",
                     mean_std([x.face_score() for x in ok], digits=1)],
                    ["real val face score (%, the ceiling)",
                     mean_std([x.face_score(real=True) for x in ok], digits=1)],
                    ["n_real / n_fake", b.fid_counts(recs)],
                    ["val recon MSE", mean_std([x.value("recon") for x in ok], digits=4)],
                    ["sampling (decoder, final images)", sampling_text(ok)],
                ],
                f"Samples scored like the GANs ({b.provenance(recs)})",
            )
        )
        add(tsne(b, r))


def tsne(b: Core, r: RunRecord):
    done = r.role("vae_tsne")
    if done:
        return b.image(r, done, "t-SNE of latent means", "t-SNE", LEGEND_WIDTH)
    lat = r.role("vae_latents")
    if lat is None:
        return D.Missing(f"latents.npz of `{r.run.name}`")
    from genda.viz.tsne import _scatter, embed, latent_colouring

    arrays = np.load(lat)
    attr = next((k for k in arrays.files if k.startswith("attr_")), None)
    xy = embed(arrays["mu"].reshape(len(arrays["mu"]), -1))
    name = attr.removeprefix("attr_") if attr else None
    bright = arrays["brightness"] if "brightness" in arrays.files else None
    groups, names, cmap = latent_colouring(len(xy), name, attr and arrays[attr], bright)
    path = b.new_image(f"{r.run.name.replace('/', '__')}__tsne.png")
    if name:
        title, how = f"by {name}", f"coloured by {name}"
    elif bright is not None:
        title = "by image brightness (this data has no attributes)"
        how = "coloured by image brightness (this data has no attributes; CelebA has Blond_Hair)"
    else:
        title, how = "no attribute to colour by", "(this data has no attribute to colour by; CelebA has Blond_Hair)"
    _scatter(xy, groups, names, f"VAE latents t-SNE, {title}", str(path), cmap)
    return D.Image(path, f"t-SNE of the {len(xy)} val latent means {how}", LEGEND_WIDTH)
