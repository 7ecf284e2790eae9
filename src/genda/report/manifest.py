"""The report manifest (`experiments/manifest.yaml`): which runs the report needs.

Pure data, read by both sides: the report builder learns from it which runs exist, where their
dirs are and how to label them; `genda.reproduce` (above the report) trains those runs. Parsing
it trains nothing, so it lives here, where the report may import it.

Each entry names an experiment, extra overrides, an optional sweep (its product becomes
variants) and a seed count; `expand` turns it into concrete runs with fixed run dirs
`<root>/<scale>/<entry>[/<variant>]/seed<k>`, so a rerun finds what an earlier one wrote.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genda.config import SCALES, check_overrides
from genda.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_MANIFEST = ROOT / "experiments" / "manifest.yaml"
ITEMS = ("gan", "vae", "ddpm", "ddim", "uda", "classifier")


@dataclass(frozen=True)
class Entry:
    """One manifest entry: `experiment` plus `overrides`, swept over `sweep`, for `item`."""

    id: str
    experiment: str
    item: str
    overrides: tuple[str, ...] = ()
    sweep: tuple[tuple[str, tuple[str, ...]], ...] = ()
    seeds: dict[str, int] = field(default_factory=dict)
    scales: tuple[str, ...] = SCALES  # the scales at which the report includes this entry
    info: dict[str, Any] = field(
        default_factory=dict
    )  # free fields for the builder: label, pair...


@dataclass(frozen=True)
class Run:
    """One concrete run: an entry's variant (sweep values) at one seed."""

    entry: Entry
    variant: tuple[tuple[str, str], ...]
    seed: int
    run_dir: Path

    @property
    def name(self) -> str:
        return str(Path(*self.run_dir.parts[-(2 + bool(self.variant)) :]))

    def overrides(self) -> list[str]:
        """The run's own Hydra overrides (the runner adds scale, seed, group and run dir)."""
        return [
            f"experiment={self.entry.experiment}",
            *self.entry.overrides,
            *(f"{k}={v}" for k, v in self.variant),
            f"seed={self.seed}",
        ]


@dataclass(frozen=True)
class Manifest:
    group: str
    entries: tuple[Entry, ...]
    default_seeds: dict[str, int]
    path: Path

    def expand(
        self, scale: str, root: Path, only: str | None = None, seeds: int | None = None
    ) -> list[Run]:
        """Concrete runs at `scale`, optionally only those of one item or entry id; `seeds`
        replaces every entry's seed count."""
        if scale not in SCALES:
            raise ConfigError(f"--scale {scale!r}: use one of {', '.join(SCALES)}")
        runs = []
        for e in self.entries:
            if scale not in e.scales or (only and only not in (e.item, e.id)):
                continue
            n_seeds = seeds or e.seeds.get(scale, self.default_seeds.get(scale, 1))
            keys = [k for k, _ in e.sweep]
            for values in itertools.product(*(v for _, v in e.sweep)):
                variant = tuple(zip(keys, values, strict=True))
                base = root / scale / e.id
                if variant:
                    base = base / "-".join(
                        f"{_slug(k.split('.')[-1])}_{_slug(v)}" for k, v in variant
                    )
                runs.extend(Run(e, variant, s, base / f"seed{s}") for s in range(n_seeds))
        if only and not runs:
            known = sorted({e.item for e in self.entries} | {e.id for e in self.entries})
            raise ConfigError(
                f"--only {only!r} matches no manifest entry; known: {', '.join(known)}"
            )
        return runs


def report_group(manifest: Manifest, scale: str) -> str:
    """The W&B group shared by all runs of one report build."""
    return f"{manifest.group}-{scale}"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(s))


def _seeds(value: Any, where: str) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, int):
        return dict.fromkeys(SCALES, value)
    if (
        isinstance(value, dict)
        and set(value) <= set(SCALES)
        and all(isinstance(v, int) for v in value.values())
    ):
        return dict(value)
    raise ConfigError(f"{where}: seeds must be an int or a map of {'/'.join(SCALES)} to ints")


def _entry(eid: str, spec: Any, where: str) -> Entry:
    if not isinstance(spec, dict) or "experiment" not in spec:
        raise ConfigError(f"{where}: entry '{eid}' needs an 'experiment' key")
    item = spec.get("item")
    if item not in ITEMS:
        raise ConfigError(
            f"{where}: entry '{eid}' has item {item!r}; use one of {', '.join(ITEMS)}"
        )
    sweep = spec.get("sweep") or {}
    if not isinstance(sweep, dict) or not all(isinstance(v, list) and v for v in sweep.values()):
        raise ConfigError(f"{where}: entry '{eid}': sweep must map keys to non-empty lists")
    overrides = spec.get("overrides") or []
    if not isinstance(overrides, list):
        raise ConfigError(f"{where}: entry '{eid}': overrides must be a list of key=value strings")
    scales = tuple(spec.get("scales") or SCALES)
    if not set(scales) <= set(SCALES):
        raise ConfigError(f"{where}: entry '{eid}': scales must be a list of {', '.join(SCALES)}")
    known = {"experiment", "item", "sweep", "overrides", "seeds", "scales"}
    # the overrides reach `python -m genda`: refuse a `_target_` off the allow-list up front
    check_overrides(
        [str(o) for o in overrides] + [f"{k}={_fmt(x)}" for k, v in sweep.items() for x in v],
        f"{where}: entry '{eid}'",
    )
    return Entry(
        eid,
        str(spec["experiment"]),
        item,
        tuple(str(o) for o in overrides),
        tuple((str(k), tuple(_fmt(x) for x in v)) for k, v in sweep.items()),
        _seeds(spec.get("seeds"), f"{where}: entry '{eid}'"),
        scales,
        {k: v for k, v in spec.items() if k not in known},
    )


def _fmt(v: Any) -> str:
    """A sweep value as Hydra reads it back (YAML 0.0 and 0 are the same override)."""
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def load_manifest(path: str | Path = DEFAULT_MANIFEST) -> Manifest:
    """Parse and check a manifest file; errors name the file and the entry."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"manifest {path} not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"manifest {path}: not valid YAML ({str(e).splitlines()[0]})") from e
    runs = raw.get("runs")
    if not isinstance(runs, dict) or not runs:
        raise ConfigError(f"manifest {path}: needs a non-empty 'runs:' map of entry id -> spec")
    entries = tuple(_entry(str(k), v, str(path)) for k, v in runs.items())
    return Manifest(
        str(raw.get("group", "report")), entries, _seeds(raw.get("seeds"), str(path)), path
    )
