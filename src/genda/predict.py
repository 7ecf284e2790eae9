"""`python -m genda.predict RUN_OR_CKPT IMAGE_DIR OUT_CSV`: label every PNG of a folder and
write `image_name,label` (the course's CSV format), sorted by name."""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import torch

from genda.data.folders import decode, fit_images, png_names
from genda.errors import DataError, GendaError
from genda.runs import data_module_of, load_run, overrides_method
from genda.train import checkpoint as ckpt_io
from genda.train.validate import check_device


def predict_folder(run_or_ckpt: str, image_dir: str, device: str = "cpu",
                   batch_size: int = 500) -> tuple[list[str], list[int]]:
    run = load_run(run_or_ckpt, device)
    if not overrides_method(run.task, "predict"):
        raise GendaError(f"{run.path} is a {type(run.task).__name__} run, which does not classify "
                         f"images (use python -m genda.sample)")
    names = png_names(Path(image_dir))
    images = decode([Path(image_dir) / n for n in names])
    dm = data_module_of(run.cfg)
    images, note = fit_images(images, input_shape(run.path, dm), image_dir)
    images = dm.prepare(images)
    if note:
        print(f"genda.predict: note: {note}", file=sys.stderr)
    labels: list[int] = []
    with torch.inference_mode():
        for chunk in images.split(batch_size):
            x = dm.to_float(chunk).to(device)
            try:
                labels += run.task.predict(x).cpu().tolist()
            except RuntimeError as e:  # a size the network cannot take (no input size known to resize to)
                raise DataError(f"{image_dir}: images of {tuple(images.shape[1:])} do not fit the model of "
                                f"{run.path} ({str(e).splitlines()[0][:100]})") from None
    return names, labels


def input_shape(ckpt: Path, dm) -> list[int] | None:
    """(C, H, W) the run trained on: saved in its checkpoint, else the data config or data."""
    shape = ckpt_io.load(ckpt).get("input_shape")
    if shape:
        return list(shape)
    if dm.image_size and dm.channels:
        return [dm.channels, dm.image_size, dm.image_size]
    try:  # older checkpoints: the training data's own size (from the data cache)
        return list(dm.split("val").images.shape[1:])
    except GendaError:
        return None


def write_csv(out: Path, rows: list[tuple[str, int]]) -> None:
    """`image_name,label` rows, written to a temp file and renamed: never a half-written CSV."""
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["image_name", "label"])
    w.writerows(rows)
    ckpt_io.atomic_write(out, lambda f: f.write(text.getvalue().encode("utf-8")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m genda.predict", description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run dir (uses best.ckpt, else last.ckpt) or a checkpoint file")
    ap.add_argument("image_dir")
    ap.add_argument("out_csv")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    t0 = time.time()
    out = Path(args.out_csv)
    try:
        check_device(args.device)
        if out.is_dir():
            raise GendaError(f"{out}: is a folder; give the path of the CSV file to write")
        names, labels = predict_folder(args.run, args.image_dir, args.device)
        write_csv(out, sorted(zip(names, labels, strict=True)))
    except GendaError as e:
        print(f"genda.predict: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk or read-only folder: the temp file is gone, nothing half-written
        print(f"genda.predict: error: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {len(names)} labels to {out} in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
