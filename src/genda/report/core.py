"""What every report section shares: the run records of one scale, the orientation numbers
(baselines.yaml) and the helpers that turn runs into blocks. Artefacts are found by role in each
run's artifacts/index.json (RunRecord.role), which the run's task wrote from its ARTEFACTS."""

from __future__ import annotations

import os
import shutil
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from genda.report import doc as D
from genda.report import figures, hparams
from genda.report.manifest import Manifest
from genda.report.records import (
    NO_INDEX,
    RunRecord,
    face_detectors,
    group_by_entry,
    mean_std,
    seed_list,
)

LEGEND_WIDTH = 640  # px: figures that carry a legend (t-SNE), wide enough to read it


@cache
def load_baselines() -> dict:
    """baselines.yaml (shipped with the package): the course's and published numbers with
    their sources."""
    text = resources.files("genda.report").joinpath("baselines.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def cite(ref: dict) -> str:
    """'value [source key]' of one {value, source} entry of baselines.yaml."""
    return f"{ref['value']} [{ref['source']}]"


def sources_table(keys: list[str]) -> D.Table:
    """The sources named by `keys` (in order, once each) with their full descriptions."""
    src = load_baselines()["sources"]
    seen = list(dict.fromkeys(keys))
    return D.Table(["source", "what it is"], [[f"[{k}]", " ".join(str(src[k]).split())] for k in seen],
                   "Sources of the numbers above (src/genda/report/baselines.yaml; docs/protocols.md)")


class Core:
    """Collects the run records of one scale; helpers shared by the section modules."""

    def __init__(
        self,
        manifest: Manifest,
        scale: str,
        runs_root: Path,
        out_dir: Path,
        seeds: int | None = None,
    ) -> None:
        self.manifest, self.scale, self.out = manifest, scale, Path(out_dir)
        self.runs_root = Path(runs_root)
        self.records = [
            RunRecord.read(r) for r in manifest.expand(scale, Path(runs_root), seeds=seeds)
        ]
        self.img = self.out / "img"
        self.doc = D.Document(f"genda report — scale {scale}")

    # -- blocks from run dirs -------------------------------------------------------------
    def image(self, rec: RunRecord, src: Path | None, caption: str, what: str, width: int = 0):
        """Copy an artefact into img/ and return an Image block (or a Missing note)."""
        if src is None or not src.is_file():
            why = f" — {NO_INDEX}" if rec.ok and rec.index is None else ""
            return D.Missing(
                f"{what} of `{rec.run.name}` ({rec.state}; expected under "
                f"{self.run_link(rec)}/artifacts{why})"
            )
        dst = self.img / f"{_flat(rec.run.name)}__{_flat(src.relative_to(rec.artifacts).as_posix())}"
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

    def run_link(self, r: RunRecord) -> str:
        """A Markdown link to the run dir, relative to the report folder, named by the run."""
        href = Path(os.path.relpath(r.run.run_dir, self.out)).as_posix()
        return f"[{r.run.name}]({href})"

    def provenance(self, recs: list[RunRecord]) -> str:
        r = self.first_ok(recs)
        done = [x.run.seed for x in recs if x.ok]
        seeds = seed_list(done) if done else "seeds: none complete"
        return f"data: {r.data_text()}; scale: {self.scale}; {seeds}; run dir: {self.run_link(r)}"

    def failures(self, recs: list[RunRecord]) -> list:
        return [
            D.Para(f"**{r.state}**: `{r.run.name}` — {_short(r.error or 'no status.json')}")
            for r in recs
            if not r.ok
        ]

    def course_table(
        self, rows: list[tuple[str, list[str]]], labels: list[str] | None = None
    ) -> list:
        """rows: (baselines.yaml course key, this report's values, one per label) -> a
        comparison table and the table of its sources."""
        course = load_baselines()["course"]
        cols = (
            [f"{x} ({self.scale})" for x in labels] if labels else [f"this report ({self.scale})"]
        )
        body, keys = [], []
        for k, v in rows:
            c = course[k]
            body.append([c["metric"], cite(c["baseline"]), cite(c["best_student"]), *v])
            keys += [c["baseline"]["source"], c["best_student"]["source"]]
        return [
            D.Table(["metric", "course baseline", "best student", *cols], body,
                    "Numbers to beat, measured on the course's real data (not comparable with "
                    "stand-in data); [source] keys are listed below"),
            sources_table(keys),
        ]

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
            out.add(f"{ev.get('n_real', '?')} / {ev.get('n_fake', '?')} images{note}")
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

    def hparam_table(self, columns: dict[str, list[RunRecord]], what: str):
        """Hyperparameters of each column's runs, from their saved config.yaml."""
        return hparams.table(
            {name: [r.config for r in recs if r.config] for name, recs in columns.items()},
            f"{what}: hyperparameters from each run's saved config.yaml (scale {self.scale}; "
            "values that differ between a column's runs are listed)",
        )

    def curves(self, spec: list, name: str, title: str, caption: str, missing: str):
        """A panel figure of metrics.jsonl series (figures.panels) as an Image, else a Missing."""
        path = figures.panels(spec, self.new_image(f"{_flat(name)}__curves.png"), title)
        return D.Image(path, caption) if path else D.Missing(missing)  # natural size: 430 px a panel


def _flat(name: str) -> str:
    return name.replace("/", "__")


def _short(text: str, n: int = 240) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _int(v: float | None) -> str:
    return "?" if v is None else str(int(v))


def _eta(r: RunRecord) -> float | None:
    # model.sampler; runs made before the sampler moved under the model kept a root `sampler:`
    sampler = (r.config.get("model") or {}).get("sampler") or r.config.get("sampler") or {}
    eta = sampler.get("eta") if isinstance(sampler, dict) else None
    if eta is None:
        eta = next((float(v) for k, v in r.run.variant if k.endswith("eta")), None)
    return None if eta is None else float(eta)
