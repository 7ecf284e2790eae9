"""Domain Separation Networks: the difference loss, the scale-invariant MSE, the decoder, one
training step and predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from genda.config import build
from genda.errors import ConfigError
from genda.models.dann import DannCNN, DomainClassifier, LabelClassifier
from genda.models.dsn import DsnDecoder, difference_loss, scale_invariant_mse
from genda.tasks.base import StepContext
from genda.tasks.dsn import DSNTask

from .conftest import ROOT

NETWORKS = (
    "features",
    "classifier",
    "domain_classifier",
    "source_private",
    "target_private",
    "decoder",
)


def _dsn(**kw) -> DSNTask:
    kw.setdefault("private_features", lambda: DannCNN())
    return DSNTask(
        DannCNN(),
        lambda in_features: LabelClassifier(in_features),
        lambda in_features: DomainClassifier(in_features),
        lambda in_features: DsnDecoder(in_features),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        **kw,
    )


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


def _ctx(task: DSNTask, step: int = 5, max_steps: int = 10) -> StepContext:
    opts = task.configure_optimizers()

    def update(name: str, loss: torch.Tensor) -> None:
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    return StepContext(update=update, step=step, max_steps=max_steps)


# --- difference loss -------------------------------------------------------------------------


def _normalised(h: np.ndarray) -> np.ndarray:
    """By hand: centre each column on its batch mean, then divide each row by its L2 norm."""
    h = h - h.mean(axis=0, keepdims=True)
    return h / np.sqrt((h**2).sum(axis=1, keepdims=True))


def test_difference_loss_is_squared_frobenius_norm_of_normalised_correlation():
    rng = np.random.default_rng(0)
    hc, hp = rng.normal(size=(7, 5)) + 2.0, rng.normal(size=(7, 3)) - 1.0
    corr = _normalised(hc).T @ _normalised(hp)  # (D_c, D_p)
    expected = sum(corr[i, j] ** 2 for i in range(5) for j in range(3))
    got = difference_loss(
        torch.tensor(hc, dtype=torch.float32), torch.tensor(hp, dtype=torch.float32)
    )
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # image-shaped codes are flattened per row
    got4 = difference_loss(torch.tensor(hc).view(7, 5, 1, 1), torch.tensor(hp).view(7, 1, 3, 1))
    assert float(got4) == pytest.approx(expected, rel=1e-5)


def test_difference_loss_is_zero_for_orthogonal_codes_and_positive_otherwise():
    u = torch.tensor([1.0, -1.0, 1.0, -1.0])  # centred, orthogonal over the batch
    v = torch.tensor([1.0, 1.0, -1.0, -1.0])
    hc = torch.outer(u, torch.tensor([0.3, -2.0, 1.0])) + torch.tensor([5.0, 1.0, -1.0])
    hp = torch.outer(v, torch.tensor([1.5, 0.5])) - 3.0
    assert float(difference_loss(hc, hp)) == pytest.approx(0.0, abs=1e-10)
    # codes varying along the same batch direction u: normalised rows are ±â and ±b̂ with the same
    # signs, so H_cᵀ H_p = B·â b̂ᵀ and the loss is its maximum, B² = 16
    assert float(difference_loss(hc, torch.outer(u, torch.tensor([1.0, 2.0])))) == pytest.approx(
        16.0, rel=1e-5
    )
    assert float(difference_loss(hc, hc[:, :2])) == pytest.approx(16.0, rel=1e-5)


def test_difference_loss_gradient_reaches_both_codes():
    hc = torch.randn(8, 4, requires_grad=True)
    hp = torch.randn(8, 6, requires_grad=True)
    difference_loss(hc, hp).backward()
    assert torch.count_nonzero(hc.grad) > 0 and torch.count_nonzero(hp.grad) > 0


# --- scale-invariant MSE ---------------------------------------------------------------------


def test_scale_invariant_mse_matches_formula():
    g = torch.Generator().manual_seed(1)
    x, x_hat = torch.randn(5, 3, 4, 4, generator=g), torch.randn(5, 3, 4, 4, generator=g)
    per_image = []
    for i in range(5):
        d = (x[i] - x_hat[i]).double().numpy().ravel()
        k = d.size
        per_image.append((d @ d) / k - d.sum() ** 2 / k**2)
    assert float(scale_invariant_mse(x, x_hat)) == pytest.approx(np.mean(per_image), rel=1e-5)
    assert float(scale_invariant_mse(x, x)) == pytest.approx(0.0, abs=1e-7)


def test_scale_invariant_mse_ignores_a_constant_shift_of_the_reconstruction():
    g = torch.Generator().manual_seed(2)
    x, x_hat = torch.randn(4, 3, 28, 28, generator=g), torch.randn(4, 3, 28, 28, generator=g)
    base = float(scale_invariant_mse(x, x_hat))
    assert float(scale_invariant_mse(x, x_hat + 0.7)) == pytest.approx(base, rel=1e-4)
    per_image = torch.tensor([-1.0, 0.2, 3.0, 0.5]).view(4, 1, 1, 1)  # a constant per image, too
    assert float(scale_invariant_mse(x, x_hat + per_image)) == pytest.approx(base, rel=1e-4)
    assert float(scale_invariant_mse(x, x + 0.5)) == pytest.approx(0.0, abs=1e-6)
    assert float(torch.nn.functional.mse_loss(x + 0.5, x)) == pytest.approx(
        0.25
    )  # plain MSE is not


# --- networks and task -----------------------------------------------------------------------


def test_reconstruction_has_the_input_shape_and_range():
    task = _dsn()
    x = _batch(3)["source"]["image"]
    for domain in ("source", "target"):
        for part in ("both", "shared", "private"):
            r = task.reconstruct(x, domain, part)
            assert r.shape == x.shape and r.abs().max() <= 1.0
    assert DsnDecoder(10, out_channels=1)(torch.randn(2, 10)).shape == (2, 1, 28, 28)


def test_private_encoders_have_their_own_weights():
    task = _dsn()
    w = [
        task.features.net[0].weight,
        task.source_private.net[0].weight,
        task.target_private.net[0].weight,
    ]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    # without private_features: re-initialised copies of the shared encoder's architecture
    task = _dsn(private_features=None)
    assert isinstance(task.source_private, DannCNN) and task.source_private is not task.features
    assert not torch.equal(task.features.net[0].weight, task.source_private.net[0].weight)
    assert not torch.equal(task.source_private.net[0].weight, task.target_private.net[0].weight)


def test_training_step_updates_all_networks_and_combines_the_losses():
    torch.manual_seed(0)
    task = _dsn(recon_weight=0.1, difference_weight=0.05, similarity_weight=0.25)
    before = {n: [p.detach().clone() for p in getattr(task, n).parameters()] for n in NETWORKS}
    logs = {
        k: float(v.detach()) if torch.is_tensor(v) else v
        for k, v in task.training_step(_batch(), _ctx(task)).items()
    }
    for n in NETWORKS:
        after = list(getattr(task, n).parameters())
        assert any(not torch.equal(a, b) for a, b in zip(after, before[n], strict=True)), n
    expected = (
        logs["cls_loss"]
        + 0.1 * logs["recon_loss"]
        + 0.05 * logs["difference_loss"]
        + 0.25 * logs["domain_loss"]
    )
    assert logs["loss"] == pytest.approx(expected, rel=1e-6)
    assert {"domain_acc", "acc", "lambda"} <= set(logs) and logs["lambda"] > 0


def test_target_labels_are_never_read_in_training():
    task = _dsn()
    task.training_step(_batch(target_label=999), _ctx(task))  # cross-entropy would fail on 999


def test_predict_is_shared_encoder_plus_classifier_and_round_trips():
    torch.manual_seed(0)
    task = _dsn()
    task.training_step(_batch(), _ctx(task))
    task.eval()
    x = _batch(5)["target"]["image"]
    pred = task.predict(x)
    assert pred.shape == (5,) and pred.dtype == torch.long
    assert torch.equal(pred, task.classifier(task.features(x)).argmax(1))
    other = _dsn()
    other.load_state_dict(task.state_dict())
    other.eval()
    assert torch.equal(other.predict(x), pred)
    assert DSNTask.method == "dsn" and task.method == "dsn"


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"difference_weight": -0.1}, "difference_weight"),
        ({"mode": "source_only"}, "model.mode"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"private_features": lambda: LabelClassifier(4)}, "out_features"),
    ],
)
def test_bad_settings_are_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        _dsn(**kw)


def test_uda_settings_pass_through():
    task = _dsn(lambda_max=0.5, lr_schedule="anneal", tsne_points=16)
    assert task.lambda_at(1.0) == pytest.approx(0.5 * (2 / (1 + np.exp(-10.0)) - 1))
    assert set(task.configure_schedulers(task.configure_optimizers(), 10)) == {"net"}
    assert task.tsne_points == 16 and task.mode == "dann"


def test_model_config_builds_dsn_with_separate_private_encoders():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=dsn_mnistm_usps", "scale=smoke"])
    task = build(cfg, "model")
    assert isinstance(task, DSNTask)
    assert (
        task.source_private.out_features
        == task.features.out_features
        == task.decoder.fc[0].in_features
    )
    assert not torch.equal(task.source_private.net[0].weight, task.target_private.net[0].weight)
    assert (task.alpha, task.beta, task.gamma_sim) == (0.1, 0.05, 0.25)
    assert set(NETWORKS) <= set(task.networks())
