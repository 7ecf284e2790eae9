"""`python -m genda.evaluate {fid,faces,mse,csv,accuracy} ...`: score folders the course's way.

Each prints one line `<metric> <value> n=<n> time=<s>s ...`, `--json PATH` also writes it as JSON;
bad input ends with one line `genda.evaluate: error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from genda.errors import DataError, GendaError

PROG = "genda.evaluate"


def _fid(args: argparse.Namespace) -> dict:
    from genda.metrics.fid import fid_of_folders

    r = fid_of_folders(args.path_a, args.path_b, weights=args.weights, device=args.device,
                       batch_size=args.batch_size, dims=args.dims)
    return {"metric": "fid", "value": r["fid"], "n": [r["n_a"], r["n_b"]], "weights": r["weights"], "dims": r["dims"]}


def _faces(args: argparse.Namespace) -> dict:
    from genda.data.folders import decode, png_names
    from genda.metrics.face_score import FaceScore

    folder = Path(args.folder)
    images = decode([folder / n for n in png_names(folder)])
    r = FaceScore(device=args.device, batch_size=args.batch_size)(images)
    return {"metric": "face_score", "value": r["face_score"], "n": r["n"], "n_one_face": r["n_one_face"]}


def mse_of_folders(folder: Path, gt_folder: Path) -> dict:
    """Mean over ground-truth images of the per-image MSE on 0-255 pixels; files matched by name."""
    from genda.data.folders import decode, png_names

    names = png_names(gt_folder)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder}: no {missing[0]} to match {gt_folder / missing[0]} ({len(missing)} missing)")
    per_image = []
    for n in names:
        pred, gt = decode([folder / n])[0].double(), decode([gt_folder / n])[0].double()
        if pred.shape != gt.shape:
            raise DataError(f"{folder / n}: shape {tuple(pred.shape)} differs from ground truth {tuple(gt.shape)}")
        per_image.append(float(((pred - gt) ** 2).mean()))
    return {"metric": "mse", "value": float(np.mean(per_image)), "n": len(names),
            "per_image": dict(zip(names, per_image, strict=True))}


def _mse(args: argparse.Namespace) -> dict:
    return mse_of_folders(Path(args.folder), Path(args.gt_folder))


def csv_accuracy(pred_csv: Path, label_csv: Path) -> dict:
    """Share of `image_name` rows of the label CSV whose predicted label matches."""
    from genda.data.folders import read_csv

    pred = dict(zip(*read_csv(pred_csv), strict=True))
    names, labels = read_csv(label_csv)
    missing = [n for n in names if n not in pred]
    if missing:
        raise DataError(f"{pred_csv}: no prediction for {missing[0]} ({len(missing)} of {len(names)} missing)")
    correct = sum(pred[n] == y for n, y in zip(names, labels, strict=True))
    return {"metric": "accuracy", "value": correct / len(names), "n": len(names)}


def _csv(args: argparse.Namespace) -> dict:
    return csv_accuracy(Path(args.pred_csv), Path(args.label_csv))


def _accuracy(args: argparse.Namespace) -> dict:
    from genda.metrics.accuracy import accuracy_of_folder

    if not Path(args.classifier).is_file():
        raise DataError(f"{args.classifier}: classifier checkpoint not found")
    r = accuracy_of_folder(args.folder, args.classifier, args.device or "cpu")
    return {"metric": "accuracy", "value": r["accuracy"], "n": r["n"], "classifier": r["classifier"]}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        self.exit(2, f"{PROG}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    common.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p = _Parser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("fid", parents=[common], help="FID between two folders (or .npz statistics)")
    s.add_argument("path_a")
    s.add_argument("path_b")
    s.add_argument("--weights", default="auto", help="auto | pytorch-fid | fid-helper | PATH")
    s.add_argument("--dims", type=int, default=2048)
    s.add_argument("--batch-size", type=int, default=50)
    s.set_defaults(run=_fid)
    s = sub.add_parser("faces", parents=[common], help="face score (%% with exactly one MTCNN face)")
    s.add_argument("folder")
    s.add_argument("--batch-size", type=int, default=64)
    s.set_defaults(run=_faces)
    s = sub.add_parser("mse", parents=[common], help="MSE (0-255) against a ground-truth folder")
    s.add_argument("folder")
    s.add_argument("gt_folder")
    s.set_defaults(run=_mse)
    s = sub.add_parser("csv", parents=[common], help="accuracy of a predicted image_name,label CSV")
    s.add_argument("pred_csv")
    s.add_argument("label_csv")
    s.set_defaults(run=_csv)
    s = sub.add_parser("accuracy", parents=[common], help="digit accuracy of <label>_<nnn>.png files")
    s.add_argument("--folder", required=True)
    s.add_argument("--classifier", required=True, help="a classifier run's checkpoint")
    s.set_defaults(run=_accuracy)
    return p


def _line(r: dict) -> str:
    n = "/".join(map(str, r["n"])) if isinstance(r["n"], list) else r["n"]
    extra = "".join(f" {k}={r[k]}" for k in ("weights", "classifier") if k in r)
    return f"{r['metric']} {r['value']:.4f} n={n} time={r['time_s']:.1f}s{extra}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    start = time.perf_counter()
    try:
        result = args.run(args)
    except GendaError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    result["time_s"] = time.perf_counter() - start
    print(_line(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
