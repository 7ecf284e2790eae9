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
    # (override key, "entry[/variant]"): the key is set to that run's dir, seed by seed
    uses: tuple[tuple[str, str], ...] = ()
    # overrides for one scale only ({scale: (key=value, ...)}), after `overrides`
    scale_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    info: dict[str, Any] = field(
        default_factory=dict
    )  # free fields for the builder: label, pair...

    def variants(self) -> list[tuple[tuple[str, str], ...]]:
        """The sweep's product as ((key, value), ...) tuples; [()] without a sweep."""
        keys = [k for k, _ in self.sweep]
        return [tuple(zip(keys, values, strict=True)) for values in itertools.product(*(v for _, v in self.sweep))]


@dataclass(frozen=True)
class Run:
    """One concrete run: an entry's variant (sweep values) at one seed."""

    entry: Entry
    variant: tuple[tuple[str, str], ...]
    seed: int
    run_dir: Path
    uses: tuple[tuple[str, Path], ...] = ()  # (override key, run dir of the same seed it reads)
    scale: str = ""  # the scale it runs at (its entry's `overrides` for that scale apply)

    @property
    def name(self) -> str:
        return str(Path(*self.run_dir.parts[-(2 + bool(self.variant)) :]))

    def overrides(self) -> list[str]:
        """The run's own Hydra overrides (the runner adds scale, seed, group and run dir)."""
        return [
            f"experiment={self.entry.experiment}",
            *self.entry.overrides,
            *self.entry.scale_overrides.get(self.scale, ()),
            *(f"{k}={v}" for k, v in self.variant),
            *(f"{k}='{p}'" for k, p in self.uses),
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
            for variant in e.variants():
                base = root / scale / e.id
                if variant:
                    base = base / _variant_name(variant)
                runs.extend(Run(e, variant, s, base / f"seed{s}", self._uses(e, scale, root, s, n_seeds), scale)
                            for s in range(n_seeds))
        if only and not runs:
            known = sorted({e.item for e in self.entries} | {e.id for e in self.entries})
            raise ConfigError(
                f"--only {only!r} matches no manifest entry; known: {', '.join(known)}"
            )
        return runs

    def _uses(self, e: Entry, scale: str, root: Path, seed: int, n_seeds: int) -> tuple[tuple[str, Path], ...]:
        """The run dirs `e`'s `uses:` names for one seed (each an earlier entry's run, same seed)."""
        out = []
        for key, ref in e.uses:
            dep = next(d for d in self.entries if d.id == ref.split("/")[0])
            have = dep.seeds.get(scale, self.default_seeds.get(scale, 1))
            if scale not in dep.scales or have < n_seeds:
                raise ConfigError(f"{self.path}: entry '{e.id}' uses {ref} for {n_seeds} seed(s) at "
                                  f"scale {scale}, which has {have if scale in dep.scales else 0}")
            path = (root / scale / ref / f"seed{seed}").resolve()
            if "'" in str(path):  # passed as a quoted Hydra value
                raise ConfigError(f"runs root {root}: a path with a quote (') cannot be passed to {key}")
            out.append((key, path))
        return tuple(out)


def report_group(manifest: Manifest, scale: str) -> str:
    """The W&B group shared by all runs of one report build."""
    return f"{manifest.group}-{scale}"


def _variant_name(variant: tuple[tuple[str, str], ...]) -> str:
    """A sweep variant's folder: `mode_source_only`, `lambda_max_0.3-lr_0.001`."""
    return "-".join(f"{_slug(k.split('.')[-1])}_{_slug(v)}" for k, v in variant)


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


def _entry(eid: str, spec: Any, where: str, earlier: dict[str, Entry] | None = None) -> Entry:
    earlier = earlier or {}
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
    per_scale = dict(overrides) if isinstance(overrides, dict) else {}
    if isinstance(overrides, dict):  # {all: [...], <scale>: [...]}: `all` first, then the scale's own
        overrides = per_scale.pop("all", None) or []
    if not isinstance(overrides, list) or not set(per_scale) <= set(SCALES) or not all(
            isinstance(v, list) for v in per_scale.values()):
        raise ConfigError(f"{where}: entry '{eid}': overrides must be a list of key=value strings, "
                          f"or a map of all/{'/'.join(SCALES)} to such lists")
    scales = tuple(spec.get("scales") or SCALES)
    if not set(scales) <= set(SCALES):
        raise ConfigError(f"{where}: entry '{eid}': scales must be a list of {', '.join(SCALES)}")
    known = {"experiment", "item", "sweep", "overrides", "seeds", "scales", "uses"}
    # the overrides reach `python -m genda`: refuse a `_target_` off the allow-list up front
    check_overrides(
        [str(o) for o in overrides] + [str(o) for v in per_scale.values() for o in v]
        + [f"{k}={_fmt(x)}" for k, v in sweep.items() for x in v],
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
        _uses(spec.get("uses"), earlier, eid, where),
        {k: tuple(str(o) for o in v) for k, v in per_scale.items()},
        {k: v for k, v in spec.items() if k not in known},
    )


def _uses(value: Any, earlier: dict[str, Entry], eid: str, where: str) -> tuple[tuple[str, str], ...]:
    """`uses: {override key: entry[/variant]}`: the runs of an entry listed earlier (the runner
    starts runs in manifest order and a run waits for the runs it uses)."""
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"{where}: entry '{eid}': uses must map override keys to 'entry[/variant]'")
    for key, ref in value.items():
        dep = earlier.get(ref.partition("/")[0])
        if dep is None or ref.partition("/")[2] not in [_variant_name(v) for v in dep.variants()]:
            raise ConfigError(f"{where}: entry '{eid}': uses {key}: {ref!r} is not a run of an entry listed "
                              "before it ('<entry id>' or '<entry id>/<variant>', e.g. uda_mnist_mnistm/mode_source_only)")
        check_overrides([f"{key}=x"], f"{where}: entry '{eid}'")
    return tuple(value.items())


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
    earlier: dict[str, Entry] = {}
    for k, v in runs.items():
        earlier[str(k)] = _entry(str(k), v, str(path), earlier)
    entries = tuple(earlier.values())
    return Manifest(
        str(raw.get("group", "report")), entries, _seeds(raw.get("seeds"), str(path)), path
    )
