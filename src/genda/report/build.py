"""The report builder: reads the manifest's run dirs (never trains) and writes
`REPORT.md` + a self-contained `report.html` with every course report item (docs/protocols.md).

A missing run or artefact becomes a visible "missing" note; a failed run a failed row."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from genda.report import doc as D
from genda.report import figures
from genda.report.manifest import Manifest
from genda.report.records import RunRecord, face_detectors, group_by_entry, kid_text, mean_std
from genda.report.runner import FINISHED_FORMAT, report_group

SECTIONS = {
    "gan": "GAN: faces 64×64 (methods A and B)",
    "vae": "VAE: faces",
    "ddpm": "Conditional DDPM: digits",
    "ddim": "DDIM: faces",
    "uda": "Domain adaptation: DANN and ADDA",
    "classifier": "Digit classifier (LeNet)",
    "arch": "Architecture summaries",
    "runs": "All runs",
}

# Artefact names each task writes under <run dir>/artifacts/ (globs, first match wins).
ART = {
    "gan_grid": ("first32.png",),
    "vae_recon": ("reconstructions.png",),
    "vae_recon_mse": ("reconstruction_mse.json",),
    "vae_samples": ("samples32.png",),
    "vae_tsne": ("tsne*.png",),
    "vae_curves": ("curves.png",),
    "vae_latents": ("latents.npz",),
    "ddpm_grid": ("grid_labelled.png", "grid.png"),
    "ddpm_strip": ("reverse_process_labelled.png", "reverse_process.png"),
    "ddim_images": "ddim/*.png",
    "ddim_eta_grid": ("eta_grid_labelled.png", "eta_grid.png"),
    "ddim_slerp": ("slerp_labelled.png", "slerp.png"),
    "ddim_lerp": ("lerp_labelled.png", "lerp.png"),
    "uda_tsne_class": ("tsne_class.png",),
    "uda_tsne_domain": ("tsne_domain.png",),
}  # ddim_images is one glob: the per-eta run's ddim/00.png... (rows of the assembled eta grid)

# docs/protocols.md "Numbers the report shows for orientation" (course baseline, best student seen).
COURSE = {
    "fid": ("GAN FID ↓ (faces)", "30 / 27", "22.97"),
    "face_score": ("face score ↑ (%, course: dlib HOG)", "85 / 90", "91.1"),
    "ddpm_acc": ("DDPM digit accuracy ↑ (%)", "80–90 / 88–95", "99.9 (CFG w=2)"),
    "ddim_mse": ("DDIM MSE ↓ (0–255 pixels)", "20", "0.3"),
}
PUBLISHED_DANN = [  # Ganin & Lempitsky 2015, Table 1: source only / DANN / train on target
    ("MNIST → MNIST-M", "52.25", "76.66", "95.96"),
    ("Syn Numbers → SVHN", "86.74", "91.09", "92.20"),
    ("SVHN → MNIST", "54.90", "73.85", "99.42"),
]
COURSE_UDA = [  # course baseline, best student (target accuracy %)
    ("MNIST-M → SVHN", "DANN", "40", "59.5"),
    ("MNIST-M → USPS", "DANN", "76", "92.4"),
    ("MNIST-M → USPS", "ADDA", "beat own DANN", "89.9"),
]
UDA_METHODS = ("source_only", "dann", "target_only", "adda")
UDA_NAMES = {
    "source_only": "trained on source",
    "dann": "DANN",
    "target_only": "trained on target",
    "adda": "ADDA",
}


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
        return "Training time: not recorded (no run was executed by `genda.report run`)."
    start, end = min(t[0] for t in timed), max(t[1] for t in timed)
    fmt = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t))  # noqa: E731
    return (f"Training time, as last executed: {sum(t[2] for t in timed) / 60:.1f} run-minutes over "
            f"{len(timed)} runs, {(end - start) / 60:.1f} min from the first start ({fmt(start)}) to the "
            f"last finish ({fmt(end)}); runs skipped as complete keep their earlier time.")


class Builder:
    """Collects the run records of one scale and renders the report into `out_dir`."""

    def __init__(
        self,
        manifest: Manifest,
        scale: str,
        runs_root: Path,
        out_dir: Path,
        seeds: int | None = None,
    ) -> None:
        self.manifest, self.scale, self.out = manifest, scale, Path(out_dir)
        self.records = [
            RunRecord.read(r) for r in manifest.expand(scale, Path(runs_root), seeds=seeds)
        ]
        self.img = self.out / "img"
        self.doc = D.Document(f"genda report — scale {scale}")

    # -- helpers ---------------------------------------------------------------------
    def image(self, rec: RunRecord, src: Path | None, caption: str, what: str, width: int = 0):
        """Copy an artefact into img/ and return an Image block (or a Missing note)."""
        if src is None or not src.is_file():
            return D.Missing(
                f"{what} of `{rec.run.name}` ({rec.state}; expected under {rec.where()}/artifacts)"
            )
        dst = (
            self.img
            / f"{rec.run.name.replace('/', '__')}__{src.relative_to(rec.artifacts).as_posix().replace('/', '__')}"
        )
        shutil.copyfile(src, dst)
        return D.Image(dst, caption, width)

    def new_image(self, name: str) -> Path:
        return self.img / name

    def items(self, item: str) -> dict[str, list[RunRecord]]:
        return group_by_entry([r for r in self.records if r.run.entry.item == item])

    @staticmethod
    def label(recs: list[RunRecord]) -> str:
        e = recs[0].run.entry
        return str(e.info.get("label", e.id))

    @staticmethod
    def first_ok(recs: list[RunRecord]) -> RunRecord:
        return next((r for r in recs if r.ok), recs[0])

    def provenance(self, recs: list[RunRecord]) -> str:
        r = self.first_ok(recs)
        seeds = (
            ", ".join(str(x) for x in sorted({x.run.seed for x in recs if x.ok})) or "none complete"
        )
        return f"data: {r.data_text()}; scale: {self.scale}; seeds: {seeds}; run dir: `{r.where()}`"

    def failures(self, recs: list[RunRecord]) -> list:
        return [
            D.Para(f"**{r.state}**: `{r.run.name}` — {_short(r.error or 'no status.json')}")
            for r in recs
            if not r.ok
        ]

    def no_runs(self, item: str) -> bool:
        if self.items(item):
            return False
        self.doc.add(D.Missing(f"the manifest has no '{item}' runs"))
        return True

    def course_table(
        self, rows: list[tuple[str, list[str]]], labels: list[str] | None = None
    ) -> D.Table:
        """rows: (COURSE key, this report's values, one per label) -> a comparison table."""
        cols = (
            [f"{x} ({self.scale})" for x in labels] if labels else [f"this report ({self.scale})"]
        )
        return D.Table(
            ["metric", "course baseline", "best student", *cols],
            [[*COURSE[k], *v] for k, v in rows],
            "Numbers to beat (sources: docs/protocols.md in the genda repository)",
        )

    @staticmethod
    def fid_weights(groups: dict[str, list[RunRecord]]) -> str:
        ev = [r.json_artifact("eval.json") or {} for recs in groups.values() for r in recs if r.ok]
        return (
            ", ".join(sorted({str(e["fid_weights"]) for e in ev if e.get("fid_weights")}))
            or "not recorded"
        )

    @staticmethod
    def face_text(ok: list[RunRecord]) -> str:
        """Face score over seeds, naming the detector where it is not the course's HOG."""
        det = face_detectors(ok)
        text = mean_std([r.face_score() for r in ok], digits=1)
        return text if det in ("hog", "—") else f"{text} ({det})"

    @staticmethod
    def fid_counts(recs: list[RunRecord]) -> str:
        """'n_real / n_fake' of the runs' FID (eval.json), flagging non-standard feature sizes."""
        out = set()
        for r in (x for x in recs if x.ok):
            ev = r.json_artifact("eval.json") or {}
            dims = ((r.config.get("metrics") or {}).get("fid") or {}).get("dims", 2048)
            note = "" if dims == 2048 else f" ({dims}-d features: plumbing check, not a FID)"
            out.add(f"{ev.get('n_real', '?')} / {ev.get('n_fake', '?')}{note}")
        return " ; ".join(sorted(out)) or "—"

    def architectures(self, recs: list[RunRecord]) -> list:
        r = self.first_ok(recs)
        files = sorted(r.artifacts.glob("summary_*.txt"))
        if not files:
            return [D.Missing(f"architecture summaries of `{r.run.name}`")]
        return [
            D.Code(f.read_text(), f"{self.label(recs)}: {f.stem.removeprefix('summary_')}")
            for f in files
        ]

    # -- sections ----------------------------------------------------------------------
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
            ),
            D.Para(
                "Every number below names its data — an **embedded stand-in** built offline by genda "
                "(docs/data.md in the genda repository) or the user's **real** course data — its "
                "scale, seeds and run dir. Numbers on stand-ins are not comparable with the course's, "
                "whose baselines are shown beside each table for orientation."
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

    def gan(self) -> None:
        if self.no_runs("gan"):
            return
        groups = self.items("gan")
        rows, b = [], self.doc.add
        for recs in groups.values():
            ok = [r for r in recs if r.ok]
            rows.append(
                [
                    self.label(recs),
                    mean_std([r.value("fid") for r in ok]),
                    kid_text(ok),
                    mean_std([r.face_score() for r in ok], digits=1),
                    mean_std([r.face_score(real=True) for r in ok], digits=1),
                    face_detectors(ok),
                    self.fid_counts(recs),
                    self.first_ok(recs).data_text(),
                    ", ".join(str(r.run.seed) for r in ok) or "—",
                    self.first_ok(recs).where() if ok else f"failed: {recs[0].error}",
                ]
            )
        b(
            D.Table(
                [
                    "method",
                    "FID ↓",
                    "KID ×10³ ↓",
                    "face score ↑ (%)",
                    "real val face score (%)",
                    "face detector",
                    "n_real / n_fake",
                    "data",
                    "seeds",
                    "run dir",
                ],
                rows,
                f"FID and KID (pytorch-fid InceptionV3 pool3, weights: {self.fid_weights(groups)}; KID: "
                "unbiased MMD², cubic polynomial kernel, 100 subsets of min(1000, n)) and face score (% "
                "of images with exactly one face; hog: dlib HOG as the course's face_recognition, mtcnn: "
                "facenet-pytorch) of the run's final images, beside the same detector's score of the "
                f"real val images (the ceiling); scale {self.scale}",
            )
        )
        oks = [[r for r in recs if r.ok] for recs in groups.values()]
        b(
            self.course_table(
                [
                    ("fid", [mean_std([r.value("fid") for r in ok]) for ok in oks]),
                    ("face_score", [self.face_text(ok) for ok in oks]),
                ],
                [self.label(recs).split(":")[0] for recs in groups.values()],
            )
        )
        for recs in groups.values():
            r = self.first_ok(recs)
            b(
                D.Heading(self.label(recs), 3),
                D.Para(self.provenance(recs)),
                *self.failures(recs),
                self.image(
                    r,
                    r.artifact(*ART["gan_grid"]),
                    f"{self.label(recs)}: first 32 generated images (seed {r.run.seed})",
                    "first-32 grid",
                    540,
                ),
            )
            if recs[0].run.entry.info.get("architecture", True):
                b(*self.architectures(recs))

    def vae(self) -> None:
        if self.no_runs("vae"):
            return
        for recs in self.items("vae").values():
            r, b = self.first_ok(recs), self.doc.add
            ok = [x for x in recs if x.ok]
            b(D.Heading(self.label(recs), 3), D.Para(self.provenance(recs)), *self.failures(recs))
            caption = "Learning curves: reconstruction MSE and KL (train: logged means; val)"
            own = r.artifact(*ART["vae_curves"])  # the run's own figure, else drawn here
            curve = None if own else figures.curves(
                r.metrics,
                ["train/recon", "train/kl", "val/recon", "val/kl"],
                self.new_image(f"{r.run.name.replace('/', '__')}__curves.png"),
                f"VAE learning curves ({r.run.name})",
            )
            b(
                self.image(r, own, caption, "learning curves", 900) if own
                else D.Image(curve, caption) if curve
                else D.Missing(f"recon/KL rows in {r.where()}/metrics.jsonl")
            )
            b(
                self.image(
                    r,
                    r.artifact(*ART["vae_recon"]),
                    "Top: val images; bottom: reconstructions",
                    "reconstructions",
                    640,
                )
            )
            mse = r.json_artifact(*ART["vae_recon_mse"])
            if mse and "mse" in mse:
                key = "mse_255" if "mse_255" in mse else "mse"
                b(
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
                b(D.Missing(f"per-image MSE (reconstruction_mse.json) of `{r.run.name}`"))
            b(
                self.image(
                    r,
                    r.artifact(*ART["vae_samples"]),
                    "32 random samples z ~ N(0, I)",
                    "samples",
                    540,
                )
            )
            b(
                D.Table(
                    ["metric", "value"],
                    [
                        ["FID ↓", mean_std([x.value("fid") for x in ok])],
                        ["KID ×10³ ↓", kid_text(ok)],
                        [
                            f"face score ↑ (%, {face_detectors(ok)})",
                            mean_std([x.face_score() for x in ok], digits=1),
                        ],
                        [
                            "real val face score (%, the ceiling)",
                            mean_std([x.face_score(real=True) for x in ok], digits=1),
                        ],
                        ["n_real / n_fake", self.fid_counts(recs)],
                        ["val recon MSE", mean_std([x.value("recon") for x in ok], digits=4)],
                    ],
                    f"Samples scored like the GANs ({self.provenance(recs)})",
                )
            )
            b(self.vae_tsne(r))

    def vae_tsne(self, r: RunRecord):
        done = r.artifact(*ART["vae_tsne"])
        if done:
            return self.image(r, done, "t-SNE of latent means", "t-SNE", 480)
        lat = r.artifact(*ART["vae_latents"])
        if lat is None:
            return D.Missing(f"latents.npz of `{r.run.name}`")
        from genda.viz.tsne import _scatter, embed

        arrays = np.load(lat)
        attr = next((k for k in arrays.files if k.startswith("attr_")), None)
        xy = embed(arrays["mu"].reshape(len(arrays["mu"]), -1))
        groups = arrays[attr].astype(int) if attr else np.zeros(len(xy), int)
        name = attr.removeprefix("attr_") if attr else None
        path = self.new_image(f"{r.run.name.replace('/', '__')}__tsne.png")
        _scatter(
            xy,
            groups,
            [f"not {name}", name] if name else ["val images"],
            f"VAE latents t-SNE by {name}" if name else "VAE latents t-SNE",
            str(path),
            "Set1",
        )
        how = (
            f"coloured by {name}"
            if name
            else "(this data has no attribute to colour by; CelebA has Blond_Hair)"
        )
        return D.Image(path, f"t-SNE of the {len(xy)} val latent means {how}", 480)

    def ddpm(self) -> None:
        if self.no_runs("ddpm"):
            return
        for recs in self.items("ddpm").values():
            r, b = self.first_ok(recs), self.doc.add
            ok = [x for x in recs if x.ok]
            acc = mean_std([x.value("accuracy") for x in ok], scale=100.0, digits=1)
            ev = r.json_artifact("eval.json") or {}
            steps = ", ".join(map(str, ev.get("reverse_process_timesteps", []))) or "not recorded"
            b(
                D.Heading(self.label(recs), 3),
                D.Para(self.provenance(recs)),
                *self.failures(recs),
                self.image(
                    r,
                    r.artifact(*ART["ddpm_grid"]),
                    "10×10 grid: rows = digits 0–9, columns = noises",
                    "10×10 grid",
                    420,
                ),
                self.image(
                    r,
                    r.artifact(*ART["ddpm_strip"]),
                    f"The first '0' along its reverse process (timesteps {steps})",
                    "reverse-process strip",
                    640,
                ),
                D.Table(
                    ["metric", "value"],
                    [
                        ["digit accuracy of generated images (%)", acc],
                        ["images scored (`<digit>_<nnn>.png`)", _int(r.value("n_images"))],
                        ["evaluator", str(ev.get("evaluator", "not recorded"))],
                        ["sampler", str(ev.get("sampler", "not recorded"))],
                    ],
                    "LeNet evaluator on the saved 8-bit images",
                ),
            )
            per = ev.get("per_digit") or {}
            if per:
                b(
                    D.Table(
                        ["digit", *per],
                        [["accuracy (%)", *(f"{100 * v:.0f}" for v in per.values())]],
                        "Per-digit accuracy",
                    )
                )
            b(self.course_table([("ddpm_acc", [acc])]))

    def ddim(self) -> None:
        if self.no_runs("ddim"):
            return
        for recs in self.items("ddim").values():
            b = self.doc.add
            r = self.first_ok(recs)
            ev = r.json_artifact("eval.json") or {}
            b(D.Heading(self.label(recs), 3), D.Para(self.provenance(recs)), *self.failures(recs))
            b(
                D.Para(
                    f"UNet weights: {ev.get('weights', 'not recorded')}; noises: "
                    f"{ev.get('noise', 'not recorded')}; images min-max normalised per image."
                )
            )
            b(self.eta_grid(recs))
            for key, what in (("ddim_slerp", "slerp"), ("ddim_lerp", "linear interpolation")):
                b(
                    self.image(
                        r,
                        r.artifact(*ART[key]),
                        f"{what} between noise 00 and 01, α = 0, 0.1, …, 1 (η = 0)",
                        what,
                        760,
                    )
                )
            eta0 = [x for x in recs if x.ok and (_eta(x) or 0.0) == 0.0]
            mse = mean_std([x.value("mse") for x in eta0], digits=2)
            b(
                D.Table(
                    ["metric", "value"],
                    [["MSE vs ground truth, η = 0 (0–255 pixels)", mse]],
                    "MSE of ddim/00.png…09.png against GT/00.png…09.png, averaged over images",
                )
            )
            if mse == "—" and eta0:
                b(
                    D.Missing(
                        "the DDIM MSE: it needs the course's ground truth (model.gt_dir, with "
                        "model.ckpt=UNet.pt and model.noise_dir)"
                    )
                )
            b(self.course_table([("ddim_mse", [mse])]))

    def eta_grid(self, recs: list[RunRecord]):
        """The η grid: assembled from per-η runs (a row of noises 00–03 each), or one run's own."""
        seed = recs[0].run.seed
        runs = sorted(
            (x for x in recs if x.ok and x.run.seed == seed), key=lambda x: _eta(x) or 0.0
        )
        if len(runs) < 2:
            r = runs[0] if runs else recs[0]
            return self.image(
                r,
                r.artifact(*ART["ddim_eta_grid"]),
                "DDIM η grid of one run: rows η = 0, 0.25, 0.5, 0.75, 1; columns noises 00–03",
                "η grid",
                420,
            )
        rows = []
        for r in runs:
            k = int((r.config.get("model") or {}).get("eta_grid_noises", 4))
            images = sorted(r.artifacts.glob(ART["ddim_images"]))[:k]
            if images:
                rows.append((f"η = {_eta(r)}", figures.row_of(images)))
        if not rows:
            return D.Missing("per-η DDIM outputs (artifacts/ddim/00.png… in each η run)")
        path = figures.labelled_rows(
            rows,
            self.new_image(f"{recs[0].run.entry.id}__eta_grid.png"),
            "DDIM: noises 00–03 (columns) × η (rows)",
        )
        return D.Image(
            path, f"DDIM η grid assembled from the {len(rows)} per-η runs (seed {seed})", 520
        )

    def uda(self) -> None:
        if self.no_runs("uda"):
            return
        pairs: dict[str, dict[str, list[RunRecord]]] = {}
        for r in self.records:
            if r.run.entry.item == "uda":
                pair = str(r.run.entry.info.get("pair", r.run.entry.id))
                pairs.setdefault(pair, {}).setdefault(_uda_method(r), []).append(r)
        rows = []
        for pair, by in pairs.items():
            some = next(iter(by.values()))
            cells = []
            for m in UDA_METHODS:
                recs = by.get(m, [])
                ok = [r for r in recs if r.ok]
                cell = (
                    mean_std([r.value("target_acc") for r in ok], 100.0, 1)
                    if recs
                    else "not in manifest"
                )
                states = [r.state for r in recs if not r.ok]
                cell += "".join(f" ({states.count(s)} {s})" for s in sorted(set(states)))
                cells.append(cell)
            seeds = sorted({r.run.seed for v in by.values() for r in v if r.ok})
            rows.append(
                [pair, self.first_ok(some).data_text(), *cells, ", ".join(map(str, seeds)) or "—"]
            )
        b = self.doc.add
        b(
            D.Table(
                ["pair", "data", *(UDA_NAMES[m] for m in UDA_METHODS), "seeds"],
                rows,
                f"Target val accuracy (%), mean ± std over seeds; scale {self.scale}",
            ),
            D.Table(
                ["pair (real data)", "source only", "DANN", "train on target"],
                [list(r) for r in PUBLISHED_DANN],
                "Published DANN (Ganin & Lempitsky 2015, Table 1)",
            ),
            D.Table(
                ["pair (course data)", "method", "course baseline", "best student"],
                [list(r) for r in COURSE_UDA],
                "Course numbers to beat (sources: docs/protocols.md in the genda repository)",
            ),
        )
        for pair, by in pairs.items():
            b(D.Heading(f"t-SNE: {pair}", 3))
            for m in UDA_METHODS:
                if m not in by:
                    continue
                r = self.first_ok(by[m])
                b(
                    D.Para(f"{UDA_NAMES[m]} — {self.provenance(by[m])}"),
                    *self.failures(by[m]),
                    D.Gallery(
                        [
                            self.image(
                                r,
                                r.artifact(*ART[k]),
                                f"{UDA_NAMES[m]}: latent coloured by {w}",
                                f"t-SNE by {w}",
                                380,
                            )
                            for k, w in (("uda_tsne_class", "class"), ("uda_tsne_domain", "domain"))
                        ]
                    ),
                )

    def classifier(self) -> None:
        if self.no_runs("classifier"):
            return
        rows = []
        for recs in self.items("classifier").values():
            ok = [r for r in recs if r.ok]
            rows.append(
                [
                    self.label(recs),
                    mean_std([r.value("acc") for r in ok], 100.0, 2),
                    self.first_ok(recs).data_text(),
                    ", ".join(str(r.run.seed) for r in ok) or "—",
                    self.first_ok(recs).where() if ok else f"failed: {recs[0].error}",
                ]
            )
        self.doc.add(
            D.Table(
                ["run", "val accuracy (%)", "data", "seeds", "run dir"],
                rows,
                f"LeNet (the course's digit classifier); scale {self.scale}",
            )
        )

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
                r.where(),
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
        for key, title in SECTIONS.items():
            self.doc.add(D.Heading(title))
            getattr(self, key)()
        return D.write(self.doc, self.out)


def _short(text: str, n: int = 240) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _int(v: float | None) -> str:
    return "?" if v is None else str(int(v))


def _eta(r: RunRecord) -> float | None:
    eta = (r.config.get("sampler") or {}).get("eta")
    if eta is None:
        eta = next((float(v) for k, v in r.run.variant if k.endswith("eta")), None)
    return None if eta is None else float(eta)


def _uda_method(r: RunRecord) -> str:
    target = str((r.config.get("model") or {}).get("_target_", ""))
    if target.endswith("ADDATask") or r.run.entry.experiment.startswith("adda"):
        return "adda"
    mode = (r.config.get("model") or {}).get("mode") or dict(r.run.variant).get("model.mode")
    return str(mode or "dann")


def build_report(
    manifest: Manifest, scale: str, runs_root: Path, out_dir: Path, seeds: int | None = None
) -> tuple[Path, Path]:
    """Write REPORT.md and report.html for `scale` from the run dirs under `runs_root`."""
    return Builder(manifest, scale, runs_root, out_dir, seeds).build()
