"""Domain adaptation pieces: gradient reversal, the λ schedule, the UDA modes, ADDA's phases,
and the t-SNE writer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from genda.errors import ConfigError
from genda.models.dann import (
    DannCNN,
    DeepCNN,
    DomainClassifier,
    LabelClassifier,
    dann_lambda,
    grad_reverse,
)
from genda.tasks.base import StepContext
from genda.tasks.uda import ADDATask, UDATask
from genda.viz.tsne import write_tsne


def _ctx_with_optimizers(task, step: int = 0, max_steps: int = 10) -> StepContext:
    """A StepContext whose update() does what the loop does: zero_grad, backward, step."""
    opts = task.configure_optimizers()

    def update(name: str, loss: torch.Tensor) -> None:
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    return StepContext(update=update, step=step, max_steps=max_steps)


def _batch(n: int = 6, target_label: int | None = None) -> dict:
    g = torch.Generator().manual_seed(0)
    img = lambda: torch.rand(n, 3, 28, 28, generator=g) * 2 - 1  # noqa: E731
    yt = (
        torch.randint(0, 10, (n,), generator=g)
        if target_label is None
        else torch.full((n,), target_label)
    )
    return {
        "source": {"image": img(), "label": torch.randint(0, 10, (n,), generator=g)},
        "target": {"image": img(), "label": yt},
    }


def _uda(mode: str = "dann", **kw) -> UDATask:
    return UDATask(
        DannCNN(),
        lambda in_features: LabelClassifier(in_features),
        lambda in_features: DomainClassifier(in_features),
        lambda p: torch.optim.SGD(p, lr=0.01),
        mode=mode,
        **kw,
    )


def test_grad_reverse_is_identity_forward_and_negated_scaled_backward():
    x = torch.randn(4, 5, requires_grad=True)
    w = torch.randn(4, 5)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.3 * w)


def test_grad_reverse_zero_lambda_blocks_gradient():
    x = torch.randn(3, requires_grad=True)
    (grad_reverse(x, 0.0) ** 2).sum().backward()
    assert torch.count_nonzero(x.grad) == 0


def test_lambda_schedule_matches_paper_formula():
    assert dann_lambda(0.0) == 0.0
    # λ_p = 2 / (1 + exp(-10 p)) - 1, computed independently at a few points
    for p in (0.1, 0.25, 0.5, 1.0):
        assert dann_lambda(p) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1)
    assert dann_lambda(0.1) == pytest.approx(0.46211716)  # tanh(0.5)
    assert dann_lambda(0.5, lambda_max=0.3, gamma=5.0) == pytest.approx(0.3 * math.tanh(1.25))
    values = [dann_lambda(p / 20) for p in range(21)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False)) and values[-1] < 1.0


@pytest.mark.parametrize(
    "mode,progress,expected",
    [("dann", 0.3, dann_lambda(0.3)), ("source_only", 0.3, 0.0), ("target_only", 1.0, 0.0)],
)
def test_training_step_uses_the_schedule(mode, progress, expected):
    task = _uda(mode)
    ctx = _ctx_with_optimizers(task, step=int(progress * 10), max_steps=10)
    logs = task.training_step(_batch(), ctx)
    assert logs["lambda"] == pytest.approx(expected)


def test_domain_gradient_reaches_extractor_reversed_only_in_dann():
    """The extractor's gradient from the domain loss is -λ times the plain (un-reversed) one."""
    torch.manual_seed(0)
    task = _uda("dann", lambda_max=0.7)
    x = _batch()["source"]["image"]
    w = task.features.net[0].weight

    def domain_grad(lam: float) -> torch.Tensor:
        f = task.features(x)
        return torch.autograd.grad(task.domain_classifier(grad_reverse(f, lam)).sum(), w)[0]

    plain = torch.autograd.grad(task.domain_classifier(task.features(x)).sum(), w)[0]
    torch.testing.assert_close(domain_grad(task.lambda_at(0.4)), -dann_lambda(0.4, 0.7) * plain)
    assert _uda("source_only").lambda_at(0.4) == 0.0


@pytest.mark.parametrize("mode", ["source_only", "dann"])
def test_target_labels_unused_outside_target_only(mode):
    task = _uda(mode)
    task.training_step(
        _batch(target_label=99), _ctx_with_optimizers(task)
    )  # 99 would break cross-entropy
    with pytest.raises(IndexError):
        task = _uda("target_only")
        task.training_step(_batch(target_label=99), _ctx_with_optimizers(task))


def test_annealed_lr_follows_paper():
    task = _uda(lr_schedule="anneal")
    opt = task.configure_optimizers()["net"]
    sched = task.configure_schedulers({"net": opt}, max_steps=100)["net"]
    for _ in range(50):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 / (1 + 10 * 0.5) ** 0.75)


def test_bad_mode_names_the_key():
    with pytest.raises(ConfigError, match="model.mode"):
        _uda("adda")


@pytest.mark.parametrize("net,dim", [(DannCNN, 768), (DeepCNN, 256)])
def test_extractors_output_their_declared_width(net, dim):
    m = net(in_channels=3)
    assert m.out_features == dim and m(torch.zeros(2, 3, 28, 28)).shape == (2, dim)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.state_dict().values()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_adda_target_encoder_starts_from_source_and_classifier_stays_frozen():
    torch.manual_seed(0)
    enc = DannCNN(batch_norm=True, dropout=0.5)
    task = ADDATask(
        enc,
        lambda in_features: LabelClassifier(in_features),
        lambda in_features: DomainClassifier(in_features, hidden=(50,)),
        lambda p: torch.optim.Adam(p, lr=1e-2),
        lambda p: torch.optim.Adam(p, lr=1e-2),
        pretrain_fraction=0.5,
    )
    opts = task.configure_optimizers()

    def update(name, loss):
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    task.train()
    initial_target = _params(task.target_encoder)
    for step in range(3):  # phase 1: steps 0..2 (switch at round(0.5 * 6) = 3)
        logs = task.training_step(_batch(), StepContext(update=update, step=step, max_steps=6))
        assert logs["phase"] == 1
    assert _same(_params(task.target_encoder), initial_target)  # untouched in phase 1
    assert not _same(_params(task.source_encoder), initial_target)  # the source encoder trained
    frozen_cls, frozen_src = _params(task.classifier), _params(task.source_encoder)
    disc = _params(task.discriminator)

    task.init_target_encoder()
    assert _same(_params(task.target_encoder), frozen_src)  # what the switch step copies
    for step in range(3, 6):
        logs = task.training_step(_batch(), StepContext(update=update, step=step, max_steps=6))
        assert logs["phase"] == 2
    assert _same(_params(task.classifier), frozen_cls)
    assert _same(_params(task.source_encoder), frozen_src)  # incl. BN running statistics
    assert not _same(_params(task.target_encoder), frozen_src)
    assert not _same(_params(task.discriminator), disc)
    assert task.adapted(StepContext(update=update, step=4, max_steps=6))
    assert not task.adapted(StepContext(update=update, step=3, max_steps=6))


def test_adda_switch_step_copies_source_into_target():
    torch.manual_seed(0)
    task = ADDATask(
        DannCNN(),
        lambda in_features: LabelClassifier(in_features),
        lambda in_features: DomainClassifier(in_features),
        lambda p: torch.optim.SGD(p, lr=0.1),
        lambda p: torch.optim.SGD(p, lr=0.0),
        pretrain_fraction=0.25,
    )
    ctx = _ctx_with_optimizers(task, step=0, max_steps=8)
    task.training_step(_batch(), ctx)  # phase 1 moves the source encoder away from the copy
    assert not _same(_params(task.target_encoder), _params(task.source_encoder))
    ctx.step = task.switch_step(8)
    assert ctx.step == 2
    task.training_step(_batch(), ctx)  # lr 0 in phase 2: the target encoder is exactly the copy
    assert _same(_params(task.target_encoder), _params(task.source_encoder))


def test_adda_target_lr_sets_only_the_target_encoders_optimizer():
    """model.target_lr: the target encoder learns slower than the discriminator (the usual fix
    for ADDA's collapse to chance); null keeps the one adversarial lr for both; <= 0 is refused."""
    from functools import partial

    def task(target_lr):
        return ADDATask(DannCNN(), lambda in_features: LabelClassifier(in_features),
                        lambda in_features: DomainClassifier(in_features),
                        partial(torch.optim.Adam, lr=1e-3), partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999)),
                        target_lr=target_lr)

    opts = task(1e-5).configure_optimizers()
    assert opts["target"].param_groups[0]["lr"] == 1e-5 and opts["target"].param_groups[0]["betas"] == (0.5, 0.999)
    assert opts["discriminator"].param_groups[0]["lr"] == 1e-3 and opts["source"].param_groups[0]["lr"] == 1e-3
    assert task(None).configure_optimizers()["target"].param_groups[0]["lr"] == 1e-3
    with pytest.raises(ConfigError, match="model.target_lr"):
        task(0.0)


def test_adda_source_ckpt_is_phase_1_read_from_a_source_only_run(tmp_path):
    """model.source_ckpt: the source encoder and classifier are a UDATask run's (features,
    classifier), loaded by the Trainer's load_initial_weights (not at construction, so a trained
    ADDA run loads without that file); every step is then phase 2. A missing file or a checkpoint
    without a source model is one CheckpointError naming the key."""
    from genda.errors import CheckpointError
    from genda.kernel import CKPT_FORMAT

    torch.manual_seed(1)
    so = _uda("source_only")
    path = tmp_path / "so.ckpt"
    torch.save({"format": CKPT_FORMAT, "step": 8,
                "modules": {k: m.state_dict() for k, m in so.named_children()}}, path)

    def adda(source_ckpt):
        return ADDATask(DannCNN(), lambda in_features: LabelClassifier(in_features),
                        lambda in_features: DomainClassifier(in_features),
                        lambda p: torch.optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.0),
                        source_ckpt=source_ckpt)

    task = adda(str(path))
    assert not _same(_params(task.source_encoder), _params(so.features))  # not read when built
    task.load_initial_weights()
    assert _same(_params(task.source_encoder), _params(so.features))
    assert _same(_params(task.classifier), _params(so.classifier))
    assert task.switch_step(600) == 0
    ctx = _ctx_with_optimizers(task, step=0, max_steps=4)
    assert task.training_step(_batch(), ctx)["phase"] == 2  # the first step adapts
    assert _same(_params(task.target_encoder), _params(so.features))  # copied at step 0 (lr 0)
    assert adda(None).switch_step(600) == 300
    dann = _uda("dann", source_ckpt=str(path))  # DANN + MCC fine-tuning it: all three networks
    assert dann.method == "dann (from source only)" and _uda("dann").method == "dann"  # t-SNE titles
    dann.load_initial_weights()
    for mine, theirs in zip(dann.children(), so.children(), strict=True):
        assert _same(_params(mine), _params(theirs))
    with pytest.raises(CheckpointError, match="model.source_ckpt: .*not found"):
        adda(str(tmp_path / "nothing.ckpt")).load_initial_weights()
    torch.save({"format": CKPT_FORMAT, "modules": {"net": so.features.state_dict()}}, tmp_path / "gan.ckpt")
    with pytest.raises(CheckpointError, match="model.source_ckpt: .*holds no source model"):
        adda(str(tmp_path / "gan.ckpt")).load_initial_weights()


def test_tsne_writer_two_pngs_points_and_legends(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    labels = rng.integers(0, 3, n) * 2  # classes 0, 2, 4
    domains = np.repeat([0, 1], n // 2)
    feats = rng.normal(size=(n, 64)) + labels[:, None] + 5 * domains[:, None]
    pc, pd = tmp_path / "class.png", tmp_path / "domain.png"
    plots = write_tsne(
        feats, labels, domains, str(pc), str(pd), domain_names=["mnist", "mnistm"], max_points=90
    )
    assert plots.embedding.shape == (90, 2) and len(np.unique(plots.index)) == 90
    for fig, names in ((plots.by_class, ["0", "2", "4"]), (plots.by_domain, ["mnist", "mnistm"])):
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == names
        assert sum(len(c.get_offsets()) for c in ax.collections) == 90
    for p in (pc, pd):
        assert Image.open(p).size == (720, 720)


def test_tsne_writer_is_reproducible(tmp_path):
    rng = np.random.default_rng(1)
    feats, labels, domains = (
        rng.normal(size=(40, 8)),
        rng.integers(0, 10, 40),
        np.repeat([0, 1], 20),
    )
    a = write_tsne(feats, labels, domains, str(tmp_path / "a.png"), str(tmp_path / "b.png"))
    b = write_tsne(feats, labels, domains, str(tmp_path / "c.png"), str(tmp_path / "d.png"))
    np.testing.assert_array_equal(a.embedding, b.embedding)
