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
from genda.train.artifacts import save_folder


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
    try:
        if args.n <= 0:
            raise GendaError(f"--n must be positive, got {args.n}")
        run = load_run(args.run, args.device)
        if not overrides_method(run.task, "export_images"):
            raise GendaError(f"{run.path} is a {type(run.task).__name__} run, which does not generate "
                             f"images (use python -m genda.predict)")
        with torch.inference_mode():
            images, names, normalize = run.task.export_images(args.n, args.seed, noise_dir=args.noise_dir)
        out = save_folder(Path(args.out_dir), images, names, normalize=normalize)
    except GendaError as e:
        print(f"genda.sample: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(names)} images to {out} ({run.weights} weights, step {run.step}, "
          f"{run.path}) in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
