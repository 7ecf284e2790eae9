"""Domain Separation Networks (Bousmalis, Trigeorgis, Silberman, Krishnan & Erhan, "Domain
Separation Networks", NeurIPS 2016), the DSN-DANN variant, on paired digit domains."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from genda.errors import ConfigError
from genda.models.dann import grad_reverse
from genda.models.dsn import difference_loss, scale_invariant_mse
from genda.targets import register_target
from genda.tasks.base import StepContext
from genda.tasks.uda import UDATask, _domain_loss, _head


def _fresh_copy(net: nn.Module) -> nn.Module:
    """A copy of `net` with its own, newly initialised parameters (and reset BN statistics)."""
    net = copy.deepcopy(net)
    for m in net.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return net


def _private(private: nn.Module | Callable[[], nn.Module] | None, shared: nn.Module) -> nn.Module:
    """One private encoder: built from a partial, or a re-initialised copy of the module given
    (the shared encoder's architecture when None)."""
    if private is None or isinstance(private, nn.Module):
        return _fresh_copy(shared if private is None else private)
    return private()


@register_target
class DSNTask(UDATask):
    """DSN (Bousmalis et al., NeurIPS 2016) with the DANN similarity loss (their DSN-DANN).

    Networks: the shared encoder E_c (`features`, the DANN CNN), a private encoder per domain
    (E_p^s, E_p^t: `private_features`, same architecture as E_c with their own weights by
    default), a shared decoder D reconstructing x from E_c(x) + E_p(x) (`decoder`), the label
    classifier on shared source codes, and the domain classifier on shared codes of both domains
    behind the gradient reversal layer. One optimiser minimises

        L = L_task + α·L_recon + β·L_difference + γ·L_similarity

    - L_task: cross-entropy of the source labels (target labels are never read in training).
    - L_recon: scale-invariant MSE (`genda.models.dsn.scale_invariant_mse`) of source and of
      target images, summed over the two domains.
    - L_difference: ||H_cᵀ H_p||_F² of the batch's shared and private codes, each centred per
      feature and L2-normalised per row as in the official implementation
      (`genda.models.dsn.difference_loss`), summed over the two domains.
    - L_similarity: the domain classifier's BCE on shared codes; the reversal layer's weight
      follows DANN's λ_p schedule (`lambda_max`, `gamma`), so E_c maximises it while the domain
      classifier minimises it.

    Weights: α = `recon_weight` (0.1), β = `difference_weight` (0.05), γ = `similarity_weight`
    (0.25), within the paper's MNIST → MNIST-M ranges (α 0.01–0.1, β 0.05–0.075, γ 0.25). β
    multiplies the Frobenius *sum* (up to B² for a batch of B), not the official code's mean over
    the D_c·D_p entries, so it acts about D_c·D_p times more strongly than there.

    Other arguments are `UDATask`'s (λ schedule `lambda_max`, `gamma`; `lr_schedule` and its
    settings; `tsne_points`); `recon_images` per domain go into `reconstructions.png`.

    The target is classified as in DANN: label classifier on the shared encoder (`predict`,
    `validate`); `finalize` also writes `reconstructions.png` (per domain: input, D(E_c + E_p),
    D(E_c), D(E_p) rows).
    """

    method = "dsn"

    def __init__(
        self,
        features: nn.Module,
        classifier,
        domain_classifier,
        decoder,
        optimizer: Callable,
        private_features: nn.Module | Callable[[], nn.Module] | None = None,
        recon_weight: float = 0.1,
        difference_weight: float = 0.05,
        similarity_weight: float = 0.25,
        recon_images: int = 8,
        **uda_kwargs,
    ) -> None:
        if "mode" in uda_kwargs:
            raise ConfigError("model.mode: DSN has no modes (it always adapts through the GRL)")
        super().__init__(
            features, classifier, domain_classifier, optimizer, mode="dann", **uda_kwargs
        )
        weights = {
            "recon_weight": recon_weight,
            "difference_weight": difference_weight,
            "similarity_weight": similarity_weight,
        }
        for name, w in weights.items():
            if float(w) < 0:
                raise ConfigError(f"model.{name}={w}: use a weight >= 0")
        self.alpha, self.beta, self.gamma_sim = (float(w) for w in weights.values())
        self.source_private = _private(private_features, features)
        self.target_private = _private(private_features, features)
        for name in ("source_private", "target_private"):
            d = getattr(getattr(self, name), "out_features", None)
            if d != features.out_features:
                raise ConfigError(
                    f"model.private_features: out_features {d} must equal the shared encoder's "
                    f"{features.out_features} (the decoder reads their sum)"
                )
        self.decoder = _head(decoder, features.out_features)
        self.recon_images = int(recon_images)

    def reconstruct(self, images: torch.Tensor, domain: str, part: str = "both") -> torch.Tensor:
        """D(E_c(x) + E_p(x)) for `domain` 'source' | 'target'; part 'shared' or 'private'
        decodes that code alone (the paper's Figure 2)."""
        private = self.source_private if domain == "source" else self.target_private
        code = {
            "both": lambda: self.features(images) + private(images),
            "shared": lambda: self.features(images),
            "private": lambda: private(images),
        }[part]()
        return self.decoder(code)

    def training_step(self, batch: dict, ctx: StepContext) -> dict:
        src, tgt = batch["source"], batch["target"]
        xs, xt, n = src["image"], tgt["image"], len(src["image"])
        hc = self.features(torch.cat([xs, xt]))  # one pass: BN sees both domains, as in DANN
        hc_s, hc_t = hc[:n], hc[n:]
        hp_s, hp_t = self.source_private(xs), self.target_private(xt)

        logits = self.classifier(hc_s)
        cls_loss = F.cross_entropy(logits, src["label"])
        lam = self.lambda_at(ctx.progress)
        sim_loss, dom_acc = _domain_loss(self.domain_classifier(grad_reverse(hc, lam)), n)
        recon = self.decoder(hc + torch.cat([hp_s, hp_t]))
        recon_loss = scale_invariant_mse(xs, recon[:n]) + scale_invariant_mse(xt, recon[n:])
        diff_loss = difference_loss(hc_s, hp_s) + difference_loss(hc_t, hp_t)
        loss = (
            cls_loss + self.alpha * recon_loss + self.beta * diff_loss + self.gamma_sim * sim_loss
        )
        ctx.update("net", loss)
        return {
            "loss": loss,
            "cls_loss": cls_loss,
            "domain_loss": sim_loss,
            "domain_acc": dom_acc,
            "recon_loss": recon_loss,
            "difference_loss": diff_loss,
            "acc": (logits.argmax(1) == src["label"]).float().mean(),
            "lambda": lam,
        }

    @torch.no_grad()
    def finalize(self, ctx: StepContext) -> dict[str, float]:
        metrics = super().finalize(ctx)
        if self.recon_images > 0 and getattr(ctx.out, "enabled", True):
            xs = {
                d: next(iter(ctx.batches("val", domain=d)))["image"] for d in ("source", "target")
            }
            k = min(self.recon_images, *(len(x) for x in xs.values()))
            rows = []
            for domain, x in xs.items():
                x = x[:k]
                rows += [x] + [
                    self.reconstruct(x, domain, p) for p in ("both", "shared", "private")
                ]
            ctx.out.grid("reconstructions", torch.cat(rows).float(), nrow=k)
        return metrics

    def summaries(self) -> dict[str, str]:
        from genda.viz.summary import summarize

        return {
            **super().summaries(),
            "private_features": summarize(self.source_private, (1, 3, 28, 28)),
            "decoder": summarize(self.decoder, (1, self.features.out_features)),
        }
