"""The course folder layout: reading a fixture tree, export round trip, bad data, the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from genda.data import load_domain
from genda.data.__main__ import main
from genda.data.embedded import build_embedded
from genda.data.folders import write_png
from genda.errors import DataError


def _images(n: int, c: int = 3, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def write_digits(root: Path, n_train: int = 6, n_val: int = 4, c: int = 3) -> dict:
    """hw2_data/digits/<d>: data/*.png + train.csv/val.csv; returns the written tensors."""
    (root / "data").mkdir(parents=True)
    out = {}
    for s, n, seed in (("train", n_train, 0), ("val", n_val, 1)):
        x, y = _images(n, c, seed=seed), torch.arange(n) % 10
        lines = ["image_name,label"]
        for i in range(n):
            name = f"{s}_{i:03d}.png"
            write_png(x[i], root / "data" / name)
            lines.append(f"{name},{int(y[i])}")
        (root / f"{s}.csv").write_text("\n".join(lines) + "\n")
        out[s] = (x, y)
    return out


def write_faces(root: Path, n: int = 5) -> dict:
    out = {}
    for s, seed in (("train", 2), ("val", 3)):
        (root / s).mkdir(parents=True)
        x = _images(n, 3, 64, seed)
        for i in range(n):
            write_png(x[i], root / s / f"{i:05d}.png")
        out[s] = x
    return out


def test_course_layout_reads_digits_and_faces(tmp_path) -> None:
    hw2 = tmp_path / "hw2_data"
    want = write_digits(hw2 / "digits" / "svhn")
    wusps = write_digits(hw2 / "digits" / "usps", c=1)
    faces = write_faces(hw2 / "face")
    svhn = load_domain("svhn", data_dir=str(hw2), cache_dir=str(tmp_path / "cache"))
    for s in ("train", "val"):
        assert torch.equal(svhn.split(s).images, want[s][0])
        assert torch.equal(svhn.split(s).labels, want[s][1])
    assert not svhn.embedded and svhn.num_classes == 10 and "digits/svhn" in svhn.provenance
    usps = load_domain("usps", data_dir=str(hw2), cache_dir=str(tmp_path / "cache"))
    assert torch.equal(usps.train.images, wusps["train"][0]) and usps.train.images.shape[1] == 1
    f = load_domain("faces", data_dir=str(hw2), cache_dir=str(tmp_path / "cache"))
    assert torch.equal(f.val.images, faces["val"]) and f.val.labels is None
    assert f.train.names == [f"{i:05d}.png" for i in range(5)]


def test_decoded_folder_is_cached_and_invalidated(tmp_path) -> None:
    root = tmp_path / "digits"
    write_digits(root)
    cache = tmp_path / "cache"
    load_domain("folder", cache_dir=str(cache), path=str(root))
    entries = list((cache / "real").iterdir())
    assert len(entries) == 1 and (entries[0] / "train.pt").is_file()
    again = load_domain("folder", cache_dir=str(cache), path=str(root))  # from the tensor cache
    assert again.train.names[0] == "train_000.png"
    new = _images(1, seed=9)[0]
    write_png(new, root / "data" / "train_000.png")
    st = (root / "data" / "train_000.png").stat()
    os.utime(root / "data" / "train_000.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = load_domain("folder", cache_dir=str(cache), path=str(root))
    assert torch.equal(changed.train.images[0], new)


@pytest.mark.parametrize("name", ["uci_digits", "faces_embedded"])
def test_export_round_trips(name: str, tmp_path) -> None:
    cache = tmp_path / "cache"
    build_embedded(name, cache)
    assert main(["--cache-dir", str(cache), "export", name, str(tmp_path / "out")]) == 0
    back = load_domain("folder", cache_dir=str(cache), path=str(tmp_path / "out"))
    orig = load_domain(name, cache_dir=str(cache))
    for s in ("train", "val"):
        assert torch.equal(back.split(s).images, orig.split(s).images)
        if orig.num_classes:
            assert torch.equal(back.split(s).labels, orig.split(s).labels)
    if orig.num_classes:
        assert (tmp_path / "out" / "train.csv").read_text().startswith("image_name,label\n")


def _csv(root: Path, split: str, text: str) -> None:
    (root / f"{split}.csv").write_text(text)


BAD = {  # case -> (break the fixture tree, expected message pattern)
    "missing folder": (lambda r: None, r"nowhere: folder not found"),
    "csv missing": (lambda r: (r / "val.csv").unlink(), r"val\.csv: CSV file not found"),
    "csv columns": (lambda r: _csv(r, "train", "file,class\na.png,1\n"),
                    r"train\.csv: header is 'file,class', expected image_name,label"),
    "image absent": (lambda r: (r / "data" / "val_002.png").unlink(), r"val_002\.png: image listed but not found"),
    "corrupt png": (lambda r: (r / "data" / "train_001.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"),
                    r"train_001\.png: corrupt or unreadable image"),
    "label range": (lambda r: _csv(r, "val", "image_name,label\nval_000.png,11\n"),
                    r"val\.csv line 2: label 11 out of range 0-9"),
    "mixed sizes": (lambda r: write_png(_images(1, 3, 32)[0], r / "data" / "train_003.png"),
                    r"train_003\.png: image size \(32, 32, 3\) differs .*mixed image sizes"),
    "empty split": (lambda r: _csv(r, "val", "image_name,label\n"), r"val\.csv: empty split"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_data_gives_one_line_naming_the_file(case: str, tmp_path) -> None:
    root = tmp_path / "digits"
    write_digits(root)
    breaker, pattern = BAD[case]
    breaker(root)
    path = tmp_path / "nowhere" if case == "missing folder" else root
    with pytest.raises(DataError, match=pattern) as err:
        load_domain("folder", cache_dir=str(tmp_path / "cache"), path=str(path))
    assert "\n" not in str(err.value)


def test_empty_face_folder(tmp_path) -> None:
    write_faces(tmp_path / "face")
    for p in (tmp_path / "face" / "val").iterdir():
        p.unlink()
    with pytest.raises(DataError, match=r"face/val: empty split \(no \.png files\)"):
        load_domain("faces", data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"))


@pytest.mark.parametrize("name,stand_in", [("faces", "faces_synthetic"), ("svhn", "syndigits"),
                                           ("usps", "usps_mfeat"), ("mnistm_real", "mnistm")])
def test_missing_real_domain_names_where_and_stand_in(name: str, stand_in: str, tmp_path) -> None:
    with pytest.raises(DataError, match=rf"looked in .*{tmp_path}.*data={stand_in}$"):
        load_domain(name, data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"))


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["--cache-dir", str(tmp_path), "--data-dir", str(tmp_path), "show", "svhn"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genda.data: error: real domain 'svhn' not found")
    assert main(["--cache-dir", str(tmp_path), "build", "nope"]) == 2
    assert "not an embedded domain" in capsys.readouterr().err


def test_cli_list_and_show(tmp_path, capsys) -> None:
    build_embedded("uci_digits", tmp_path)
    assert main(["--cache-dir", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert "uci_digits         built      1438/359 1x28x28" in out
    assert "syndigits          not built" in out and "svhn" in out
    png = tmp_path / "grid.png"
    assert main(["--cache-dir", str(tmp_path), "show", "uci_digits", "--out", str(png)]) == 0
    from PIL import Image

    assert Image.open(png).size == (10 * 30 + 2, 10 * 30 + 2)  # 10 rows (classes) x 10 columns


def _idx(path: Path, arr: torch.Tensor) -> None:
    dims = b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(b"\0\0\x08" + bytes([arr.ndim]) + dims + arr.numpy().tobytes())


def test_torchvision_source_reads_existing_files(tmp_path) -> None:
    """The torchvision path (used with download=true) on files laid out as torchvision keeps them."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    want = {}
    for prefix, n in (("train", 12), ("t10k", 5)):
        x, y = _images(n, 1)[:, 0], torch.arange(n, dtype=torch.uint8) % 10
        _idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", y)
        want[prefix] = (x, y)
    d = load_domain("mnist_torchvision", data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"))
    assert torch.equal(d.train.images[:, 0], want["train"][0]) and torch.equal(d.val.labels, want["t10k"][1].long())
    assert "torchvision MNIST" in d.provenance and not d.embedded
