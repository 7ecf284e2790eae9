"""Read-only views of finished run dirs: state, resolved config, metrics, artefacts, data.

The files a run dir holds besides the run's own (`runner.json`, and `runner_last.json` per
scale) are written by `genda.reproduce`; their names and formats are defined here, where the
report reads them, so the report never imports the trainer."""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from genda.kernel import ARTEFACT_INDEX, ARTEFACT_INDEX_SCHEMA
from genda.report.manifest import Run

RUNNER_FILE = "runner.json"  # per run dir: the reproducer's record of its last execution
RUNNER_LAST_FILE = "runner_last.json"  # per <root>/<scale>: what the last invocation did
REPRODUCE_FILE = "reproduce_last.json"  # per <root>/<scale>: start and wall time of the last genda.reproduce
FINISHED_FORMAT = "%Y-%m-%d %H:%M:%S"  # runner.json "finished" (local time)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def saved_config(run_dir: Path) -> dict | None:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    try:
        return OmegaConf.to_container(OmegaConf.load(path))
    except Exception:
        return None


def read_index(artifacts: Path) -> dict[str, list[Path]] | None:
    """`artifacts`/index.json (a run's artifacts/ folder) as {role: [files]}: the run's task wrote
    it from its ARTEFACTS after its final artefacts. None where the run has none (unfinished, or
    made before the index) or it has another schema. Paths that leave artifacts/ are dropped."""
    doc = read_json(artifacts / ARTEFACT_INDEX)
    if not isinstance(doc, dict) or doc.get("schema") != ARTEFACT_INDEX_SCHEMA:
        return None
    out: dict[str, list[Path]] = {}
    roles = doc.get("artefacts")
    for role, rel in (roles if isinstance(roles, dict) else {}).items():
        rels = rel if isinstance(rel, list) else [rel]
        out[str(role)] = [artifacts / x for x in rels if isinstance(x, str) and x
                          and not Path(x).is_absolute() and ".." not in Path(x).parts]
    return out


def role_files(index: dict[str, list[Path]] | None, role: str) -> list[Path]:
    """The existing files of one role of an index (read_index); none without an index."""
    return [p for p in (index or {}).get(role, []) if p.is_file()]


# the report's note on an artefact a finished run lacks because it predates artifacts/index.json
NO_INDEX = "the run has no artifacts/index.json (made before the artefact index)"


@dataclass
class RunRecord:
    """One manifest run as found on disk (any file may be missing)."""

    run: Run
    status: dict = field(default_factory=dict)
    runner: dict = field(default_factory=dict)

    @classmethod
    def read(cls, run: Run) -> RunRecord:
        return cls(
            run,
            read_json(run.run_dir / "status.json") or {},
            read_json(run.run_dir / RUNNER_FILE) or {},
        )

    @property
    def state(self) -> str:
        """complete | failed | interrupted | running | not run."""
        s = self.status.get("state")
        if self.runner.get("state") == "failed" and s in (None, "failed", "running"):
            return "failed"
        return s or "not run"

    @property
    def ok(self) -> bool:
        return self.state == "complete"

    @property
    def error(self) -> str | None:
        return self.runner.get("error") or self.status.get("error")

    @property
    def artifacts(self) -> Path:
        return self.run.run_dir / "artifacts"

    @cached_property
    def config(self) -> dict:
        return saved_config(self.run.run_dir) or {}

    @cached_property
    def summary(self) -> dict:
        return read_json(self.run.run_dir / "summary.json") or {}

    @cached_property
    def metrics(self) -> list[dict]:
        path = self.run.run_dir / "metrics.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a torn last line of a killed run
        return rows

    def value(self, *keys: str) -> float | None:
        """The first of `keys` found in summary.json (or a final/<key> log row), as a float."""
        for k in keys:
            v = self.summary.get(k)
            if v is None:
                v = next(
                    (r[f"final/{k}"] for r in reversed(self.metrics) if f"final/{k}" in r), None
                )
            if isinstance(v, int | float) and not isinstance(v, bool):
                return float(v)
        return None

    @property
    def face_detector(self) -> str | None:
        """Detector of the run's face score: eval.json's face_detector (older runs: MTCNN)."""
        det = (self.json_artifact("eval.json") or {}).get("face_detector")
        if det and self.value(f"face_score_{det}") is not None:
            return str(det)
        return "mtcnn" if self.value("face_score") is not None else None

    def face_score(self, real: bool = False) -> float | None:
        """% of generated images (real: of the reference val images) with exactly one face."""
        det = self.face_detector
        if det is None:
            return None
        return self.value(f"face_score_real_{det}") if real else self.value(f"face_score_{det}", "face_score")

    def artifact(self, *patterns: str) -> Path | None:
        """The first existing artefact matching any glob in `patterns` (in that order)."""
        for pat in patterns:
            hits = sorted(p for p in self.artifacts.glob(pat) if p.exists())
            if hits:
                return hits[0]
        return None

    def json_artifact(self, *patterns: str) -> Any:
        path = self.artifact(*patterns)
        return read_json(path) if path else None

    @cached_property
    def index(self) -> dict[str, list[Path]] | None:
        """artifacts/index.json as {role: [files]} (read_index); None where the run has none."""
        return read_index(self.artifacts)

    def role_files(self, role: str) -> list[Path]:
        """The existing files of one artefact role of index.json (e.g. 'ddim_images')."""
        return role_files(self.index, role)

    def role(self, role: str) -> Path | None:
        """The file of one artefact role of index.json (e.g. 'gan_grid'), or None."""
        return next(iter(self.role_files(role)), None)

    def role_json(self, role: str) -> Any:
        path = self.role(role)
        return read_json(path) if path else None

    @property
    def steps(self) -> int | None:
        return self.status.get("step")

    def domains(self) -> list[tuple[str, bool | None]]:
        """[(domain name, embedded?)] of the run's data: one domain, or source then target."""
        data = self.config.get("data") or {}
        logged = next((r for r in self.metrics if any(k.startswith("data/") for k in r)), {})
        if "source" in data and "target" in data:
            return [
                (str(data[k].get("domain")), logged.get(f"data/{k}/embedded"))
                for k in ("source", "target")
            ]
        if "domain" in data:
            return [(str(data["domain"]), logged.get("data/embedded"))]
        return []

    def data_text(self) -> str:
        """e.g. 'mnistm (embedded stand-in) → syndigits (embedded stand-in)'."""
        parts = [f"{name} ({_kind(emb)})" for name, emb in self.domains()]
        return " → ".join(parts) if parts else "unknown (no config.yaml)"

    def where(self) -> str:
        """The run dir, relative to the working directory when it lies below it."""
        rel = os.path.relpath(self.run.run_dir)
        return str(self.run.run_dir) if rel.startswith("..") else rel


def _kind(embedded: bool | None) -> str:
    return {True: "embedded stand-in", False: "real"}.get(embedded, "provenance not logged")


def seeds_text(n: int) -> str:
    return "1 seed" if n == 1 else f"{n} seeds"


def seed_list(seeds: Iterable[int]) -> str:
    """Which seeds completed, read as words: 'seed 0', 'seeds 0, 1, 2', '—' for none (a bare
    '0' in a 'seeds' column reads as 'zero seeds')."""
    got = sorted(set(seeds))
    if not got:
        return "—"
    return f"seed {got[0]}" if len(got) == 1 else "seeds " + ", ".join(map(str, got))


def mean_std(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """'m ± s (k seeds)' over seeds ('m (1 seed)' for one value; '—' for none)."""
    vals = [v * scale for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f} (1 seed)"
    return (
        f"{statistics.mean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f} "
        f"({seeds_text(len(vals))})"
    )


def kid_text(records: list[RunRecord]) -> str:
    """KID ×10³: 'k ± s (1 seed; ± over subsets)' for one run, mean ± std over seeds for more;
    '—' for none."""
    vals = [(r.value("kid"), r.value("kid_std")) for r in records]
    vals = [(k, s) for k, s in vals if k is not None and math.isfinite(k)]
    if len(vals) == 1:
        k, s = vals[0]
        return f"{k * 1e3:.2f} ± {(s or 0.0) * 1e3:.2f} (1 seed; ± over subsets)"
    return mean_std([k for k, _ in vals], scale=1e3)


def face_detectors(records: list[RunRecord]) -> str:
    """The face detectors of the runs' face scores ('—' for none)."""
    return ", ".join(sorted({d for r in records if (d := r.face_detector)})) or "—"


def group_by_entry(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    out: dict[str, list[RunRecord]] = {}
    for r in records:
        out.setdefault(r.run.entry.id, []).append(r)
    return out
