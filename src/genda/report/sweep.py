"""Sweep tables: one row per combination of swept keys (seeds averaged), from a multirun dir.

`python -m genda -m ...` ends with `SweepTable.on_multirun_end` (registered in conf/config.yaml),
which writes `sweep.md`, `sweep.csv` and, for a sweep over one key of an image task, `sweep_grid.png`
into the sweep dir. `python -m genda.report sweep DIR` rebuilds them for any sweep dir (basic,
joblib or SLURM launcher): it only reads each job's `.hydra/overrides.yaml`, `summary.json` and,
for the grid, the pictures its `artifacts/index.json` names (the roles of its task's ARTEFACTS).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genda.errors import GendaError
from genda.report.records import NO_INDEX, read_index, role_files

# keys that never become a table column on their own (seeds are averaged over)
_SEED_KEYS = ("seed",)
# metrics where lower is better; everything else is taken as higher-is-better
_LOWER = ("fid", "kid", "loss", "mse", "nll", "error")
# artefact roles (artifacts/index.json) of a job's headline picture, the first found wins:
# ddim_images (ddim/00.png...: the eta-dependent samples, up to 4), else one grid of samples
_PICTURE_ROLES = ("ddim_images", "ddpm_grid", "gan_grid", "vae_samples", "ddim_eta_grid")
_MAX_PICTURES = 4


@dataclass
class Job:
    path: Path
    overrides: dict[str, str]
    summary: dict[str, Any]


@dataclass
class Row:
    values: dict[str, str]
    jobs: list[Job] = field(default_factory=list)
    stats: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # mean, std, n


def _parse_override(text: str) -> tuple[str, str] | None:
    text = text.lstrip("+~")
    if "=" not in text:
        return None
    key, value = text.split("=", 1)
    return key, value


def read_jobs(sweep_dir: Path) -> list[Job]:
    """Every job dir under `sweep_dir` that has `.hydra/overrides.yaml` (any depth up to 2)."""
    jobs = []
    for ov in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")) + sorted(
        sweep_dir.glob("*/*/.hydra/overrides.yaml")
    ):
        job_dir = ov.parent.parent
        try:
            items = yaml.safe_load(ov.read_text()) or []
        except (OSError, yaml.YAMLError) as e:
            raise GendaError(f"{ov}: cannot read the job's overrides ({e})") from e
        overrides = dict(p for p in (_parse_override(str(i)) for i in items) if p is not None)
        summary: dict[str, Any] = {}
        sfile = job_dir / "summary.json"
        if sfile.is_file():
            try:
                summary = json.loads(sfile.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise GendaError(f"{sfile}: not valid JSON ({e})") from e
        jobs.append(Job(job_dir, overrides, summary))
    return sorted(jobs, key=lambda j: _job_number(j.path))


def _job_number(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in path.parts[-2:])


def swept_keys(jobs: list[Job]) -> list[str]:
    """Keys whose value differs between jobs, in the order they first appear."""
    keys: list[str] = []
    for j in jobs:
        for k in j.overrides:
            if k not in keys and k != "hydra.run.dir":
                keys.append(k)
    return [k for k in keys if len({j.overrides.get(k) for j in jobs}) > 1]


def _metric_keys(jobs: list[Job]) -> list[str]:
    keys: list[str] = []
    for j in jobs:
        for k, v in j.summary.items():
            if k in keys or k == "step" or k == "n" or k.startswith("n_") or isinstance(v, bool):
                continue
            if isinstance(v, int | float) and math.isfinite(float(v)):
                keys.append(k)
    return keys


def _mean_std(values: list[float]) -> tuple[float, float, int]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, std, n


def lower_is_better(metric: str) -> bool:
    name = metric.lower().removeprefix("best_")
    return any(name == w or name.startswith(w + "_") or name.endswith("_" + w) for w in _LOWER)


def table(jobs: list[Job]) -> tuple[list[str], list[str], list[Row], str | None]:
    """(row keys, metric keys, rows, the metric that picks the best row)."""
    keys = [k for k in swept_keys(jobs) if k not in _SEED_KEYS]
    metrics = _metric_keys(jobs)
    rows: dict[tuple, Row] = {}
    for j in jobs:
        vals = {k: j.overrides.get(k, "") for k in keys}
        rows.setdefault(tuple(vals.values()), Row(vals)).jobs.append(j)
    for row in rows.values():
        for m in metrics:
            vs = [float(j.summary[m]) for j in row.jobs if isinstance(j.summary.get(m), int | float)]
            if vs:
                row.stats[m] = _mean_std(vs)
    # settings a run echoes into its summary (eta, num_steps) are not scores to rank by
    echoed = {k.split(".")[-1] for k in keys} | {"num_steps", "eta"}
    scores = [m for m in metrics if m not in echoed]
    best_metric = next((m for m in scores if m.startswith("best_")), scores[0] if scores else None)
    return keys, metrics, list(rows.values()), best_metric


def _best_index(rows: list[Row], metric: str | None) -> int | None:
    scored = [(i, r.stats[metric][0]) for i, r in enumerate(rows) if metric in r.stats]
    if not scored:
        return None
    pick = min if lower_is_better(metric) else max
    return pick(scored, key=lambda t: t[1])[0]


def _fmt(stat: tuple[float, float, int] | None) -> str:
    if stat is None:
        return "—"
    mean, std, n = stat
    digits = 4 if abs(mean) < 10 else 2
    return f"{mean:.{digits}f}" if n == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def write(sweep_dir: Path) -> dict[str, Path]:
    """Write sweep.md, sweep.csv (and sweep_grid.png where it applies); returns their paths."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise GendaError(f"{sweep_dir}: no such sweep dir")
    jobs = read_jobs(sweep_dir)
    if not jobs:
        raise GendaError(f"{sweep_dir}: no job dirs with .hydra/overrides.yaml (is it a multirun dir?)")
    keys, metrics, rows, best_metric = table(jobs)
    best = _best_index(rows, best_metric)
    done = sum(1 for j in jobs if j.summary)

    md = io.StringIO()
    md.write(f"# Sweep: {sweep_dir.name}\n\n")
    md.write(f"{len(jobs)} jobs ({done} with a summary), {len(rows)} combinations; "
             f"metrics are mean ± std over the row's seeds (sample std).\n")
    if best is not None:
        md.write(f"Best row (★) by `{best_metric}` "
                 f"({'lower' if lower_is_better(best_metric) else 'higher'} is better).\n")
    md.write("\n")
    head = [*keys, "seeds", *metrics, "best"]
    md.write("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*keys, "seeds", *[c for m in metrics for c in (f"{m}_mean", f"{m}_std")], "best"])
    for i, r in enumerate(rows):
        mark = "★" if i == best else ""
        cells = [r.values[k] for k in keys] + [str(len(r.jobs))]
        md.write("| " + " | ".join([*cells, *(_fmt(r.stats.get(m)) for m in metrics), mark]) + " |\n")
        flat = []
        for m in metrics:
            s = r.stats.get(m)
            flat += ["", ""] if s is None else [f"{s[0]:.6g}", "" if s[2] < 2 else f"{s[1]:.6g}"]
        w.writerow([*cells, *flat, "1" if mark else ""])
    md.write("\nJob dirs: " + ", ".join(f"`{j.path.relative_to(sweep_dir)}`" for j in jobs) + "\n")
    out = {"md": sweep_dir / "sweep.md", "csv": sweep_dir / "sweep.csv"}
    if len(keys) == 1:
        grid, missing = _grid(sweep_dir, keys[0], rows)
        if grid is not None:
            out["grid"] = grid
        for note in missing:
            md.write(f"\n> **missing:** {note}\n")
    _atomic_text(out["md"], md.getvalue())
    _atomic_text(out["csv"], buf.getvalue())
    return out


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _picture(job: Job) -> list[Path] | None:
    """The job's headline picture(s), by role of its artifacts/index.json; [] for a job whose task
    declares none of those roles (a classifier), None for a job without an index."""
    index = read_index(job.path / "artifacts")
    if index is None:
        return None
    return next((files[:_MAX_PICTURES] for role in _PICTURE_ROLES if (files := role_files(index, role))), [])


def _grid(sweep_dir: Path, key: str, rows: list[Row]) -> tuple[Path | None, list[str]]:
    """One labelled column per value of `key`: the first seed's headline picture(s). Also the
    report's missing note for each column's job that finished without an index (made before it)."""
    columns, missing = [], []
    for r in rows:
        job = r.jobs[0]
        pics = _picture(job)
        if pics is None and job.summary:
            where = job.path.relative_to(sweep_dir).as_posix()
            missing.append(f"headline picture of `{where}` (complete; expected under "
                           f"`{where}/artifacts` — {NO_INDEX})")
        if pics:
            columns.append((r.values[key], pics))
    if len(columns) < 2:
        return None, missing
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    n_rows = max(len(ps) for _, ps in columns)
    fig, axes = plt.subplots(n_rows, len(columns), squeeze=False,
                             figsize=(1.9 * len(columns) + 0.6, 1.9 * n_rows + 0.6))
    for c, (value, pics) in enumerate(columns):
        for r in range(n_rows):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r < len(pics):
                ax.imshow(Image.open(pics[r]).convert("RGB"))
            else:
                ax.axis("off")
            if r == 0:
                ax.set_title(f"{key.split('.')[-1]} = {value}", fontsize=10)
            if c == 0 and n_rows > 1:
                ax.set_ylabel(f"noise {pics[r].stem}" if r < len(pics) else "", fontsize=9)
    fig.suptitle(f"{sweep_dir.name}: one column per {key}", fontsize=11)
    fig.tight_layout()
    path = sweep_dir / "sweep_grid.png"
    tmp = path.with_name("sweep_grid.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path, missing


try:  # the Hydra callback; hydra is a hard dependency, the guard only keeps imports cheap to test
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object  # type: ignore[assignment,misc]


class SweepTable(Callback):
    """Hydra callback: at the end of a multirun, write the sweep table into the sweep dir."""

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            out = write(sweep_dir)
        except GendaError as e:
            print(f"[genda] sweep table not written: {e}", flush=True)
            return
        print(f"[genda] sweep table: {out['md']}" + (f", grid: {out['grid']}" if "grid" in out else ""),
              flush=True)
