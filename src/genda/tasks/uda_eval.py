"""The UDA tasks' validation and final artefacts: val features of both domains, target/source
accuracy and the balanced domain accuracy, and `features.npz` with the two t-SNE pictures.
`genda.tasks.uda` re-exports them."""

from __future__ import annotations

import torch
from torch import nn

from genda.models.dann import encode
from genda.tasks.base import StepContext

DOMAINS = {"source": 0, "target": 1}  # the branch of a domain-specific BN extractor


def _balanced_domain_acc(disc: nn.Module, fs: torch.Tensor, ft: torch.Tensor) -> float:
    """Mean of per-domain accuracies of a domain classifier (0.5 = chance, whatever the sizes)."""
    return 0.5 * (float((disc(fs) <= 0).float().mean()) + float((disc(ft) > 0).float().mean()))


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


@torch.no_grad()
def val_features(
    ctx: StepContext, encoder: nn.Module, domain: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) and labels (N,) of a domain's whole val split."""
    feats, labels = [], []
    for b in ctx.batches("val", domain=domain):
        feats.append(encode(encoder, b["image"], DOMAINS[domain]).float())
        labels.append(b["label"])
    return torch.cat(feats), torch.cat(labels)


def evaluate_uda(ctx: StepContext, source_encoder: nn.Module, target_encoder: nn.Module,
                 classifier: nn.Module, discriminator: nn.Module):
    """Target/source val accuracy and balanced domain accuracy (0.5 = chance), plus the features."""
    fs, ys = val_features(ctx, source_encoder, "source")
    ft, yt = val_features(ctx, target_encoder, "target")
    metrics = {
        "target_acc": _accuracy(classifier(ft), yt),
        "source_acc": _accuracy(classifier(fs), ys),
        "domain_acc": _balanced_domain_acc(discriminator, fs, ft),
    }
    return metrics, (fs, ys, ft, yt)


def write_feature_artifacts(
    ctx: StepContext,
    fs: torch.Tensor,
    ys: torch.Tensor,
    ft: torch.Tensor,
    yt: torch.Tensor,
    points: int,
    title: str,
) -> None:
    """Save subsampled val features of both domains (`features.npz`) and the two t-SNE PNGs."""
    from genda.viz.tsne import subsample, write_tsne

    i_s = torch.as_tensor(subsample(len(fs), points, seed=0), device=fs.device)
    i_t = torch.as_tensor(subsample(len(ft), points, seed=1), device=ft.device)
    fs, ys, ft, yt = fs[i_s], ys[i_s], ft[i_t], yt[i_t]
    ctx.out.arrays(
        "features", source_features=fs, source_labels=ys, target_features=ft, target_labels=yt
    )
    if not getattr(ctx.out, "enabled", True):  # artefacts are written by rank 0 only
        return
    src = getattr(ctx.data.source, "domain_name", "source")
    tgt = getattr(ctx.data.target, "domain_name", "target")
    domains = torch.cat([torch.zeros(len(fs)), torch.ones(len(ft))]).long()
    write_tsne(
        torch.cat([fs, ft]),
        torch.cat([ys, yt]),
        domains,
        ctx.out.path("tsne_class.png"),
        ctx.out.path("tsne_domain.png"),
        domain_names=[f"{src} (source)", f"{tgt} (target)"],
        max_points=None,
        title=f"{title}: {src} → {tgt}",
    )
    ctx.out.log_figure("tsne/class", ctx.out.path("tsne_class.png"))
    ctx.out.log_figure("tsne/domain", ctx.out.path("tsne_domain.png"))
