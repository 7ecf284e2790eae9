"""`python -m genda.evaluate {fid,kid,faces,mse,csv,accuracy,run,train-evaluator} ...`: score folders the course's way.

Each prints one line `<metric> <value> n=<n> time=<s>s ...`, `--json PATH` also writes it as JSON;
bad input ends with one line `genda.evaluate: error: ...` and exit status 2.

`train-evaluator --domain D [--scale S]` is the one step that trains genda's LeNet digit evaluator
(experiment classifier_mnist on D's real training split) into the cache, where the digit-accuracy
metric of ddpm_digits (`DigitEvaluator.for_domain`) loads it; the metric itself never trains.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genda.config import SCALES
from genda.errors import ConfigError, DataError, GendaError
from genda.train.validate import check_device

PROG = "genda.evaluate"


def _at_least_two(*paths: str) -> None:
    """FID/KID need 2+ images a side (a covariance): refuse at once, before Inception loads."""
    from genda.metrics.fid import image_files, read_rgb

    for path in paths:
        if Path(path).suffix != ".npz" and len(files := image_files(path)) < 2:
            read_rgb(files)  # an unreadable image is named first
            raise DataError(f"{path}: {len(files)} image(s); FID needs at least 2 per folder "
                            f"(and 2048+ for the standard 2048-d score)")


def _fid(args: argparse.Namespace) -> dict:
    from genda.metrics.fid import fid_of_folders

    _at_least_two(args.path_a, args.path_b)
    r = fid_of_folders(args.path_a, args.path_b, weights=args.weights, device=args.device,
                       batch_size=args.batch_size, dims=args.dims)
    out = {"metric": "fid", "value": r["fid"], "n": [r["n_a"], r["n_b"]], "weights": r["weights"], "dims": r["dims"]}
    return {**out, **{k: v for k, v in r.items() if k.startswith("kid")}}


def _kid(args: argparse.Namespace) -> dict:
    from genda.metrics.fid import kid_of_folders
    from genda.metrics.kid import SEED, SUBSET_SIZE, SUBSETS

    r = kid_of_folders(args.path_a, args.path_b, weights=args.weights, device=args.device,
                       batch_size=args.batch_size, dims=args.dims, subsets=args.subsets or SUBSETS,
                       subset_size=args.subset_size or SUBSET_SIZE, seed=SEED if args.seed is None else args.seed)
    return {"metric": "kid", "value": r["kid"], "std": r["kid_std"], "n": [r["n_a"], r["n_b"]],
            "subsets": r["kid_subsets"], "subset_size": r["kid_subset_size"], "weights": r["weights"], "dims": r["dims"]}


def _faces(args: argparse.Namespace) -> dict:
    from genda.data.folders import decode, png_names
    from genda.metrics.face_score import FaceScore

    folder = Path(args.folder)
    images = decode([folder / n for n in png_names(folder)])
    r = FaceScore(device=args.device, batch_size=args.batch_size, detector=args.detector)(images)
    return {"metric": "face_score", "value": r["face_score"], "unit": "%", "detector": r["detector"], "n": r["n"],
            "n_one_face": r["n_one_face"]}


def mse_of_folders(folder: Path, gt_folder: Path) -> dict:
    """Mean over ground-truth images of the per-image MSE on 0-255 pixels; files matched by name
    (genda.metrics.mse, the DDIM task's reader and score)."""
    from genda.metrics.mse import mse_by_name

    per_image = mse_by_name(folder, gt_folder)
    return {"metric": "mse", "value": float(np.mean(list(per_image.values()))), "n": len(per_image),
            "per_image": per_image}


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
    from genda.data.folders import fit_images
    from genda.metrics.accuracy import DigitEvaluator, read_labelled_folder

    if not Path(args.classifier).is_file():
        raise DataError(f"{args.classifier}: classifier checkpoint not found")
    x, y, names = read_labelled_folder(args.folder, uint8=True)
    x, note = fit_images(x, (3, 28, 28), args.folder)  # the LeNet evaluator's input, as the course's script
    if note:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    ev = DigitEvaluator.from_checkpoint(args.classifier, args.device or "cpu")  # genda checkpoint or Classifier.pth
    # uint8 pixels: genda's LeNet gets x/127.5 - 1, the course's Classifier.pth (x/255 - 0.5)/0.5
    return {"metric": "accuracy", "value": ev.accuracy(x, y), "n": len(names), "classifier": str(args.classifier),
            "classifier_kind": "course Classifier.pth" if ev.preprocess == "course" else "genda LeNet"}


def _run(args: argparse.Namespace) -> dict:
    """Re-score a finished run's checkpoint with its own task's final evaluation (no training)."""
    import datetime as dt

    from omegaconf import OmegaConf, open_dict

    from genda.config import check_targets
    from genda.train import Trainer
    from genda.train import checkpoint as ckpt_io

    run_dir = Path(args.run_dir)
    cfg_file = run_dir / "config.yaml"
    if not cfg_file.is_file():
        raise DataError(f"{run_dir}: no config.yaml (is it a genda run dir?)")
    if args.n is not None and args.n < 1:
        raise DataError(f"--n {args.n}: give at least 1 image")
    try:
        ckpt = ckpt_io.resolve_in_run_dir(run_dir, args.checkpoint)
    except GendaError:
        if args.checkpoint != "best":
            raise
        ckpt = ckpt_io.resolve_in_run_dir(run_dir, "last")  # runs without validation keep no best
        print(f"{PROG}: note: {run_dir} has no best.ckpt (no validation); scoring last.ckpt", file=sys.stderr)
    try:
        cfg = OmegaConf.load(cfg_file)
    except Exception as e:  # noqa: BLE001 - a torn or foreign YAML file
        raise DataError(f"{cfg_file}: not a readable config ({type(e).__name__})") from None
    check_targets(cfg, source=str(cfg_file))  # a stored config passes the allow-list before use
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = run_dir / "rescored" / f"{args.checkpoint}-{stamp}"
    with open_dict(cfg):
        cfg.trainer.resume = str(ckpt)
        cfg.trainer.max_steps = 0  # evaluate only
        cfg.trainer.finalize_on = "last"  # the chosen checkpoint is the one scored
        if args.device:
            cfg.trainer.accelerator = "cpu" if args.device == "cpu" else "gpu"
        if args.n is not None:
            if OmegaConf.select(cfg, "model.n_images") is not None:
                cfg.model.n_images = int(args.n)
            elif OmegaConf.select(cfg, "model.images_per_class") is not None:
                cfg.model.images_per_class = max(1, int(args.n) // int(cfg.model.get("num_classes", 10)))
            else:
                raise DataError(f"--n: {run_dir} is a run whose final evaluation has no image count")
    summary = Trainer(cfg, out).fit()
    final = {k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    headline = next((k for k in ("fid", "target_acc", "accuracy", "acc", "mse", "loss") if k in final),
                    next(iter(final), None))
    return {"metric": headline or "step", "value": float(final.get(headline, 0.0)), "n": final.get("n", "-"),
            "checkpoint": str(ckpt), "out": str(out), "scores": final}


# overrides train-evaluator passes on: where data and cache live, W&B, the device; nothing that
# changes what is learnt (the cache key is recipe, domain, scale and data folder only)
_EVALUATOR_KEYS = ("paths.", "logger.", "logger", "trainer.accelerator", "trainer.devices")


def _evaluator_overrides(overrides: Sequence[str]) -> list[str]:
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if "=" not in o or not any(key == k or (k.endswith(".") and key.startswith(k)) for k in _EVALUATOR_KEYS):
            raise ConfigError(f"train-evaluator: override {o!r} not passed on; give paths.*, logger.*, "
                              f"trainer.accelerator or trainer.devices (the evaluator's recipe is fixed)")
    return list(overrides)


def _compose(overrides: list[str]):
    """The resolved config `python -m genda` would run with (one ConfigError if it does not compose)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from genda.config import CONF_DIR, check_overrides, register_resolvers

    check_overrides(overrides)
    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
            OmegaConf.resolve(cfg)
    except GendaError:
        raise
    except Exception as e:  # noqa: BLE001 - a Hydra/OmegaConf error: its first line
        raise ConfigError(f"train-evaluator: {str(e).strip().splitlines()[0]}") from None
    finally:
        GlobalHydra.instance().clear()
    return cfg


def train_evaluator(domain: str, scale: str = "cpu", overrides: Sequence[str] = (),
                    device: str | None = None, quiet: bool = False) -> dict:
    """Train `domain`'s LeNet evaluator (experiment classifier_mnist with data.domain=`domain` at
    `scale`) in its cache run dir, where `DigitEvaluator.for_domain` reads it; nothing to do when it
    is there, an interrupted one resumes. `overrides`: paths.* (data_dir, cache_dir), logger.*,
    trainer.accelerator/devices. Returns {run_dir, checkpoint, trained (now), acc, n}."""
    from genda.data.domain import default_cache_dir, domain_names
    from genda.kernel import file_lock
    from genda.metrics.accuracy import (
        EVALUATOR_EXPERIMENT,
        evaluator_dir,
        evaluator_lock,
        evaluator_trained,
    )

    if domain not in domain_names():
        raise DataError(f"--domain {domain!r}: unknown; known: {', '.join(domain_names())}")
    extra = _evaluator_overrides(overrides)
    if device:
        extra.append(f"trainer.accelerator={'cpu' if device == 'cpu' else 'gpu'}")
    base = [f"experiment={EVALUATOR_EXPERIMENT}", f"data.domain={domain}", f"scale={scale}"]
    cfg = _compose([*base, *extra])
    cache_dir = cfg.data.get("cache_dir") or default_cache_dir()  # as the metric's run resolves them
    data_dir = cfg.data.get("data_dir")
    run_dir = evaluator_dir(domain, cache_dir, scale, data_dir)
    trained = False
    with file_lock(evaluator_lock(run_dir)):  # parallel commands train once; a metric waits for it
        if not evaluator_trained(run_dir):  # an interrupted training resumes from its last.ckpt
            cmd = [sys.executable, "-m", "genda", *base, "logger.mode=disabled", "trainer.progress=false",
                   f"paths.cache_dir={cache_dir}", *([f"paths.data_dir={data_dir}"] if data_dir else []),
                   *extra, f"hydra.run.dir={run_dir}"]
            if not quiet:
                print(f"[{PROG}] training the LeNet evaluator on {domain} ({scale}) -> {run_dir}",
                      file=sys.stderr, flush=True)
            _run_training(cmd, domain, quiet)
            trained = True
            if not evaluator_trained(run_dir):
                raise DataError(f"training the evaluator for domain {domain!r} ended without a complete "
                                f"run in {run_dir}")
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    return {"run_dir": run_dir, "checkpoint": run_dir / "checkpoints" / "best.ckpt", "trained": trained,
            "acc": summary.get("acc"), "n": summary.get("n", "-")}


def _run_training(cmd: list[str], domain: str, quiet: bool) -> None:
    """Run the evaluator's `python -m genda` (its stderr shown as it comes unless quiet); a failure
    is one DataError with the run's last line."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = "no output"
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip():
                last = line.strip()
            if not quiet:
                sys.stderr.write(line)
        proc.wait()
    except KeyboardInterrupt:  # the run got the Ctrl-C too: it checkpoints, then exits
        proc.wait()
        print(f"{PROG}: error: interrupted; run the same command again to resume the evaluator's training",
              file=sys.stderr)
        raise SystemExit(130) from None
    if proc.returncode != 0:
        raise DataError(f"training the evaluator for domain {domain!r} failed: {last}")


def _train_evaluator(args: argparse.Namespace) -> dict:
    r = train_evaluator(args.domain, args.scale, args.overrides, device=args.device)
    if not r["trained"]:
        print(f"{PROG}: note: the evaluator for {args.domain} ({args.scale}) is already trained; nothing to do",
              file=sys.stderr)
    acc = r["acc"]
    return {"metric": "val_acc", "value": float(acc) if isinstance(acc, int | float) else float("nan"),
            "n": r["n"], "checkpoint": str(r["checkpoint"]), "out": str(r["run_dir"]), "trained": r["trained"],
            "domain": args.domain, "scale": args.scale}


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
    s = sub.add_parser("kid", parents=[common], help="KID ± std between two folders (or .npz with features)")
    s.add_argument("path_a", help="sampled first, as torch-fidelity's input1 (the generated images)")
    s.add_argument("path_b")
    s.add_argument("--weights", default="auto", help="auto | pytorch-fid | fid-helper | PATH")
    s.add_argument("--dims", type=int, default=2048)
    s.add_argument("--batch-size", type=int, default=50)
    s.add_argument("--subsets", type=int, help="default 100 (torch-fidelity's)")
    s.add_argument("--subset-size", type=int, help="default 1000, at most the smaller folder")
    s.add_argument("--seed", type=int, help="subset sampling seed (default 2020)")
    s.set_defaults(run=_kid)
    s = sub.add_parser("faces", parents=[common], help="face score (%% of images with exactly one face)")
    s.add_argument("folder")
    s.add_argument("--detector", choices=("hog", "mtcnn"), default="hog",
                   help="hog: dlib HOG, the course's face_recognition (default) | mtcnn: facenet-pytorch")
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
    s.add_argument("--classifier", required=True,
                   help="a genda classifier run's checkpoint, or the course's Classifier.pth")
    s.set_defaults(run=_accuracy)
    s = sub.add_parser("run", parents=[common], help="re-score a finished run's checkpoint with its "
                       "task's final evaluation (eval.json in RUN_DIR/rescored/<checkpoint>-<time>/)")
    s.add_argument("run_dir")
    s.add_argument("--checkpoint", choices=("best", "last"), default="best")
    s.add_argument("--n", type=int, help="images to generate and score (default: the run's own)")
    s.set_defaults(run=_run)
    s = sub.add_parser("train-evaluator", parents=[common], help="train genda's LeNet digit evaluator for a "
                       "domain into the cache, where ddpm_digits' digit accuracy loads it (once per domain/scale)")
    s.add_argument("--domain", required=True, help="the digits it learns, e.g. mnistm (ddpm_digits' data.domain)")
    s.add_argument("--scale", choices=SCALES, default="cpu", help="the scale of the runs it scores (default cpu)")
    s.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="paths.data_dir=..., paths.cache_dir=..., logger.*, trainer.accelerator/devices")
    s.set_defaults(run=_train_evaluator)
    return p


def _line(r: dict) -> str:
    n = "/".join(map(str, r["n"])) if isinstance(r["n"], list) else r["n"]
    extra = "".join(f" {k}={r[k]}" for k in ("weights", "classifier", "checkpoint", "out") if k in r)
    if r["metric"] == "kid":
        value, extra = f"{r['value']:.6f} ± {r['std']:.6f}", f" subsets={r['subsets']}x{r['subset_size']}{extra}"
    elif r.get("unit") == "%":
        value, extra = f"{r['value']:.2f}%", f" detector={r['detector']}{extra}"
    else:
        value = f"{r['value']:.4f}"
    if "kid" in r:  # fid prints KID beside it
        extra = f" kid={r['kid']:.6f} ± {r['kid_std']:.6f} (subsets={r['kid_subsets']}x{r['kid_subset_size']}){extra}"
    return f"{r['metric']} {value} n={n} time={r['time_s']:.1f}s{extra}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    start = time.perf_counter()
    try:
        check_device(args.device)
        result = args.run(args)
    except GendaError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    result["time_s"] = time.perf_counter() - start
    print(_line(result))
    if args.json:
        from genda.kernel import atomic_write

        text = json.dumps(result, indent=2) + "\n"
        try:
            atomic_write(args.json, lambda f: f.write(text.encode()))
        except OSError as e:
            print(f"{PROG}: error: cannot write {args.json}: {e.strerror or e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
