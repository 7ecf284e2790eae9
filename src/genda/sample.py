"""`python -m genda.sample RUN_OR_CKPT OUT_DIR [--n 1000] [--seed S]`: a handed-in image folder.

GAN/VAE -> 0000.png...; conditional DDPM -> <digit>_<nnn>.png (n/10 per digit);
DDIM with --noise-dir -> 00.png... per noise file, min-max normalised per image."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from genda.errors import GendaError
from genda.runs import load_run, overrides_method
from genda.tasks.diffusion import read_noise_dir
from genda.train.artifacts import save_folder
from genda.train.validate import check_device


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m genda.sample", description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run dir (uses best.ckpt, else last.ckpt) or a checkpoint file")
    ap.add_argument("out_dir")
    ap.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise-dir", default=None, help="DDIM: folder of 00.pt, 01.pt ... noises")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    t0 = time.time()
    out_dir = Path(args.out_dir)
    try:
        if args.n <= 0:
            raise GendaError(f"--n must be positive, got {args.n}")
        check_device(args.device)
        if out_dir.exists() and not out_dir.is_dir():
            raise GendaError(f"{out_dir}: an existing file, not a folder; give a new or existing folder")
        if args.noise_dir:  # bad noise files fail before the run loads
            read_noise_dir(args.noise_dir)
        run = load_run(args.run, args.device)
        if not overrides_method(run.task, "export_images"):
            raise GendaError(f"{run.path} is a {type(run.task).__name__} run, which does not generate "
                             f"images (use python -m genda.predict)")
        with torch.inference_mode():
            images, names, normalize = run.task.export_images(args.n, args.seed, noise_dir=args.noise_dir)
        out = save_folder(out_dir, images, names, normalize=normalize)  # temp folder, then renamed
    except GendaError as e:
        print(f"genda.sample: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk or a read-only folder: nothing was left behind
        print(f"genda.sample: error: cannot write {e.filename or out_dir}: {e.strerror or e} "
              f"(nothing written to {out_dir}; free space or pick another folder)", file=sys.stderr)
        return 2
    print(f"wrote {len(names)} images to {out} ({run.weights} weights, step {run.step}, "
          f"{run.path}) in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
