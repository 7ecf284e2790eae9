"""The target-side UDA losses (MCC, pseudo-labels) against the papers' formulas written
independently in NumPy, and domain-specific batch normalisation's bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genda.errors import ConfigError
from genda.models.dann import DannCNN, DomainBatchNorm2d, DomainClassifier, LabelClassifier
from genda.tasks.uda import UDATask, mcc_loss, pseudo_label_loss


def _mcc_numpy(z: np.ndarray, t: float) -> float:
    """Jin et al. 2020, eq. 1-6, one line per equation."""
    b, c = z.shape
    y = np.exp(z / t) / np.exp(z / t).sum(1, keepdims=True)                  # eq. 1
    h = -(y * np.log(y + 1e-5)).sum(1)                                       # eq. 3
    w = b * (1 + np.exp(-h)) / (1 + np.exp(-h)).sum()                         # eq. 4
    corr = np.einsum("i,ij,ik->jk", w, y, y)                                  # eq. 2 / 5
    corr = corr / corr.sum(1, keepdims=True)                                 # eq. 6
    return float((corr.sum() - np.trace(corr)) / c)                          # eq. 7


@pytest.mark.parametrize("t", [1.0, 2.5])
def test_mcc_matches_the_paper(t: float) -> None:
    z = torch.randn(32, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    assert mcc_loss(z, t).item() == pytest.approx(_mcc_numpy(z.numpy(), t), rel=1e-9)


def test_mcc_is_zero_for_confident_distinct_classes_and_large_when_confused() -> None:
    confident = torch.eye(10, dtype=torch.float64).repeat(4, 1) * 50
    assert mcc_loss(confident, 1.0).item() == pytest.approx(0.0, abs=1e-9)
    confused = torch.zeros(40, 10, dtype=torch.float64)  # uniform: every class confused
    assert mcc_loss(confused, 2.5).item() == pytest.approx(0.9, rel=1e-6)


def test_mcc_gradient_flows_to_the_logits() -> None:
    z = torch.randn(16, 10, requires_grad=True)
    mcc_loss(z).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_pseudo_labels_keep_only_confident_rows() -> None:
    z = torch.tensor([[10.0, 0.0], [0.2, 0.0], [0.0, 9.0]], dtype=torch.float64)
    loss, frac = pseudo_label_loss(z, 0.9)
    p = torch.softmax(z, 1).numpy()
    want = (-np.log(p[0, 0]) - np.log(p[2, 1])) / 3  # row 1 (p=0.55) is left out, mean over 3
    assert loss.item() == pytest.approx(want, rel=1e-9) and frac.item() == pytest.approx(2 / 3)


def _task(**kw) -> UDATask:
    return UDATask(DannCNN(3, batch_norm=True, domain_bn=kw.pop("domain_bn", False)),
                   LabelClassifier, DomainClassifier,
                   lambda p: torch.optim.Adam(p, 1e-3), **kw)


def test_method_names_say_what_was_added() -> None:
    assert _task().method == "dann"
    assert _task(mcc_weight=1.0).method == "dann+mcc"
    assert _task(mode="source_only", mcc_weight=1.0).method == "source_only+mcc"
    assert _task(mcc_weight=1.0, name="mcc").method == "mcc"


@pytest.mark.parametrize("kw", [{"mcc_temperature": 0}, {"pseudo_threshold": 0},
                                {"mode": "target_only", "mcc_weight": 1.0}])
def test_bad_loss_settings_are_refused(kw: dict) -> None:
    with pytest.raises(ConfigError):
        _task(**kw)


def test_domain_specific_bn_keeps_one_statistic_set_per_domain() -> None:
    net = DannCNN(3, batch_norm=True, domain_bn=True).train()
    assert net.domain_specific
    xs, xt = torch.randn(8, 3, 28, 28), torch.randn(8, 3, 28, 28) * 3 + 2
    net(xs, 0)
    net(xt, 1)
    bn = next(m for m in net.modules() if isinstance(m, DomainBatchNorm2d))
    src, tgt = bn.bns[0].running_mean, bn.bns[1].running_mean
    assert not torch.allclose(src, tgt)
    # eval: the same input through each branch differs (each uses its own statistics)
    net.eval()
    assert not torch.allclose(net(xt, 0), net(xt, 1))
    # shared BN (the default) has no domain argument to honour
    assert not DannCNN(3, batch_norm=True).domain_specific


def test_lambda_delay_keeps_the_reversal_off_then_runs_the_paper_schedule() -> None:
    from genda.models.dann import dann_lambda

    t = _task(lambda_delay=0.25)
    assert t.lambda_at(0.0) == 0.0 and t.lambda_at(0.2) == 0.0
    assert t.lambda_at(0.625) == pytest.approx(dann_lambda(0.5))  # halfway through the rest
    assert t.lambda_at(1.0) == pytest.approx(dann_lambda(1.0))
    assert _task().lambda_at(0.5) == pytest.approx(dann_lambda(0.5))  # default: the paper's
    assert _task(mode="source_only", lambda_delay=0.25).lambda_at(0.9) == 0.0
    with pytest.raises(ConfigError):
        _task(lambda_delay=1.0)
