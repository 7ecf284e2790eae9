"""`python -m genda.predict RUN_OR_CKPT IMAGE_DIR OUT_CSV`: label every PNG of a folder and
write `image_name,label` (the course's CSV format), sorted by name."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from genda.data.folders import decode, png_names
from genda.errors import GendaError
from genda.runs import data_module_of, load_run, overrides_method


def predict_folder(run_or_ckpt: str, image_dir: str, device: str = "cpu",
                   batch_size: int = 500) -> tuple[list[str], list[int]]:
    run = load_run(run_or_ckpt, device)
    if not overrides_method(run.task, "predict"):
        raise GendaError(f"{run.path} is a {type(run.task).__name__} run, which does not classify "
                         f"images (use python -m genda.sample)")
    names = png_names(Path(image_dir))
    images = decode([Path(image_dir) / n for n in names])
    dm = data_module_of(run.cfg)
    labels: list[int] = []
    with torch.inference_mode():
        for chunk in images.split(batch_size):
            x = dm.to_float(dm.prepare(chunk)).to(device)
            labels += run.task.predict(x).cpu().tolist()
    return names, labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m genda.predict", description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run dir (uses best.ckpt, else last.ckpt) or a checkpoint file")
    ap.add_argument("image_dir")
    ap.add_argument("out_csv")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        names, labels = predict_folder(args.run, args.image_dir, args.device)
    except GendaError as e:
        print(f"genda.predict: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_name", "label"])
        w.writerows(sorted(zip(names, labels, strict=True)))
    print(f"wrote {len(names)} labels to {out} in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
