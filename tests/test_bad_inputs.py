"""Bad input ends in one line naming the file or key, exit status 2, no traceback, and no partial
output (issue 14, part 2). Every command runs as a subprocess in a temp dir; the trained runs are
shared smoke runs, and most cases fail before anything trains or loads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genda.train import checkpoint as ckpt_io

from .conftest import genda

BASE = ["experiment=classifier_mnist", "scale=smoke", "logger.mode=disabled", "trainer.progress=false"]
ENV = {"WANDB_MODE": "disabled"}


def _one_line_error(proc, needle: str) -> str:
    """Exit 2, no traceback, and a non-empty last stderr line that contains `needle`."""
    assert proc.returncode == 2, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert lines, "no error line"
    assert needle in lines[-1], lines[-1]
    return lines[-1]


def _pngs(folder: Path, shape: tuple[int, ...], names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names or [f"{i}_{i:03d}.png" for i in range(3)]:
        path = folder / os.fsdecode(name) if isinstance(name, bytes) else folder / name
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return folder


def _python_c(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -c script args...`: a command run with a fault injected (a full disk)."""
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1", **ENV}
    return subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def clf(smoke_run) -> Path:
    return smoke_run("classifier_mnist")


@pytest.fixture(scope="module")
def ddim(smoke_run) -> Path:
    return smoke_run("ddim_faces")


# -- python -m genda: config values, devices, run dirs (all refused before Hydra makes the run dir) ---
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

TRAIN_CASES = [
    (["trainer.max_steps=abc"], "trainer.max_steps"),
    (["trainer.max_steps=2.5"], "trainer.max_steps"),
    (["trainer.max_steps=-5"], "trainer.max_steps"),
    (["trainer.max_steps=0"], "trainer.max_steps=0"),
    (["data.batch_size=0"], "data.batch_size"),
    (["data.batch_size=-8"], "data.batch_size"),
    (["trainer.log_every=0"], "trainer.log_every"),
    (["trainer.val_every=-1"], "trainer.val_every"),
    (["model.optimizer.lr=abc"], "model.optimizer.lr"),
    (["model.optimizer.lr=-1"], "model.optimizer.lr"),
    (["trainer.max_minutes=-2"], "trainer.max_minutes"),
    (["trainer.precision=7-bogus"], "trainer.precision"),
    (["trainer.accelerator=tpu-bogus"], "trainer.accelerator"),
    pytest.param(["trainer.accelerator=cuda"], "trainer.accelerator=cuda", marks=NO_CUDA),
    (["trainer.resume=/no/such/run"], "trainer.resume=/no/such/run"),
]


@pytest.mark.parametrize("overrides,needle", TRAIN_CASES, ids=lambda v: v[0] if isinstance(v, list) else None)
def test_bad_trainer_values(tmp_path: Path, overrides: list[str], needle: str) -> None:
    run = tmp_path / "run"
    proc = genda(*BASE, *overrides, f"hydra.run.dir={run}", cwd=tmp_path, env=ENV)
    _one_line_error(proc, needle)
    assert not run.exists(), "nothing written"
    assert not (tmp_path / "outputs").exists()


def _read_only_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro / "run"
    if Path("/sys/kernel").is_dir():
        return Path("/sys/genda_bad_inputs_run")  # root: chmod does not stop it; sysfs does
    pytest.skip("no read-only folder for root here")


@pytest.mark.parametrize("kind", ["file", "under_file", "read_only"])
def test_bad_run_dir(tmp_path: Path, kind: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    run = {"file": afile, "under_file": afile / "run", "read_only": None}[kind] or _read_only_dir(tmp_path)
    proc = genda(*BASE, f"hydra.run.dir={run}", cwd=tmp_path, env=ENV)
    _one_line_error(proc, "hydra.run.dir")
    assert afile.read_text() == "keep me\n" and not (kind != "file" and run.exists())


_TRAIN_ON_FULL_DISK = textwrap.dedent("""
    import errno, os, runpy, sys
    import genda.train.checkpoint as c
    calls = [0]
    real = c.save_atomic
    def save_atomic(obj, path):  # the second checkpoint meets a full disk halfway through
        calls[0] += 1
        if calls[0] < 2:
            return real(obj, path)
        def write(f):
            f.write(b"x" * 4096)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        c.atomic_write(path, write)
    c.save_atomic = save_atomic
    sys.argv = ["genda", *sys.argv[1:]]
    runpy.run_module("genda", run_name="__main__", alter_sys=True)
""")


def test_full_disk_during_training_keeps_the_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _python_c(_TRAIN_ON_FULL_DISK, *BASE, "trainer.max_steps=4", "trainer.checkpoint_every=2",
                     "trainer.val_every=0", f"hydra.run.dir={run}", cwd=tmp_path)
    line = _one_line_error(proc, "last.ckpt")
    assert "No space left on device" in line
    assert ckpt_io.load(run / "checkpoints" / "last.ckpt")["step"] == 2, "the earlier checkpoint is intact"
    assert not [p for p in run.rglob("*.tmp")], "no temp file left"


# -- devices of the commands -----------------------------------------------------------------------
def _device_args(module: str, tmp: Path) -> list[str]:
    return {"genda.predict": ["/no/run", str(tmp), str(tmp / "p.csv")],
            "genda.sample": ["/no/run", str(tmp / "out")],
            "genda.evaluate": ["mse", str(tmp), str(tmp)]}[module]


@pytest.mark.parametrize("module", ["genda.predict", "genda.sample", "genda.evaluate"])
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=NO_CUDA), "bogus"])
def test_bad_device(tmp_path: Path, module: str, device: str) -> None:
    proc = genda(*_device_args(module, tmp_path), "--device", device, module=module, cwd=tmp_path)
    _one_line_error(proc, f"--device {device!r}" if device == "bogus" else f"--device {device}")
    assert sorted(tmp_path.iterdir()) == []


# -- predict / evaluate accuracy on odd images -----------------------------------------------------
@pytest.mark.parametrize("shape,note", [((80, 100), "grey to RGB (channel repeat); resized from 80x100"),
                                        ((28, 100, 3), "resized from 28x100 to 28x28")])
def test_predict_and_accuracy_resize_with_a_note(clf: Path, tmp_path: Path, shape, note) -> None:
    images = _pngs(tmp_path / "img", shape)
    out = tmp_path / "p.csv"
    proc = genda(str(clf), str(images), str(out), module="genda.predict", cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert note in proc.stderr and str(images.name) in proc.stderr
    assert len(out.read_text().splitlines()) == 4
    proc = genda("accuracy", "--folder", str(images), "--classifier", str(clf / "checkpoints" / "best.ckpt"),
                 module="genda.evaluate", cwd=tmp_path)
    assert proc.returncode == 0 and note in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.startswith("accuracy ")


def test_predict_too_small_images(clf: Path, tmp_path: Path) -> None:
    images = _pngs(tmp_path / "tiny", (1, 1, 3))
    out = tmp_path / "p.csv"
    _one_line_error(genda(str(clf), str(images), str(out), module="genda.predict", cwd=tmp_path), "tiny")
    assert not out.exists()


def test_accuracy_too_small_images(clf: Path, tmp_path: Path) -> None:
    images = _pngs(tmp_path / "tiny", (1, 1, 3))
    js = tmp_path / "a.json"
    proc = genda("accuracy", "--folder", str(images), "--classifier", str(clf / "checkpoints" / "best.ckpt"),
                 "--json", str(js), module="genda.evaluate", cwd=tmp_path)
    _one_line_error(proc, "tiny: images are 1x1")
    assert not js.exists()


def test_predict_non_utf8_file_name(clf: Path, tmp_path: Path) -> None:
    images = _pngs(tmp_path / "img", (28, 28, 3), ["0_000.png", b"1_\xff.png"])
    out = tmp_path / "p.csv"
    _one_line_error(genda(str(clf), str(images), str(out), module="genda.predict", cwd=tmp_path),
                    "not valid UTF-8")
    assert not out.exists() and not list(tmp_path.glob(".p.csv*"))


def test_accuracy_non_utf8_file_name(clf: Path, tmp_path: Path) -> None:
    images = _pngs(tmp_path / "img", (28, 28, 3), ["0_000.png", b"1_\xff.png"])
    proc = genda("accuracy", "--folder", str(images), "--classifier", str(clf / "checkpoints" / "best.ckpt"),
                 module="genda.evaluate", cwd=tmp_path)
    _one_line_error(proc, "not valid UTF-8")


def test_predict_into_a_folder(clf: Path, tmp_path: Path) -> None:
    images = _pngs(tmp_path / "img", (28, 28, 3))
    (tmp_path / "out").mkdir()
    _one_line_error(genda(str(clf), str(images), str(tmp_path / "out"), module="genda.predict", cwd=tmp_path),
                    "out")
    assert list((tmp_path / "out").iterdir()) == []


# -- evaluate fid / csv --------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [(1, 3), (3, 1)])
def test_fid_needs_two_images_a_side(tmp_path: Path, sizes) -> None:
    a = _pngs(tmp_path / "a", (16, 16, 3), [f"{i}.png" for i in range(sizes[0])])
    b = _pngs(tmp_path / "b", (16, 16, 3), [f"{i}.png" for i in range(sizes[1])])
    js = tmp_path / "fid.json"
    proc = genda("fid", str(a), str(b), "--json", str(js), module="genda.evaluate", cwd=tmp_path, timeout=60)
    _one_line_error(proc, f"{a if sizes[0] == 1 else b}: 1 image(s)")
    assert not js.exists()


LABELS = "image_name,label\na.png,1\nb.png,2\nc.png,3\n"
CSV_CASES = {
    "binary_pred": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", LABELS.encode(), "pred.csv: not a UTF-8"),
    "binary_labels": (LABELS.encode(), bytes(range(256)), "labels.csv: not a UTF-8"),
    "nul_pred": (b"image_name,label\na.png,1\x00\n", LABELS.encode(), "pred.csv line 2: expected"),
    "dup_pred": (b"image_name,label\na.png,1\nb.png,2\nc.png,3\na.png,4\n", LABELS.encode(),
                 "pred.csv line 5: image 'a.png' is listed again (first on line 2)"),
    "dup_labels": (LABELS.encode(), (LABELS + "b.png,2\n").encode(),
                   "labels.csv line 5: image 'b.png' is listed again (first on line 3)"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_bad_csv(tmp_path: Path, case: str) -> None:
    pred, labels, needle = CSV_CASES[case]
    (tmp_path / "pred.csv").write_bytes(pred)
    (tmp_path / "labels.csv").write_bytes(labels)
    js = tmp_path / "r.json"
    proc = genda("csv", str(tmp_path / "pred.csv"), str(tmp_path / "labels.csv"), "--json", str(js),
                 module="genda.evaluate", cwd=tmp_path)
    _one_line_error(proc, needle)
    assert not js.exists()


# -- sample: DDIM noise folders, full disk, export -------------------------------------------------
def _nan() -> torch.Tensor:
    z = torch.randn(1, 3, 64, 64)
    z[0, 0, 0, 0] = float("nan")
    return z


def _inf() -> torch.Tensor:
    z = torch.randn(1, 3, 64, 64)
    z[0, 2, 5, 5] = float("-inf")
    return z


NOISE_CASES = {
    "mixed_sizes": ({"00.pt": torch.randn(1, 3, 64, 64), "01.pt": torch.randn(1, 3, 32, 32)},
                    "01.pt: noise of shape (1, 3, 32, 32) differs"),
    "one_channel": ({"00.pt": torch.randn(1, 1, 64, 64)}, "00.pt: a torch.float32 tensor of shape (1, 1, 64, 64)"),
    "flat": ({"00.pt": torch.randn(3, 64)}, "00.pt: a torch.float32 tensor of shape (3, 64)"),
    "batch_of_two": ({"00.pt": torch.randn(2, 3, 64, 64)}, "00.pt: a torch.float32 tensor of shape (2, 3"),
    "integers": ({"00.pt": torch.zeros(1, 3, 64, 64, dtype=torch.long)}, "00.pt: a torch.int64 tensor"),
    "corrupt": ({"00.pt": b"PK\x03\x04 torn"}, "00.pt: not a readable torch tensor file"),
    "not_a_tensor": ({"00.pt": {"noise": [1, 2, 3]}}, "00.pt: holds a dict, not a tensor"),
    "nan": ({"00.pt": _nan()}, "00.pt: noise holds NaN or inf"),
    "inf": ({"00.pt": _inf()}, "00.pt: noise holds NaN or inf"),
    "no_files": ({"00.txt": b"hello"}, "no .pt noise files"),
}


@pytest.mark.parametrize("case", sorted(NOISE_CASES))
def test_bad_noise_dir(ddim: Path, tmp_path: Path, case: str) -> None:
    files, needle = NOISE_CASES[case]
    noise = tmp_path / "noise"
    noise.mkdir()
    for name, obj in files.items():
        if isinstance(obj, bytes):
            (noise / name).write_bytes(obj)
        else:
            torch.save(obj, noise / name)
    out = tmp_path / "out"
    proc = genda(str(ddim), str(out), "--noise-dir", str(noise), module="genda.sample", cwd=tmp_path)
    _one_line_error(proc, needle)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_noise_size_the_unet_cannot_take(ddim: Path, tmp_path: Path) -> None:
    noise = tmp_path / "noise"
    noise.mkdir()
    torch.save(torch.randn(1, 3, 30, 30), noise / "00.pt")
    out = tmp_path / "out"
    proc = genda(str(ddim), str(out), "--noise-dir", str(noise), module="genda.sample", cwd=tmp_path)
    _one_line_error(proc, "noises of size (30, 30) do not fit this UNet")
    assert not out.exists() and not list(tmp_path.glob(".out*"))


_SAMPLE_ON_FULL_DISK = textwrap.dedent("""
    import errno, os, runpy, sys
    import genda.train.artifacts as a
    calls = [0]
    real = a.save_image
    def save_image(img, path):  # the disk fills up after 5 PNGs
        calls[0] += 1
        if calls[0] > 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(img, path)
    a.save_image = save_image
    sys.argv = ["genda.sample", *sys.argv[1:]]
    runpy.run_module("genda.sample", run_name="__main__", alter_sys=True)
""")


def test_sample_onto_a_full_disk_leaves_nothing(ddim: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _python_c(_SAMPLE_ON_FULL_DISK, str(ddim), str(out), "--n", "8", cwd=tmp_path)
    line = _one_line_error(proc, "No space left on device")
    assert str(out) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no partial PNGs, no temp folder"


def test_sample_into_a_file(ddim: Path, tmp_path: Path) -> None:
    afile = tmp_path / "out"
    afile.write_text("keep\n")
    _one_line_error(genda(str(ddim), str(afile), "--n", "2", module="genda.sample", cwd=tmp_path),
                    "an existing file")
    assert afile.read_text() == "keep\n"


@pytest.mark.parametrize("limit", ["-3", "0"])
def test_export_bad_limit(tmp_path: Path, limit: str) -> None:
    out = tmp_path / "export"
    _one_line_error(genda("export", "mnist", str(out), "--limit", limit, module="genda.data", cwd=tmp_path),
                    f"--limit {limit}")
    assert not out.exists()


# -- what a kill leaves behind; evaluate-only runs -----------------------------------------------
def test_stale_checkpoint_temp_file_is_removed_on_the_next_start(clf: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(clf, run)
    stale = [run / "checkpoints" / ".last.ckpt.ab12cd34.tmp", run / ".status.json.zz99yy88.tmp"]
    for p in stale:
        p.write_bytes(b"torn")
    keep = run / "checkpoints" / "notes.tmp"  # not a checkpoint temp file: left alone
    keep.write_text("mine\n")
    proc = genda(*BASE, "trainer.max_steps=5", f"hydra.run.dir={run}", cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not any(p.exists() for p in stale) and keep.exists()
    assert "removed" in proc.stderr and "resumed from" in proc.stderr


def test_max_steps_zero_evaluates_a_given_checkpoint(clf: Path, tmp_path: Path) -> None:
    run = tmp_path / "eval"
    proc = genda(*BASE, "trainer.max_steps=0", f"trainer.resume={clf}", f"hydra.run.dir={run}",
                 cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ckpt_io.load(run / "checkpoints" / "last.ckpt")["step"] == ckpt_io.load(
        clf / "checkpoints" / "last.ckpt")["step"]
