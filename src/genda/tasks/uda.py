"""Unsupervised domain adaptation on paired digit domains.

`UDATask` is one set of networks (feature extractor, label classifier, domain classifier)
trained in one of three modes: `source_only` and `target_only` (the course table's lower and
upper bounds) or `dann` (gradient reversal, Ganin & Lempitsky 2015). `ADDATask` is Tzeng et
al. 2017: pre-train a source encoder and classifier, then train a target encoder initialised
from it against a domain discriminator; the target is classified with the frozen source head.
Batches are {"source": {"image", "label"}, "target": {"image", "label"}}; target labels are
read only by `target_only` (and by validation). The losses live in `genda.tasks.uda_losses`, the
validation and t-SNE artefacts in `genda.tasks.uda_eval`; both are re-exported here.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from genda.errors import CheckpointError, ConfigError
from genda.kernel import load_checkpoint, load_module_state
from genda.models.dann import dann_lambda, encode, grad_reverse
from genda.targets import register_target
from genda.tasks.base import StepContext, Task
from genda.tasks.uda_eval import (
    DOMAINS,
    evaluate_uda,
    val_features,  # noqa: F401 - re-exported (its former home)
    write_feature_artifacts,
)
from genda.tasks.uda_losses import domain_loss, mcc_loss, pseudo_label_loss

_domain_loss = domain_loss  # its former name here (genda.tasks.dsn imports it)

MODES = ("source_only", "dann", "target_only")
LR_SCHEDULES = ("none", "anneal", "cosine_restarts")


def _head(head: nn.Module | Callable[..., nn.Module], in_features: int) -> nn.Module:
    """A head given built, or as a partial taking `in_features` (the extractor's output size)."""
    return head if isinstance(head, nn.Module) else head(in_features=in_features)


def annealed_lr(
    optimizer: torch.optim.Optimizer, max_steps: int, alpha: float, beta: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """The DANN paper's annealing μ_p = μ0 / (1 + α·p)^β with p = step / max_steps."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (1.0 + alpha * min(s, max_steps) / max_steps) ** -beta
    )


@register_target
class UDATask(Task):
    """Source-only, DANN or target-only with the same networks.

    The domain classifier always trains on the features of both domains; only in `dann` mode
    does its gradient reach the extractor (reversed, scaled by λ_p), so in the baselines it is a
    probe of how separable the domains are. Args: `features` (an extractor with `out_features`),
    `classifier`/`domain_classifier` (modules or partials taking `in_features`), `optimizer`
    (partial), `mode`, λ schedule (`lambda_max`, `gamma`), `lr_schedule` none|anneal (paper's
    α, β)|cosine_restarts (period `restart_steps`), `tsne_points` per domain.
    """

    # the report's roles (artifacts/index.json): the t-SNE figures of write_feature_artifacts
    ARTEFACTS = {"uda_tsne_class": ("tsne_class.png",), "uda_tsne_domain": ("tsne_domain.png",)}
    monitor = "target_acc"
    monitor_mode = "max"

    def __init__(
        self,
        features: nn.Module,
        classifier,
        domain_classifier,
        optimizer: Callable,
        mode: str = "dann",
        lambda_max: float = 1.0,
        gamma: float = 10.0,
        lr_schedule: str = "none",
        anneal_alpha: float = 10.0,
        anneal_beta: float = 0.75,
        tsne_points: int = 1000,
        restart_steps: int = 1000,
        lambda_delay: float = 0.0,
        mcc_weight: float = 0.0,
        mcc_temperature: float = 2.5,
        pseudo_weight: float = 0.0,
        pseudo_threshold: float = 0.95,
        name: str | None = None,
        source_ckpt: str | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"model.mode={mode!r}: use one of {', '.join(MODES)}")
        if lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"model.lr_schedule={lr_schedule!r}: use one of {', '.join(LR_SCHEDULES)}"
            )
        self.features = features
        self.classifier = _head(classifier, features.out_features)
        self.domain_classifier = _head(domain_classifier, features.out_features)
        self._optimizer, self.mode = optimizer, mode
        self.lambda_max, self.gamma = float(lambda_max), float(gamma)
        if not 0.0 <= float(lambda_delay) < 1.0:
            raise ConfigError(f"model.lambda_delay={lambda_delay}: a fraction of the steps in [0, 1)")
        self.lambda_delay = float(lambda_delay)
        self.lr_schedule, self.anneal = lr_schedule, (float(anneal_alpha), float(anneal_beta))
        if lr_schedule == "cosine_restarts" and int(restart_steps) < 1:
            raise ConfigError(f"model.restart_steps={restart_steps}: the cosine period in steps, at least 1")
        self.restart_steps = int(restart_steps)
        self.tsne_points = int(tsne_points)
        self.mcc_weight, self.mcc_temperature = float(mcc_weight), float(mcc_temperature)
        self.pseudo_weight, self.pseudo_threshold = float(pseudo_weight), float(pseudo_threshold)
        if self.mcc_temperature <= 0:
            raise ConfigError(f"model.mcc_temperature={mcc_temperature}: must be > 0")
        if not 0.0 < self.pseudo_threshold <= 1.0:
            raise ConfigError(f"model.pseudo_threshold={pseudo_threshold}: use a value in (0, 1]")
        if mode == "target_only" and (self.mcc_weight or self.pseudo_weight):
            raise ConfigError("model.mcc_weight / model.pseudo_weight are target-side UDA losses: "
                              "not with model.mode=target_only")
        self._name = name
        self.source_ckpt = str(source_ckpt) if source_ckpt else None

    def load_initial_weights(self) -> None:
        """With `source_ckpt`: start from a source-only run's extractor and label head (the
        domain classifier too, trained there as a probe), e.g. DANN + MCC fine-tuning it."""
        if self.source_ckpt:
            load_source_model(self.features, self.classifier, self.source_ckpt, self.domain_classifier)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": self._optimizer(self.parameters())}

    def configure_schedulers(self, optimizers, max_steps):
        if self.lr_schedule == "none":
            return {}
        if self.lr_schedule == "cosine_restarts":  # cosine from lr to 0 over restart_steps, then again
            return {"net": torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizers["net"], self.restart_steps)}
        return {"net": annealed_lr(optimizers["net"], max_steps, *self.anneal)}

    @property
    def method(self) -> str:
        """The method's name in eval.json and plot titles (subclasses such as DSN override it); a
        run started from a source-only run says so ('dann (from source only)')."""
        if self._name:
            return self._name
        extras = [n for n, w in (("mcc", self.mcc_weight), ("pseudo", self.pseudo_weight)) if w]
        name = "+".join([self.mode, *extras])
        return f"{name} (from source only)" if self.source_ckpt else name

    def extract(self, xs: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """Features of the source then the target batch, (len(xs) + len(xt), D): one pass over
        both (shared BN statistics), or one pass per domain with domain-specific BN."""
        if getattr(self.features, "domain_specific", False):
            return torch.cat([self.features(xs, 0), self.features(xt, 1)])
        return self.features(torch.cat([xs, xt]))

    def lambda_at(self, progress: float) -> float:
        """Gradient-reversal coefficient at training progress p (0 outside `dann` mode). With
        `lambda_delay` d the reversal is off for the first fraction d of the steps (the label
        classifier learns first) and the paper's schedule runs over the rest: p' = (p - d) / (1 - d)."""
        if self.mode != "dann" or progress < self.lambda_delay:
            return 0.0
        p = (progress - self.lambda_delay) / (1.0 - self.lambda_delay)
        return dann_lambda(p, self.lambda_max, self.gamma)

    def training_step(self, batch: dict, ctx: StepContext) -> dict:
        src, tgt = batch["source"], batch["target"]
        n = len(src["image"])
        f = self.extract(src["image"], tgt["image"])
        labelled, y = (f[n:], tgt["label"]) if self.mode == "target_only" else (f[:n], src["label"])
        logits = self.classifier(labelled)
        cls_loss = F.cross_entropy(logits, y)
        lam = self.lambda_at(ctx.progress)
        dom_loss, dom_acc = domain_loss(self.domain_classifier(grad_reverse(f, lam)), n)
        loss, logs = cls_loss + dom_loss, {}
        if self.mcc_weight or self.pseudo_weight:
            target_logits = self.classifier(f[n:])
            if self.mcc_weight:
                logs["mcc_loss"] = mcc_loss(target_logits, self.mcc_temperature)
                loss = loss + self.mcc_weight * logs["mcc_loss"]
            if self.pseudo_weight:
                logs["pseudo_loss"], logs["pseudo_frac"] = pseudo_label_loss(
                    target_logits, self.pseudo_threshold)
                loss = loss + self.pseudo_weight * ctx.progress * logs["pseudo_loss"]
        ctx.update("net", loss)
        return {
            "cls_loss": cls_loss,
            "domain_loss": dom_loss,
            "domain_acc": dom_acc,
            "acc": (logits.argmax(1) == y).float().mean(),
            "lambda": lam,
            **logs,
        }

    def _evaluate(self, ctx: StepContext):
        return evaluate_uda(ctx, self.features, self.features, self.classifier, self.domain_classifier)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class indices (N,) of preprocessed target images (`python -m genda.predict`): extractor
        + label head, the path `validate` scores the target with (eval mode: BN running stats)."""
        return self.classifier(encode(self.features, images, DOMAINS["target"])).argmax(1)

    @torch.no_grad()
    def validate(self, ctx: StepContext) -> dict[str, float]:
        return self._evaluate(ctx)[0]

    @torch.no_grad()
    def finalize(self, ctx: StepContext) -> dict[str, float]:
        metrics, feats = self._evaluate(ctx)
        write_feature_artifacts(ctx, *feats, self.tsne_points, title=self.method)
        ctx.out.json("eval", {**metrics, "method": self.method, "data": ctx.data.info})
        return metrics

    def summaries(self) -> dict[str, str]:
        from genda.viz.summary import summarize

        d = self.features.out_features
        return {
            "features": summarize(self.features, (1, 3, 28, 28)),
            "classifier": summarize(self.classifier, (1, d)),
            "domain_classifier": summarize(self.domain_classifier, (1, d)),
        }


def load_source_model(encoder: nn.Module, classifier: nn.Module, path: str,
                      domain_classifier: nn.Module | None = None) -> None:
    """A source model from another run (ADDA's phase 1, or where a UDATask starts): the feature
    extractor and label head (and domain classifier, when asked for and present) of a `UDATask` run
    (a `dann_<src>_<tgt>` run with `model.mode=source_only`: its run dir, which reads
    checkpoints/last.ckpt, or a `.ckpt`) or the source encoder and head of an ADDA run. Only
    tensors are read (genda.kernel's loader); a missing file or a network that does not fit is one
    CheckpointError naming `model.source_ckpt`."""
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        raise CheckpointError(f"model.source_ckpt: {e}") from None
    modules = ckpt.get("modules") or {}
    name = next((k for k in ("features", "source_encoder") if k in modules), None)
    if name is None or "classifier" not in modules:
        raise CheckpointError(f"model.source_ckpt: {path} holds no source model (networks "
                              f"{sorted(modules)}; expected a dann_* source-only or an ADDA run)")
    load_module_state(encoder, modules[name], name, f"model.source_ckpt {path}")
    load_module_state(classifier, modules["classifier"], "classifier", f"model.source_ckpt {path}")
    if domain_classifier is not None and "domain_classifier" in modules:
        load_module_state(domain_classifier, modules["domain_classifier"], "domain_classifier",
                          f"model.source_ckpt {path}")


@register_target
class ADDATask(Task):
    """ADDA: phase 1 (first `pretrain_fraction` of the steps) trains `encoder` + `classifier` on
    source labels; phase 2 copies the source encoder into the target encoder and trains it to
    fool `discriminator` (GAN loss with inverted labels). Source encoder and classifier are
    frozen in phase 2; the target is classified by classifier(target_encoder(x)).

    With `source_ckpt` (a source-only run of the same networks, see `load_source_model`) phase 1
    is that run: every step is phase 2, and the adaptation starts from exactly the model the
    source-only column reports (the report shares its source-only runs this way, seed by seed)."""

    ARTEFACTS = UDATask.ARTEFACTS  # the same t-SNE figures (write_feature_artifacts)
    monitor = "target_acc"
    monitor_mode = "max"

    def __init__(
        self,
        encoder: nn.Module,
        classifier,
        discriminator,
        optimizer: Callable,
        adversarial_optimizer: Callable,
        pretrain_fraction: float = 0.5,
        tsne_points: int = 1000,
        target_lr: float | None = None,
        source_ckpt: str | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 < pretrain_fraction < 1.0:
            raise ConfigError(f"model.pretrain_fraction={pretrain_fraction}: use a value in (0, 1)")
        if target_lr is not None and not float(target_lr) > 0.0:
            raise ConfigError(f"model.target_lr={target_lr}: use a positive learning rate, or null")
        self.target_lr = None if target_lr is None else float(target_lr)
        self.source_encoder = encoder
        self.target_encoder = copy.deepcopy(encoder)
        self.classifier = _head(classifier, encoder.out_features)
        self.discriminator = _head(discriminator, encoder.out_features)
        self._opt, self._adv_opt = optimizer, adversarial_optimizer
        self.pretrain_fraction, self.tsne_points = float(pretrain_fraction), int(tsne_points)
        self.source_ckpt = str(source_ckpt) if source_ckpt else None

    def load_initial_weights(self) -> None:
        if self.source_ckpt:
            load_source_model(self.source_encoder, self.classifier, self.source_ckpt)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        src = itertools.chain(self.source_encoder.parameters(), self.classifier.parameters())
        return {
            "source": self._opt(src),
            "target": self._adv_opt(self.target_encoder.parameters(),
                                    **({} if self.target_lr is None else {"lr": self.target_lr})),
            "discriminator": self._adv_opt(self.discriminator.parameters()),
        }

    def switch_step(self, max_steps: int) -> int:
        """First step of phase 2 (the step count finished before it): 0 with a `source_ckpt`
        (phase 1 was the source-only run), else `pretrain_fraction` of the steps."""
        if self.source_ckpt:
            return 0
        return max(1, min(max_steps - 1, round(self.pretrain_fraction * max_steps)))

    def adapted(self, ctx: StepContext) -> bool:
        """Whether the target encoder has been initialised and trained (phase 2 has begun)."""
        return ctx.step > self.switch_step(ctx.max_steps)

    @torch.no_grad()
    def init_target_encoder(self) -> None:
        """Copy the source encoder's parameters and buffers into the target encoder."""
        pairs = itertools.chain(
            zip(self.target_encoder.parameters(), self.source_encoder.parameters(), strict=True),
            zip(self.target_encoder.buffers(), self.source_encoder.buffers(), strict=True),
        )
        for t, s in pairs:
            t.copy_(s)

    def training_step(self, batch: dict, ctx: StepContext) -> dict:
        switch = self.switch_step(ctx.max_steps)
        if ctx.step < switch:
            return self._pretrain_step(batch["source"], ctx)
        if ctx.step == switch:
            self.init_target_encoder()
        return self._adapt_step(batch, ctx)

    def _pretrain_step(self, src: dict, ctx: StepContext) -> dict:
        logits = self.classifier(self.source_encoder(src["image"]))
        loss = F.cross_entropy(logits, src["label"])
        ctx.update("source", loss)
        return {
            "cls_loss": loss,
            "acc": (logits.argmax(1) == src["label"]).float().mean(),
            "phase": 1,
        }

    def _adapt_step(self, batch: dict, ctx: StepContext) -> dict:
        self.source_encoder.eval()  # frozen: no dropout, no BN statistics updates
        with torch.no_grad():
            fs = self.source_encoder(batch["source"]["image"])
        ft = self.target_encoder(batch["target"]["image"])
        d_loss, d_acc = domain_loss(self.discriminator(torch.cat([fs, ft.detach()])), len(fs))
        ctx.update("discriminator", d_loss)
        g_loss = F.binary_cross_entropy_with_logits(
            self.discriminator(ft), torch.zeros(len(ft), device=ft.device)
        )
        ctx.update("target", g_loss)
        return {"domain_loss": d_loss, "domain_acc": d_acc, "target_loss": g_loss, "phase": 2}

    def _evaluate(self, ctx: StepContext):
        target_encoder = self.target_encoder if self.adapted(ctx) else self.source_encoder
        return evaluate_uda(ctx, self.source_encoder, target_encoder, self.classifier, self.discriminator)

    _loaded_adapted: bool | None = None  # set by on_load; None: classify with the target encoder

    def on_load(self, step: int, max_steps: int) -> None:
        """Called by `genda.runs.load_run` with the checkpoint's step: weights saved in phase 1
        (e.g. a best.ckpt from before the switch) classify the target with the source encoder, as
        their validation did; the target encoder was not trained yet."""
        self._loaded_adapted = step > self.switch_step(max_steps)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class indices (N,) of preprocessed target images (`python -m genda.predict`): target
        encoder + the frozen source classifier, as `validate` scores the target."""
        encoder = self.source_encoder if self._loaded_adapted is False else self.target_encoder
        return self.classifier(encoder(images)).argmax(1)

    @torch.no_grad()
    def validate(self, ctx: StepContext) -> dict[str, float]:
        return self._evaluate(ctx)[0]

    @torch.no_grad()
    def finalize(self, ctx: StepContext) -> dict[str, float]:
        metrics, feats = self._evaluate(ctx)
        write_feature_artifacts(ctx, *feats, self.tsne_points, title="adda")
        ctx.out.json("eval", {**metrics, "method": "adda", "data": ctx.data.info})
        return metrics

    def summaries(self) -> dict[str, str]:
        from genda.viz.summary import summarize

        d = self.source_encoder.out_features
        return {
            "encoder": summarize(self.source_encoder, (1, 3, 28, 28)),
            "classifier": summarize(self.classifier, (1, d)),
            "discriminator": summarize(self.discriminator, (1, d)),
        }
