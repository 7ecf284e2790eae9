"""The course's `Classifier.pth` (a LeNet state dict under `state_dict`) as the digit evaluator.

The file is written here by a network built in this test, not by genda, in exactly the course's
layout; genda must predict what this network predicts with the course's (x/255 - 0.5)/0.5."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from genda.errors import CheckpointError
from genda.evaluate import main
from genda.metrics.accuracy import DigitEvaluator


class CourseNet(nn.Module):
    """As the course's digit_classifier.py defines it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 16 * 4 * 4)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def _course_input(u8: torch.Tensor) -> torch.Tensor:
    return (u8.float() / 255.0 - 0.5) / 0.5


@pytest.fixture(scope="module")
def course_file(tmp_path_factory):
    """(Classifier.pth, its net, the folder of `<label>_<nnn>.png`, uint8 images, labels)."""
    from genda.data.domain import load_domain

    val = load_domain("mnistm").val
    images, labels = val.images[:96].clone(), val.labels[:96].clone()
    torch.manual_seed(0)
    net = CourseNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(40):  # a few steps: predictions neither constant nor all correct
        opt.zero_grad()
        F.cross_entropy(net(_course_input(images[:64])), labels[:64]).backward()
        opt.step()
    net.eval()
    tmp = tmp_path_factory.mktemp("course_classifier")
    path = tmp / "Classifier.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    folder = tmp / "digits"
    folder.mkdir()
    for i, (im, y) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(folder / f"{int(y)}_{i:03d}.png")
    return path, net, folder, images, labels


def test_the_evaluator_predicts_what_the_course_network_predicts(course_file):
    path, net, _, images, _ = course_file
    with torch.no_grad():
        want = net(_course_input(images)).argmax(1)
    assert len(set(want.tolist())) > 2, "a trained network, not a constant one"
    ev = DigitEvaluator.from_checkpoint(path)
    assert ev.preprocess == "course" and ev.source == str(path)
    assert torch.equal(ev.predict(images), want)  # uint8 pixels
    assert torch.equal(ev.predict(images.float() / 127.5 - 1.0), want)  # [-1, 1], as the DDPM passes them


def test_a_bare_state_dict_is_the_course_layout_too(course_file, tmp_path):
    path, net, _, images, _ = course_file
    bare = tmp_path / "bare.pth"
    torch.save(net.state_dict(), bare)
    assert torch.equal(DigitEvaluator.from_checkpoint(bare).predict(images),
                       DigitEvaluator.from_checkpoint(path).predict(images))


def test_the_accuracy_command_scores_the_folder_with_the_course_file(course_file, tmp_path, capsys):
    path, net, folder, images, labels = course_file
    with torch.no_grad():
        want = float((net(_course_input(images)).argmax(1) == labels).float().mean())
    assert 0.0 < want < 1.0
    out = tmp_path / "r.json"
    assert main(["accuracy", "--folder", str(folder), "--classifier", str(path), "--json", str(out),
                 "--device", "cpu"]) == 0
    r = json.loads(out.read_text())
    assert r["value"] == pytest.approx(want, abs=1e-12) and r["n"] == len(images)
    assert r["classifier_kind"] == "course Classifier.pth"
    assert capsys.readouterr().out.startswith(f"accuracy {want:.4f} n={len(images)}")


def _one_error_line(argv: list[str], capsys, name: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("genda.evaluate: error: ") and name in err
    return err


def test_a_file_that_is_neither_layout_is_one_error_line(course_file, tmp_path, capsys):
    _, net, folder, _, _ = course_file
    sd = net.state_dict()
    cases = {
        "other_keys.pth": {"state_dict": {"features.0.weight": sd["conv1.weight"]}},
        "extra_key.pth": {"state_dict": {**sd, "fc4.weight": sd["fc3.weight"]}},
        "a_tensor.pth": sd["conv1.weight"],
        "model.pth": {"model": sd},
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        err = _one_error_line(["accuracy", "--folder", str(folder), "--classifier", str(tmp_path / name)],
                              capsys, name)
        assert "neither a genda checkpoint" in err and "Classifier.pth" in err
    (tmp_path / "text.pth").write_text("not a torch file")
    _one_error_line(["accuracy", "--folder", str(folder), "--classifier", str(tmp_path / "text.pth")],
                    capsys, "text.pth")


def test_wrong_shapes_name_the_file(course_file, tmp_path):
    _, net, _, _, _ = course_file
    sd = {**net.state_dict(), "fc3.weight": torch.zeros(5, 64), "fc3.bias": torch.zeros(5)}
    torch.save({"state_dict": sd}, tmp_path / "five.pth")
    with pytest.raises(CheckpointError, match=r"five\.pth.*shape mismatch at fc3\.weight"):
        DigitEvaluator.from_checkpoint(tmp_path / "five.pth")


class _Payload:
    def __reduce__(self):
        return (Path("MARKER").write_text, ("pickled code ran",))


def test_the_file_is_loaded_with_weights_only(course_file, tmp_path, monkeypatch):
    """A pickle with objects beyond tensors is refused before anything in it runs."""
    _, net, _, _, _ = course_file
    monkeypatch.chdir(tmp_path)
    torch.save({"state_dict": net.state_dict(), "extra": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"evil\.pth"):
        DigitEvaluator.from_checkpoint(tmp_path / "evil.pth")
    assert not (tmp_path / "MARKER").exists()


def test_grey_and_resized_inputs_follow_the_course_preprocessing(course_file):
    """Grey images are repeated to RGB; uint8 and [-1, 1] inputs of the same pixels agree."""
    path, net, _, images, _ = course_file
    grey = images.float().mean(1, keepdim=True).round().to(torch.uint8)
    with torch.no_grad():
        want = net(_course_input(grey.expand(-1, 3, -1, -1))).argmax(1)
    ev = DigitEvaluator.from_checkpoint(path)
    assert torch.equal(ev.predict(grey), want)
    assert np.array_equal(ev.predict(grey.float() / 127.5 - 1).numpy(), want.numpy())


def test_the_training_precheck_accepts_the_course_file(course_file, tmp_path):
    """`metrics.classifier.ckpt=Classifier.pth` (the conditional DDPM's scorer) passes the check
    `python -m genda` runs before training; a file that is neither layout is refused there."""
    from omegaconf import OmegaConf

    from genda.__main__ import check_classifier_ckpt
    from genda.metrics.accuracy import check_classifier

    path = course_file[0]
    assert check_classifier(path) == "course"
    check_classifier_ckpt(OmegaConf.create({"metrics": {"classifier": {"ckpt": str(path)}}}))
    torch.save({"weights": torch.zeros(3)}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"odd\.pth: neither"):
        check_classifier_ckpt(OmegaConf.create({"metrics": {"classifier": {"ckpt": str(tmp_path / "odd.pth")}}}))


@pytest.mark.slow
def test_a_genda_classifier_trained_with_meanstd_gets_its_own_normalisation(smoke_run):
    """A genda LeNet checkpoint is fed the way its run normalised (data.normalize=meanstd here)."""
    from genda.data.domain import load_domain
    from genda.data.module import DomainData
    from genda.runs import load_run

    mean, std = [0.4, 0.45, 0.5], [0.2, 0.25, 0.3]
    run = smoke_run("classifier_mnist", "data.normalize=meanstd", f"+data.mean={mean}", f"+data.std={std}")
    ckpt = run / "checkpoints" / "last.ckpt"
    ev = DigitEvaluator.from_checkpoint(ckpt)
    assert ev.preprocess == "affine"
    u8 = load_domain("mnist").val.images[:50].expand(-1, 3, -1, -1).contiguous()
    net = load_run(ckpt).task.net.eval()  # the run's own network, built independently of the evaluator
    with torch.no_grad():
        want = net(DomainData("mnist", normalize="meanstd", mean=mean, std=std).to_float(u8)).argmax(1)
    assert torch.equal(ev.predict(u8), want)
    assert torch.equal(ev.predict(u8.float() / 127.5 - 1), want)
