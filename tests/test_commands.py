"""Course-style commands round-trip on smoke runs: predict -> evaluate csv, sample -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import genda, read_jsonl


@pytest.fixture(scope="module")
def uci_classifier(smoke_run) -> Path:
    return smoke_run("classifier_mnist", "data=uci_digits", "data.limit_val=null")


@pytest.mark.slow
def test_predict_then_evaluate_csv_equals_logged_accuracy(uci_classifier: Path, tmp_path: Path) -> None:
    export = tmp_path / "uci"
    genda("export", "uci_digits", str(export), module="genda.data", check=True)
    pred = tmp_path / "pred.csv"
    proc = genda(str(uci_classifier), str(export / "data"), str(pred), module="genda.predict", check=True)
    assert "wrote" in proc.stdout
    lines = pred.read_text().splitlines()
    assert lines[0] == "image_name,label" and lines[1:] == sorted(lines[1:])
    out = tmp_path / "acc.json"
    genda("csv", str(pred), str(export / "val.csv"), "--json", str(out), module="genda.evaluate", check=True)
    # predict uses best.ckpt, whose validation accuracy the run logged as best_acc
    best = json.loads((uci_classifier / "summary.json").read_text())["best_acc"]
    assert best in [r["val/acc"] for r in read_jsonl(uci_classifier / "metrics.jsonl") if "val/acc" in r]
    assert json.loads(out.read_text())["value"] == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize("module,args,needle", [
    ("genda.predict", ["/no/such/run", "/tmp", "/tmp/x.csv"], "no run dir or checkpoint"),
    ("genda.sample", ["/no/such/run", "/tmp/out"], "no run dir or checkpoint"),
])
def test_missing_run_gives_one_line(module: str, args: list[str], needle: str) -> None:
    proc = genda(*args, module=module)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


@pytest.mark.slow
def test_wrong_kind_of_run_and_empty_folder(uci_classifier: Path, tmp_path: Path) -> None:
    proc = genda(str(uci_classifier), str(tmp_path / "out"), module="genda.sample")
    assert proc.returncode == 2 and "does not generate images" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = genda(str(uci_classifier), str(empty), str(tmp_path / "p.csv"), module="genda.predict")
    assert proc.returncode == 2 and "no .png files" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_sample_gan_then_evaluate_faces_and_fid(smoke_run, tmp_path: Path) -> None:
    run = smoke_run("dcgan_a")
    out = tmp_path / "gan"
    proc = genda(str(run), str(out), "--n", "12", "--seed", "3", module="genda.sample", check=True)
    assert "EMA weights" in proc.stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:04d}.png" for i in range(12)]
    again = tmp_path / "again"
    genda(str(run), str(again), "--n", "12", "--seed", "3", module="genda.sample", check=True)
    assert all((out / n).read_bytes() == (again / n).read_bytes() for n in names), "deterministic for a seed"
    faces = tmp_path / "faces.json"
    genda("faces", str(out), "--json", str(faces), module="genda.evaluate", check=True)
    assert 0.0 <= json.loads(faces.read_text())["value"] <= 100.0
    real = tmp_path / "real"
    genda("export", "faces_embedded", str(real), module="genda.data", check=True)
    fid = tmp_path / "fid.json"
    genda("fid", str(out), str(real / "val"), "--dims", "64", "--json", str(fid), module="genda.evaluate", check=True)
    assert json.loads(fid.read_text())["value"] > 0


@pytest.mark.slow
def test_sample_ddpm_and_ddim_then_evaluate(smoke_run, tmp_path: Path) -> None:
    ddpm = smoke_run("ddpm_digits")
    out = tmp_path / "ddpm"
    genda(str(ddpm), str(out), "--n", "20", module="genda.sample", check=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{d}_{j:03d}.png" for d in range(10) for j in (1, 2))
    clf = sorted((Path(smoke_run("classifier_mnist"))).glob("checkpoints/best.ckpt"))[0]
    acc = tmp_path / "acc.json"
    genda("accuracy", "--folder", str(out), "--classifier", str(clf), "--json", str(acc),
          module="genda.evaluate", check=True)
    assert json.loads(acc.read_text())["n"] == 20

    ddim = smoke_run("ddim_faces")
    noise = ddim / "artifacts" / "noise"
    out = tmp_path / "ddim"
    genda(str(ddim), str(out), "--noise-dir", str(noise), module="genda.sample", check=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{p.stem}.png" for p in noise.glob("*.pt"))
    # same weights, same noises, eta from the run's config: the run's own DDIM images
    mse = tmp_path / "mse.json"
    genda("mse", str(out), str(ddim / "artifacts" / "ddim"), "--json", str(mse), module="genda.evaluate", check=True)
    assert json.loads(mse.read_text())["value"] <= 1.0
