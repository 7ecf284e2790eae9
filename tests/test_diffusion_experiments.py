"""ddpm_digits and ddim_faces end to end at scale=smoke through `python -m genda`, every artefact
written; the course-checkpoint path (`model.ckpt`) with user noises and ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from .conftest import genda, read_jsonl


@pytest.mark.slow
def test_ddpm_digits_smoke_writes_every_artefact(smoke_run) -> None:
    run = smoke_run("ddpm_digits")
    art = run / "artifacts"
    names = sorted(p.name for p in (art / "images").iterdir())
    assert names == sorted(f"{d}_{j:03d}.png" for d in range(10) for j in (1, 2, 3))  # smoke: 3 per digit
    assert Image.open(art / "images" / "7_002.png").size == (28, 28)
    grid = Image.open(art / "grid.png")  # 10 rows (digits) x 3 columns (noises), 2-pixel padding
    assert grid.size == (3 * 30 + 2, 10 * 30 + 2)
    assert Image.open(art / "reverse_process.png").size == (6 * 30 + 2, 32)
    ev = json.loads((art / "eval.json").read_text())
    assert 0.0 <= ev["accuracy"] <= 1.0 and ev["n_images"] == 30
    assert len(ev["reverse_process_timesteps"]) == 6
    # labelled copies for a reader of the run dir: digits on the rows, timesteps under the strip
    for name in ("grid_labelled.png", "reverse_process_labelled.png"):
        labelled = Image.open(art / name)
        assert labelled.width >= 500 and labelled.width > Image.open(art / name.replace("_labelled", "")).width
    final = [r for r in read_jsonl(run / "metrics.jsonl") if "final/accuracy" in r]
    assert final and final[-1]["final/accuracy"] == pytest.approx(ev["accuracy"])


@pytest.mark.slow
def test_ddim_faces_smoke_writes_every_artefact(smoke_run) -> None:
    run = smoke_run("ddim_faces")
    art = run / "artifacts"
    assert sorted(p.name for p in (art / "ddim").iterdir()) == ["00.png", "01.png", "02.png", "03.png"]
    assert sorted(p.name for p in (art / "noise").iterdir()) == ["00.pt", "01.pt", "02.pt", "03.pt"]
    img = np.asarray(Image.open(art / "ddim" / "00.png").convert("RGB"))
    assert img.min() == 0 and img.max() == 255  # per-image min-max normalised over all channels
    assert Image.open(art / "eta_grid.png").size == (4 * 66 + 2, 5 * 66 + 2)  # 5 etas x 4 noises
    for row in ("slerp", "lerp"):
        assert Image.open(art / f"{row}.png").size == (3 * 66 + 2, 68)
    ev = json.loads((art / "eval.json").read_text())
    assert ev["eta"] == 0.0
    # the HOG score of real val faces at the run's own image size: the ceiling the verdict quotes
    assert 0.0 <= ev["face_score_real_hog"] <= 100.0 and 0.0 <= ev["face_score_hog"] <= 100.0
    for name in ("eta_grid", "slerp", "lerp"):  # rows labelled by eta, columns by noise / alpha
        assert Image.open(art / f"{name}_labelled.png").width >= 500


@pytest.mark.slow
def test_ddim_faces_with_a_course_style_checkpoint_noises_and_gt(tmp_path: Path) -> None:
    """model.ckpt (plain state dict) + noise_dir + gt_dir: GT = our own output gives mse 0."""
    from genda.models.ddim_unet import DDIMUNet

    sizes = dict(channel=32, channel_multiplier=(1, 2, 2, 2), n_res_blocks=1, attn_strides=(8,))
    torch.save(DDIMUNet(**sizes).state_dict(), tmp_path / "UNet.pt")
    noise = tmp_path / "noise"
    noise.mkdir()
    for i in range(4):
        torch.save(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)), noise / f"{i:02d}.pt")
    common = ["experiment=ddim_faces", "scale=smoke", "logger.mode=disabled", "trainer.progress=false",
              f"model.ckpt={tmp_path / 'UNet.pt'}", f"model.noise_dir={noise}", "trainer.max_steps=1"]
    first = tmp_path / "first"
    genda(*common, f"hydra.run.dir={first}", check=True)
    second = tmp_path / "second"
    genda(*common, f"hydra.run.dir={second}", f"model.gt_dir={first / 'artifacts' / 'ddim'}", check=True)
    assert json.loads((second / "artifacts" / "eval.json").read_text())["mse"] == 0.0
    bad = genda(*common, f"hydra.run.dir={tmp_path / 'bad'}", "model.net.channel=64")
    assert bad.returncode == 2 and "does not match" in bad.stderr.strip().splitlines()[-1]


def test_diffusion_tasks_keep_their_former_names() -> None:
    """Configs stored in checkpoints written before the split name genda.tasks.diffusion.*: those
    targets stay allowed and build the same task; the noise readers stay importable there."""
    from hydra.utils import get_class

    from genda import targets
    from genda.tasks import ddim_faces, diffusion

    for name in ("genda.tasks.diffusion.DDIMFaceTask", "genda.tasks.ddim_faces.DDIMFaceTask",
                 "genda.tasks.diffusion.ConditionalDDPMTask"):
        assert targets.is_allowed(name), name
    assert issubclass(get_class("genda.tasks.diffusion.DDIMFaceTask"), ddim_faces.DDIMFaceTask)
    assert diffusion.read_noise_dir is ddim_faces.read_noise_dir and diffusion.load_course_unet is ddim_faces.load_course_unet


def test_ddim_clip_x0_auto_clips_only_nets_genda_trained(tmp_path: Path) -> None:
    """model.sampler.clip_x0: null (auto) clips the x0 estimate for a net trained here or loaded from a
    genda run, never for a plain state dict (the course's UNet.pt: the course's DDIM does not clip);
    an explicit true/false is kept."""
    from genda.models.ddim_unet import DDIMUNet
    from genda.tasks.ddim_faces import DDIMFaceTask

    sizes = dict(channel=32, channel_multiplier=(1, 2), n_res_blocks=1, attn_strides=(4,))
    torch.save(DDIMUNet(**sizes).state_dict(), tmp_path / "UNet.pt")
    schedule = {"kind": "linear", "num_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02}

    def task(clip, ckpt=None) -> DDIMFaceTask:
        sampler = {"kind": "ddim", "num_steps": 5, "eta": 0.0, "guidance": 0.0, "clip_x0": clip}
        return DDIMFaceTask(DDIMUNet(**sizes), torch.optim.Adam, schedule, sampler, ckpt=ckpt)

    assert task(None).sampler["clip_x0"] is True
    assert task(None, str(tmp_path / "UNet.pt")).sampler["clip_x0"] is False
    assert task(False).sampler["clip_x0"] is False
    assert task(True, str(tmp_path / "UNet.pt")).sampler["clip_x0"] is True


@pytest.mark.slow
def test_ddim_faces_v_prediction_trains_and_a_loaded_net_keeps_its_own(tmp_path: Path) -> None:
    """model.prediction=v trains a v-net and samples it through EpsFromV; a sampling-only run
    reading it (model.ckpt=RUN_DIR) samples it as v whatever model.prediction says (the run's saved
    setting), and the course's plain UNet.pt is always sampled as the eps-net it is."""
    from genda.models.ddim_unet import DDIMUNet

    common = ["experiment=ddim_faces", "scale=smoke", "logger.mode=disabled", "trainer.progress=false"]
    trained = tmp_path / "v_run"
    genda(*common, "model.prediction=v", f"hydra.run.dir={trained}", check=True)
    assert json.loads((trained / "artifacts" / "eval.json").read_text())["prediction"] == "v"

    def reuse(name: str, ckpt: Path, *extra: str) -> tuple[dict, np.ndarray]:
        genda(*common, f"model.ckpt={ckpt}", "trainer.max_steps=1", f"hydra.run.dir={tmp_path / name}", *extra,
              check=True)
        art = tmp_path / name / "artifacts"
        return json.loads((art / "eval.json").read_text()), np.asarray(Image.open(art / "ddim" / "00.png"))

    ev_v, img_v = reuse("as_v", trained, "model.prediction=v")
    ev_eps, img_eps = reuse("as_eps", trained, "model.prediction=eps")
    assert ev_v["prediction"] == ev_eps["prediction"] == "v" and np.array_equal(img_v, img_eps)
    smoke_net = dict(channel=32, channel_multiplier=(1, 2, 2, 2), n_res_blocks=1, attn_strides=(8,))
    torch.save(DDIMUNet(**smoke_net).state_dict(), tmp_path / "UNet.pt")
    ev_course, img_course = reuse("course_v", tmp_path / "UNet.pt", "model.prediction=v")
    _, img_course_eps = reuse("course_eps", tmp_path / "UNet.pt")
    assert ev_course["prediction"] == "eps" and np.array_equal(img_course, img_course_eps)


def test_diffusion_val_loss_is_the_training_objective() -> None:
    """val/loss uses the run's own target and Min-SNR weights, so the train and val curves of a
    v-prediction, Min-SNR-5 run are one quantity (it was the plain eps MSE, ten times the train loss)."""
    from types import SimpleNamespace

    from genda.diffusion import eps_loss
    from genda.models.ddim_unet import DDIMUNet
    from genda.tasks.ddim_faces import DDIMFaceTask

    sizes = dict(channel=32, channel_multiplier=(1, 2), n_res_blocks=1, attn_strides=(4,))
    schedule = {"kind": "linear", "num_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02}
    sampler = {"kind": "ddim", "num_steps": 5, "eta": 0.0, "guidance": 0.0, "clip_x0": None}
    task = DDIMFaceTask(DDIMUNet(**sizes), torch.optim.Adam, schedule, sampler, prediction="v", min_snr_gamma=5.0)
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ctx = SimpleNamespace(batches=lambda split: iter([{"image": images}]))
    with torch.no_grad():
        got = task._val_loss(ctx, 1, conditional=False)["loss"]
        gen = torch.Generator().manual_seed(task.seed + 7)
        want = float(eps_loss(task.net, images, task.noise_schedule, gen, 5.0, "v"))
        plain = float(eps_loss(task.net, images, task.noise_schedule, torch.Generator().manual_seed(task.seed + 7)))
    assert got == pytest.approx(want) and got != pytest.approx(plain)
