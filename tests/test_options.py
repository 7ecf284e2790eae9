"""Small options: G dropout and LeakyReLU slope (DCGAN), cosine warm restarts (UDA), mean/std
normalisation (data)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from genda.data.module import DomainData
from genda.errors import ConfigError
from genda.models.dcgan import Generator


def test_generator_dropout_is_active_in_train_mode_only():
    torch.manual_seed(0)
    g = Generator(nz=8, ngf=4, dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in g.modules()) == 4
    z = torch.randn(3, 8)
    g.eval()
    a, b = g(z), g(z)
    assert torch.equal(a, b), "eval: deterministic"
    g.train()
    c, d = g(z), g(z)
    assert not torch.equal(c, d), "train: a fresh dropout mask per call"
    assert not any(isinstance(m, nn.Dropout) for m in Generator(nz=8, ngf=4).modules())
    with pytest.raises(ConfigError, match="dropout"):
        Generator(dropout=1.0)


def test_dropout_zero_keeps_the_state_dict_keys():
    """Older checkpoints (no dropout option) still load: no layer indices move at dropout=0."""
    old = Generator(nz=8, ngf=4).state_dict()
    assert list(Generator(nz=8, ngf=4, dropout=0.0, leaky_slope=0.01).state_dict()) == list(old)


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.3])
def test_generator_leaky_slope_is_used(slope):
    g = Generator(nz=8, ngf=4, activation="leaky", leaky_slope=slope)
    acts = [m for m in g.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and all(m.negative_slope == slope for m in acts)
    x = torch.tensor([-2.0, 3.0])
    assert torch.allclose(acts[0](x.clone()), torch.tensor([-2.0 * slope, 3.0]))
    assert not any(isinstance(m, nn.LeakyReLU) for m in Generator(nz=8, ngf=4, leaky_slope=slope).modules())


def test_dcgan_b_config_sets_the_slope():
    from hydra import compose, initialize_config_dir

    from genda.config import CONF_DIR, build

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=dcgan_b", "model.generator.leaky_slope=0.01",
                                           "model.generator.dropout=0.1", "model.generator.ngf=4"])
    g = build(cfg, "model.generator")
    assert {m.negative_slope for m in g.modules() if isinstance(m, nn.LeakyReLU)} == {0.01}
    assert {m.p for m in g.modules() if isinstance(m, nn.Dropout)} == {0.1}


def _uda(**kw):
    from genda.models.dann import DannCNN, DomainClassifier, LabelClassifier
    from genda.tasks.uda import UDATask

    return UDATask(DannCNN(in_channels=3), lambda in_features: LabelClassifier(in_features, hidden=[8]),
                   lambda in_features: DomainClassifier(in_features, hidden=[8]),
                   lambda params: torch.optim.SGD(params, lr=0.1), **kw)


def test_uda_cosine_restarts_schedule():
    task = _uda(lr_schedule="cosine_restarts", restart_steps=5)
    opts = task.configure_optimizers()
    sched = task.configure_schedulers(opts, 100)["net"]
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts) and sched.T_0 == 5
    lrs = []
    for _ in range(11):
        lrs.append(opts["net"].param_groups[0]["lr"])
        opts["net"].step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.1)
    assert lrs[1] < lrs[0] and lrs[4] < lrs[3] < 0.1, "decays within each period, restarts after 5 steps"
    with pytest.raises(ConfigError, match="restart_steps"):
        _uda(lr_schedule="cosine_restarts", restart_steps=0)
    with pytest.raises(ConfigError, match="cosine_restarts"):
        _uda(lr_schedule="cosine")
    assert _uda().configure_schedulers(task.configure_optimizers(), 100) == {}


def test_dann_config_builds_the_restarts_schedule():
    from hydra import compose, initialize_config_dir

    from genda.config import CONF_DIR, build

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=dann_mnist_mnistm", "model.lr_schedule=cosine_restarts",
                                           "model.restart_steps=7"])
    task = build(cfg, "model")
    sched = task.configure_schedulers(task.configure_optimizers(), 100)["net"]
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts) and sched.T_0 == 7


def _all_pixels(channels: int = 3) -> torch.Tensor:
    """Every uint8 value in every channel: (4, C, 8, 8)."""
    return torch.arange(256, dtype=torch.uint8).view(4, 1, 8, 8).expand(-1, channels, -1, -1).contiguous()


@pytest.mark.parametrize(("mean", "std"), [(None, None), ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                                           ([0.5], [0.5]), (0.1307, 0.3081), ([0.2, 0.5, 0.9], [0.01, 1.0, 3.0])])
def test_meanstd_round_trips_uint8_exactly(mean, std):
    dm = DomainData("mnistm", normalize="meanstd", mean=mean, std=std)
    u8 = _all_pixels()
    x = dm.to_float(u8)
    m = torch.tensor([0.5] if mean is None else mean if isinstance(mean, list) else [mean])
    s = torch.tensor([0.5] if std is None else std if isinstance(std, list) else [std])
    want = v2.Normalize(m.expand(3).tolist(), s.expand(3).tolist())(v2.ToDtype(torch.float32, scale=True)(u8))
    assert torch.allclose(x, want, atol=1e-5, rtol=1e-6), "torchvision's ToTensor + Normalize"
    assert torch.equal(dm.to_uint8(x), u8)
    assert torch.allclose(dm.to_unit(x), u8.float() / 255, atol=1e-6)


@pytest.mark.parametrize("normalize", ["tanh", "unit"])
def test_ranges_still_round_trip(normalize):
    dm = DomainData("mnistm", normalize=normalize)
    u8 = _all_pixels()
    assert torch.equal(dm.to_uint8(dm.to_float(u8)), u8)


def test_meanstd_batches_and_the_default_matches_tanh():
    dm = DomainData("mnistm", batch_size=4, image_size=28, channels=3, normalize="meanstd",
                    mean=[0.4, 0.45, 0.5], std=[0.2, 0.25, 0.3], limit_train=16, limit_val=8)
    b = next(iter(dm.val_loader()))
    assert torch.equal(dm.to_uint8(b["image"]), dm.split("val").images[:8])
    tanh = DomainData("mnistm", normalize="tanh")
    u8 = _all_pixels()
    assert torch.allclose(DomainData("mnistm", normalize="meanstd").to_float(u8), tanh.to_float(u8), atol=1e-6)


def test_meanstd_refuses_bad_values():
    with pytest.raises(ConfigError, match="std"):
        DomainData("mnistm", normalize="meanstd", std=[0.5, 0.0, 0.5])
    with pytest.raises(ConfigError, match="meanstd"):
        DomainData("mnistm", normalize="tanh", mean=[0.5])
    with pytest.raises(ConfigError, match="1 value or 3"):
        DomainData("mnistm", channels=3, normalize="meanstd", mean=[0.5, 0.5])
    with pytest.raises(ConfigError, match="normalize"):
        DomainData("mnistm", normalize="imagenet")
    dm = DomainData("mnist", normalize="meanstd", mean=[0.1, 0.2, 0.3], std=[1, 1, 1], limit_val=4)  # grey
    with pytest.raises(ConfigError, match="3 values for 1-channel"):
        dm.split("val")
