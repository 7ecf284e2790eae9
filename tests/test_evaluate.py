"""`python -m genda.evaluate`: values against independent references, and one error line per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.data import lfw_subset

from genda.evaluate import main
from tests.conftest import genda


def _write(folder: Path, arrays: list[np.ndarray], names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(folder / (names[i] if names else f"{i:03d}.png"))
    return folder


@pytest.fixture(scope="module")
def lfw_folders(tmp_path_factory) -> tuple[Path, Path]:
    """80 real faces and 80 non-faces of lfw_subset, upscaled to 64x64 RGB PNGs."""
    x = np.round(lfw_subset() * 255).astype(np.uint8)
    root = tmp_path_factory.mktemp("lfw")
    up = [np.asarray(Image.fromarray(a).resize((64, 64), Image.BILINEAR).convert("RGB")) for a in x]
    return _write(root / "faces", up[:80]), _write(root / "nonfaces", up[100:180])


@pytest.mark.slow
def test_evaluate_fid_dims64_equals_pytorch_fid_pipeline_with_same_weights(lfw_folders, tmp_path, monkeypatch, capsys):
    """pytorch-fid's whole folder pipeline (listing, PIL reading, batches, stats, distance) with its weight
    download swapped for the same offline weights; 64-d features keep it cheap."""
    from pytorch_fid import fid_score, inception

    from genda.data.domain import default_cache_dir
    from genda.metrics.fid import resolve_weights

    a, b = lfw_folders
    assert main(["fid", str(a), str(b), "--dims", "64", "--weights", "fid-helper", "--json", str(tmp_path / "r.json")]) == 0
    ours = json.loads((tmp_path / "r.json").read_text())
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *_, **__: resolve_weights("fid-helper", default_cache_dir())[0])
    theirs = fid_score.calculate_fid_given_paths([str(a), str(b)], batch_size=50, device="cpu", dims=64, num_workers=0)
    assert theirs > 1.0
    assert ours["value"] == pytest.approx(theirs, rel=1e-5, abs=1e-4)
    assert ours["n"] == [80, 80] and ours["metric"] == "fid" and "fid-helper" in ours["weights"]
    assert capsys.readouterr().out.startswith("fid ")


def test_mse_is_mean_of_per_image_mse_matched_by_name(tmp_path, capsys):
    rng = np.random.default_rng(0)
    gt = [rng.integers(10, 240, (8, 8, 3), dtype=np.uint8) for _ in range(2)]
    _write(tmp_path / "gt", gt, ["00.png", "01.png"])
    _write(tmp_path / "out", [gt[1] - 1, gt[0] + 3], ["01.png", "00.png"])  # written in the other order
    assert main(["mse", str(tmp_path / "out"), str(tmp_path / "gt"), "--json", str(tmp_path / "m.json")]) == 0
    r = json.loads((tmp_path / "m.json").read_text())
    assert r["value"] == pytest.approx((9 + 1) / 2) and r["per_image"] == {"00.png": 9.0, "01.png": 1.0}
    assert capsys.readouterr().out.startswith("mse 5.0000 n=2 ")


def test_csv_accuracy_matches_rows_by_name(tmp_path):
    (tmp_path / "labels.csv").write_text("image_name,label\na.png,1\nb.png,2\nc.png,3\nd.png,4\n")
    (tmp_path / "pred.csv").write_text("image_name,label\nd.png,4\nc.png,0\nb.png,2\na.png,1\n")
    assert main(["csv", str(tmp_path / "pred.csv"), str(tmp_path / "labels.csv"), "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["value"] == 0.75


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "empty").mkdir()
    _write(tmp / "ok", [np.zeros((8, 8, 3), np.uint8)])
    (tmp / "broken").mkdir()
    (tmp / "broken" / "x.png").write_bytes(b"not a png")
    (tmp / "cols.csv").write_text("file,label\na.png,1\n")
    (tmp / "labels.csv").write_text("image_name,label\na.png,1\n")
    (tmp / "part.csv").write_text("image_name,label\nz.png,1\n")
    return {
        "missing folder": (["faces", str(tmp / "nope")], "nope"),
        "empty folder": (["mse", str(tmp / "ok"), str(tmp / "empty")], "empty"),
        "unreadable image": (["fid", str(tmp / "broken"), str(tmp / "ok"), "--dims", "64"], "x.png"),
        "unreadable image (faces)": (["faces", str(tmp / "broken")], "x.png"),
        "csv columns": (["csv", str(tmp / "cols.csv"), str(tmp / "labels.csv")], "cols.csv"),
        "csv missing rows": (["csv", str(tmp / "part.csv"), str(tmp / "labels.csv")], "a.png"),
        "missing checkpoint": (["accuracy", "--folder", str(tmp / "ok"), "--classifier", str(tmp / "no.ckpt")], "no.ckpt"),
        "unknown command": (["fdi", "a", "b"], "fdi"),
    }


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse usage errors
        return e.code


@pytest.mark.parametrize("case", ["missing folder", "empty folder", "unreadable image", "unreadable image (faces)",
                                  "csv columns", "csv missing rows", "missing checkpoint", "unknown command"])
def test_bad_input_gives_one_error_line(case, tmp_path, capsys):
    argv, names = _bad_inputs(tmp_path)[case]
    rc = _exit_code(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("genda.evaluate: error: ") and names in err


@pytest.mark.slow
def test_module_entry_point_exits_2_with_one_line(tmp_path):
    proc = genda("mse", str(tmp_path / "nope"), str(tmp_path), module="genda.evaluate", timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("genda.evaluate: error: ")


@pytest.mark.slow
def test_accuracy_of_a_label_named_folder_equals_the_evaluator_on_tensors(smoke_run, tmp_path):
    from genda.data.domain import load_domain
    from genda.metrics.accuracy import DigitEvaluator

    ckpt = smoke_run("classifier_mnist") / "checkpoints" / "last.ckpt"
    val = load_domain("mnist").val
    images, labels = val.images[:60], val.labels[:60]
    names = [f"{int(y)}_{i:03d}.png" for i, y in enumerate(labels)]
    _write(tmp_path / "digits", [im[0].numpy() for im in images], names)
    assert main(["accuracy", "--folder", str(tmp_path / "digits"), "--classifier", str(ckpt),
                 "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    want = DigitEvaluator.from_checkpoint(ckpt).accuracy(images.float() / 127.5 - 1, labels)
    assert r["n"] == 60 and r["value"] == pytest.approx(want, abs=1e-9) and 0 < want <= 1
