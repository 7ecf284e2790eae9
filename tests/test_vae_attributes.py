"""Face attributes (course CSVs, CelebA's list_attr_celeba.txt) into Split.attrs, batches, and the
VAE's latent t-SNE coloured by `model.tsne_attribute`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genda.data.domain import load_domain
from genda.data.folders import export, read_celeba_attrs
from genda.data.module import DomainData
from genda.errors import DataError

from .conftest import genda

ATTRS = ("Blond_Hair", "Male")


def _course_faces(data_dir: Path, n_train: int = 24, n_val: int = 12, label: bool = True, seed: int = 0) -> dict:
    """`<data_dir>/face/{train,val}/*.png` (64x64) + `{train,val}.csv` with image_name[,label],Blond_Hair,Male;
    rows written in a shuffled order (matched by name). Returns {split: {name: (blond, male)}}."""
    rng = np.random.default_rng(seed)
    root = data_dir / "face"
    truth = {}
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True)
        rows = {}
        for i in range(n):
            name = f"{i:05d}.png"
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / split / name)
            rows[name] = (int(i % 2 == 0), int(i % 3 == 0))
        truth[split] = rows
        header = ["image_name", *(["label"] if label else []), *ATTRS]
        lines = [",".join(header)]
        for name in rng.permutation(sorted(rows)):
            blond, male = rows[name]
            lines.append(",".join([name, *(["0"] if label else []), f"{blond}.0", str(male)]))
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return truth


def test_course_csv_attributes_load_in_file_order(tmp_path):
    truth = _course_faces(tmp_path / "hw2")
    for _ in range(2):  # decoded, then from the tensor cache
        d = load_domain("faces", data_dir=str(tmp_path / "hw2"), cache_dir=str(tmp_path / "cache"))
        for split in ("train", "val"):
            sp = d.split(split)
            assert sp.labels is None and set(sp.attrs) == set(ATTRS)
            for k, attr in enumerate(ATTRS):
                want = [truth[split][n][k] for n in sorted(truth[split])]
                assert sp.attrs[attr].dtype == torch.int64 and sp.attrs[attr].tolist() == want


def test_attributes_reach_the_batches(tmp_path):
    truth = _course_faces(tmp_path / "hw2", label=False)
    dm = DomainData("faces", batch_size=4, limit_val=7, data_dir=str(tmp_path / "hw2"),
                    cache_dir=str(tmp_path / "cache"))
    names = dm.split("val").names
    got = {k: [] for k in ATTRS}
    for b in dm.val_loader():
        for k in ATTRS:
            got[k] += b[f"attr_{k}"].tolist()
    assert len(names) == 7
    for k, attr in enumerate(ATTRS):
        assert got[attr] == [truth["val"][n][k] for n in names]
    batch = next(iter(dm.train_loader()))
    assert batch["attr_Blond_Hair"].shape == (4,) and batch["image"].shape == (4, 3, 64, 64)


def test_faces_without_csv_have_no_attributes(tmp_path):
    _course_faces(tmp_path / "hw2")
    for s in ("train", "val"):
        (tmp_path / "hw2" / "face" / f"{s}.csv").unlink()
    d = load_domain("faces", data_dir=str(tmp_path / "hw2"), cache_dir=str(tmp_path / "cache"))
    assert d.train.attrs == {} and d.val.attrs == {}


def test_celeba_attribute_list(tmp_path):
    """list_attr_celeba.txt beside train/ and val/ (-1/1 values) gives the same 0/1 attributes."""
    truth = _course_faces(tmp_path / "hw2")
    root = tmp_path / "hw2" / "face"
    names = ["5_o_Clock_Shadow", *ATTRS]
    rows = [f"{n} {'-1' if (i % 5) else '1'} {2 * b - 1} {2 * m - 1}"
            for s in ("train", "val") for i, (n, (b, m)) in enumerate(sorted(truth[s].items()))]
    rows = sorted(set(rows))  # train and val share file names here: both give the same values
    for s in ("train", "val"):
        (root / f"{s}.csv").unlink()
    (root / "list_attr_celeba.txt").write_text(f"{len(rows)}\n{' '.join(names)}\n" + "\n".join(rows) + "\n")
    table = read_celeba_attrs(root / "list_attr_celeba.txt")
    assert set(next(iter(table.values()))) == set(names)
    d = load_domain("faces", data_dir=str(tmp_path / "hw2"), cache_dir=str(tmp_path / "cache"))
    for k, attr in enumerate(ATTRS):
        assert d.val.attrs[attr].tolist() == [truth["val"][n][k] for n in sorted(truth["val"])]


@pytest.mark.parametrize("case", ["bad value", "missing row", "bad header"])
def test_bad_attribute_csv_names_the_file(case, tmp_path):
    _course_faces(tmp_path / "hw2", label=False)
    csv = tmp_path / "hw2" / "face" / "val.csv"
    lines = csv.read_text().splitlines()
    if case == "bad value":
        lines[1] = lines[1].rsplit(",", 1)[0] + ",yes"
    elif case == "missing row":
        lines = lines[:-1]
    else:
        lines[0] = "file," + lines[0].split(",", 1)[1]
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"val\.csv"):
        load_domain("faces", data_dir=str(tmp_path / "hw2"), cache_dir=str(tmp_path / "cache"))


def test_export_keeps_the_attributes(tmp_path):
    _course_faces(tmp_path / "hw2")
    d = load_domain("faces", data_dir=str(tmp_path / "hw2"), cache_dir=str(tmp_path / "cache"))
    export({"train": d.train, "val": d.val}, tmp_path / "out")
    back = load_domain("folder", path=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))
    for s in ("train", "val"):
        assert {k: v.tolist() for k, v in back.split(s).attrs.items()} == \
               {k: v.tolist() for k, v in d.split(s).attrs.items()}


@pytest.mark.slow
def test_vae_smoke_run_colours_the_tsne_by_the_attribute(tmp_path):
    """The default model.tsne_attribute (Blond_Hair) on a course folder with attribute CSVs."""
    truth = _course_faces(tmp_path / "hw2")
    run = tmp_path / "run"
    genda("experiment=vae_faces", "scale=smoke", "data=faces", f"paths.data_dir={tmp_path / 'hw2'}",
          "logger=disabled", "trainer.progress=false", f"hydra.run.dir={run}", "model.face_score=false",
          check=True, timeout=900)
    meta = json.loads(next(run.rglob("latents.json")).read_text())
    z = np.load(next(run.rglob("latents.npz")))
    assert next(run.rglob("tsne.png")).stat().st_size > 0
    assert meta["attribute"] == "Blond_Hair" and meta["note"] is None
    assert z["attr_Blond_Hair"].tolist() == [truth["val"][n][0] for n in sorted(truth["val"])]
    assert meta["n"] == len(truth["val"]) and z["mu"].shape[0] == len(truth["val"])


class _Out:
    enabled = True

    def __init__(self, folder: Path) -> None:
        self.folder, self.saved = folder, {}

    def arrays(self, name, **arrays):
        self.saved[f"{name}.npz"] = arrays

    def json(self, name, obj):
        self.saved[f"{name}.json"] = obj

    def path(self, name):
        return str(self.folder / name)

    def log_figure(self, name, path):
        self.saved[name] = path


class _Data:
    domain_name = "faces"


class _Ctx:
    def __init__(self, batches, folder):
        self._batches, self.out, self.data = batches, _Out(folder), _Data()

    def batches(self, split):
        return iter(self._batches)


@pytest.mark.parametrize(("wanted", "attrs", "coloured", "note"), [
    ("Male", ATTRS, "Male", None),
    ("Smiling", ATTRS, "Blond_Hair", "no attribute 'Smiling'"),
    ("Blond_Hair", (), None, "has no attributes"),
])
def test_tsne_attribute_choice(wanted, attrs, coloured, note, tmp_path):
    from genda.models.vae import ConvVAE
    from genda.tasks.vae import VAETask

    torch.manual_seed(0)
    task = VAETask(ConvVAE(latent_dim=4, image_size=32, hidden=(8, 16)), torch.optim.Adam, tsne_attribute=wanted)
    task.eval()
    batches = [{"image": torch.rand(6, 3, 32, 32) * 2 - 1,
                **{f"attr_{a}": torch.randint(0, 2, (6,)) for a in attrs}} for _ in range(2)]
    ctx = _Ctx(batches, tmp_path)
    with torch.no_grad():
        task._latents(ctx)
    meta, arrays = ctx.out.saved["latents.json"], ctx.out.saved["latents.npz"]
    assert meta["attribute"] == coloured and meta["requested_attribute"] == wanted
    assert (meta["note"] is None) if note is None else (note in meta["note"])
    if coloured:
        assert torch.equal(arrays[f"attr_{coloured}"], torch.cat([b[f"attr_{coloured}"] for b in batches]))
    else:  # no attributes: coloured by each image's mean pixel value, in thirds
        want = torch.cat([b["image"].mean(dim=(1, 2, 3)) for b in batches])
        assert torch.allclose(arrays["brightness"], want) and "brightness" in meta["note"]
    assert (tmp_path / "tsne.png").stat().st_size > 0


def test_brightness_thirds_splits_at_the_tertiles() -> None:
    from genda.viz.tsne import brightness_thirds

    b = np.array([0.9, -0.5, 0.1, 0.2, -0.9, 0.5])  # tertiles at -0.1 and 0.3 (numpy linear)
    assert brightness_thirds(b).tolist() == [2, 0, 1, 1, 0, 2]
    assert np.bincount(brightness_thirds(np.random.default_rng(0).normal(size=300))).tolist() == [100, 100, 100]


def test_celeba_in_the_faces_layout_reads_list_attr_celeba(tmp_path):
    """data=celeba: <data_dir>/celeba/{train,val}/ + list_attr_celeba.txt, before torchvision."""
    truth = _course_faces(tmp_path / "hw2")
    (tmp_path / "hw2" / "face").rename(tmp_path / "hw2" / "celeba")
    root = tmp_path / "hw2" / "celeba"
    for s in ("train", "val"):
        (root / f"{s}.csv").unlink()
    rows = {n: v for s in ("train", "val") for n, v in truth[s].items()}  # names shared: same values
    rows = {n: truth["val"].get(n, v) for n, v in rows.items()}
    text = [str(len(rows)), " ".join(ATTRS)] + [f"{n}  {2 * b - 1} {2 * m - 1}" for n, (b, m) in sorted(rows.items())]
    (root / "list_attr_celeba.txt").write_text("\n".join(text) + "\n")
    d = load_domain("celeba", data_dir=str(tmp_path / "hw2"), cache_dir=str(tmp_path / "cache"))
    assert "course folder" in d.provenance
    for k, attr in enumerate(ATTRS):
        assert d.val.attrs[attr].tolist() == [truth["val"][n][k] for n in sorted(truth["val"])]
