"""`python -m genda.data {list,build,show,export}`: inspect, build and export domains."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from torchvision.utils import save_image

from genda.data.domain import Domain, default_cache_dir, domain_names, load_domain
from genda.data.embedded import BUILDERS, build_embedded, cache_key, fashion_dir
from genda.data.folders import export
from genda.data.sources import REAL
from genda.data.store import read_meta
from genda.data.synthetic import missing_wheel
from genda.errors import GendaError


def _status(name: str, cache: Path, data_dir: str | None) -> str:
    """One line per domain: state, sizes and provenance, without building or decoding."""
    if name in BUILDERS:
        meta = read_meta(cache / "embedded" / cache_key(name))
        if meta is None and name == "fashion" and fashion_dir(cache) is None:
            return "left out   (needs Debian dataset-fashion-mnist: bash scripts/install_debian_extras.sh)"
        if meta is None and (pip := missing_wheel(name)):
            return f"left out   (needs {pip})"
        if meta is None:
            return "not built  (python -m genda.data build)"
        s, shape = meta["sizes"], "x".join(map(str, meta["shape"]))
        return f"built      {s['train']}/{s['val']} {shape} in {meta['build_seconds']}s; {meta['provenance']}"
    if name in REAL:
        sub = REAL[name][0]
        if data_dir and sub and (Path(data_dir) / sub).is_dir():
            return f"present    {Path(data_dir) / sub}"
        where = f"{Path(data_dir) / sub}" if data_dir and sub else "paths.data_dir unset"
        return f"absent     ({where}); stand-in: {REAL[name][1]}"
    return "on demand"


def cmd_list(args: argparse.Namespace) -> None:
    for name, summary in domain_names().items():
        print(f"{name:18s} {_status(name, args.cache_dir, args.data_dir)}")
        print(f"{'':18s} {summary}")
        meta = read_meta(args.cache_dir / "embedded" / cache_key(name)) if name in BUILDERS else None
        if args.verbose and meta:
            for src in meta.get("sources", []):
                print(f"{'':20s}- {src}")


def cmd_build(args: argparse.Namespace) -> None:
    names = args.names or list(BUILDERS)
    for name in names:
        if name not in BUILDERS:
            raise GendaError(f"{name!r} is not an embedded domain; embedded: {', '.join(BUILDERS)}")
        try:
            meta = build_embedded(name, args.cache_dir, force=args.force)
        except GendaError as e:
            if args.names:  # asked for by name: a failure is an error
                raise
            print(f"{name:18s} left out: {e}")
            continue
        s = meta["sizes"]
        print(f"{name:18s} {s['train']}/{s['val']} ({meta['build_seconds']}s) {meta['provenance']}")


def grid(domain: Domain, split: str, per_class: int) -> torch.Tensor:
    """(N, C, H, W) uint8 samples: `per_class` per class in label order (rows), or the first 64."""
    sp = domain.split(split)
    if sp.labels is None or domain.num_classes is None:
        return sp.images[:64]
    g = torch.Generator().manual_seed(0)
    rows = []
    for c in range(domain.num_classes):
        idx = (sp.labels == c).nonzero().flatten()
        rows.append(sp.images[idx[torch.randperm(len(idx), generator=g)[:per_class]]])
    return torch.cat(rows)


def cmd_show(args: argparse.Namespace) -> None:
    d = load_domain(args.name, data_dir=args.data_dir, cache_dir=str(args.cache_dir))
    out = Path(args.out or f"{args.name}_{args.split}.png")
    images = grid(d, args.split, args.per_class)
    nrow = args.per_class if d.num_classes else 8
    save_image(images.float() / 255.0, out, nrow=nrow, padding=2, pad_value=1.0)
    print(f"{out}  ({d.provenance})")


def cmd_export(args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 1:
        raise GendaError(f"--limit {args.limit}: give at least 1 image per split (or leave --limit out for all)")
    if Path(args.dir).exists() and not Path(args.dir).is_dir():
        raise GendaError(f"{args.dir}: an existing file, not a folder; give a new or existing folder")
    d = load_domain(args.name, data_dir=args.data_dir, cache_dir=str(args.cache_dir))
    out = export({"train": d.train, "val": d.val}, Path(args.dir), args.limit)
    print(f"{out}  (load back with data=<cfg> data.domain=folder +data.domain_kwargs.path={out})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m genda.data", description=__doc__)
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    p.add_argument("--data-dir", default=os.environ.get("GENDA_DATA"), help="the course's hw2_data")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("list", help="every domain, present or not, sizes, provenance")
    s.add_argument("-v", "--verbose", action="store_true", help="also the build sources (photos, fonts)")
    s = sub.add_parser("build", help="build embedded domains into the cache")
    s.add_argument("--force", action="store_true")
    s.add_argument("names", nargs="*")
    s = sub.add_parser("show", help="write a PNG grid of samples (rows = classes)")
    s.add_argument("name")
    s.add_argument("--out")
    s.add_argument("--split", default="train", choices=["train", "val"])
    s.add_argument("--per-class", type=int, default=10)
    s = sub.add_parser("export", help="write a domain in the course folder layout (PNGs + CSVs)")
    s.add_argument("name")
    s.add_argument("dir")
    s.add_argument("--limit", type=int, help="at most this many images per split")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        {"list": cmd_list, "build": cmd_build, "show": cmd_show, "export": cmd_export}[args.cmd](args)
    except GendaError as e:
        print(f"genda.data: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
