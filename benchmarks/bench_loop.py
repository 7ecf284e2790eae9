"""Loop overhead: images/s of genda's Trainer against a plain hand-written PyTorch loop with the
same networks, batch, optimiser and in-memory data, for a DCGAN, a DDPM UNet and a DANN step.

genda runs at the experiment's `scale=cpu` trainer defaults (metrics.jsonl + W&B offline, EMA,
progress bar, checkpoint cadence); validation/sampling never fire within the timed steps and the
end-of-run `finalize` (evaluation, not loop) is skipped. Checkpoints are amortised: each side's
measured save time x steps / trainer.checkpoint_every. The plain step builders here are also
used by bench_knobs and bench_scaling."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from benchmarks.common import Comparison, compare, default_device, sync
from genda.config import CONF_DIR


@dataclass(frozen=True)
class Knobs:
    """Speed switches applied to a plain step (the equivalents of trainer.channels_last,
    trainer.precision=bf16-mixed and trainer.compile)."""

    channels_last: bool = False
    bf16: bool = False
    compile: bool = False


@dataclass
class Plain:
    """A hand-written training step: `step()` runs one update; `state()` is what a plain loop
    would checkpoint; `images` per step (source + target for DANN)."""

    step: Callable[[], None]
    state: Callable[[], dict]
    images: int


@dataclass(frozen=True)
class Kind:
    """One benchmarked step: the genda experiment it comes from and its plain twin."""

    name: str
    experiment: str
    task_module: str
    batch_key: str
    plain: Callable[[DictConfig, torch.device, Knobs], Plain]
    domains: int = 1  # images per step = batch x domains
    limit_key: str = "data.limit_train"

    def overrides(self, steps: int, batch: int | None, limit: int = 4096) -> list[str]:
        """Steps, batch (None: the experiment's cpu-scale batch) and a cap on training images
        (loading 60k digits per call would dominate the benchmark's wall time)."""
        return [f"trainer.max_steps={steps}", f"{self.limit_key}={limit}"] + (
            [f"{self.batch_key}={batch}"] if batch else []
        )

    def images(self, cfg: DictConfig) -> int:
        return int(OmegaConf.select(cfg, self.batch_key)) * self.domains

    def ready(self) -> bool:
        """The task and the experiment config exist (other engineers may still be writing them)."""
        return (
            importlib.util.find_spec(self.task_module) is not None
            and (CONF_DIR / "experiment" / f"{self.experiment}.yaml").is_file()
        )


def compose(experiment: str, overrides: list[str]) -> DictConfig:
    """The experiment's config at scale=cpu (trainer defaults untouched) plus `overrides`."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(
            "config",
            overrides=[f"experiment={experiment}", "scale=cpu", "trainer.resume=null", *overrides],
        )


# -- plain steps --------------------------------------------------------------------------
def _stream(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    batch: int,
    device: torch.device,
    channels_last: bool,
    seed: int = 0,
) -> Callable[[], tuple[torch.Tensor, torch.Tensor | None]]:
    """Shuffled batches from in-memory uint8 (N, C, H, W): float in [-1, 1] on `device`."""
    gen, order, pos = torch.Generator().manual_seed(seed), torch.empty(0, dtype=torch.long), 0

    def next_batch() -> tuple[torch.Tensor, torch.Tensor | None]:
        nonlocal order, pos
        if pos + batch > len(order):
            order, pos = torch.randperm(len(images), generator=gen), 0
        idx = order[pos : pos + batch]
        pos += batch
        x = (images[idx].float() / 127.5 - 1.0).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, None if labels is None else labels[idx].to(device)

    return next_batch


def _prep(net: nn.Module, device: torch.device, knobs: Knobs) -> tuple[nn.Module, nn.Module]:
    """(raw, callable) network on device; channels_last and/or torch.compile as asked."""
    net = net.to(device)
    if knobs.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net, torch.compile(net) if knobs.compile else net


def _autocast(device: torch.device, knobs: Knobs) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=knobs.bf16)


def _train_split(cfg_data: DictConfig, which: str | None = None):
    data = instantiate(cfg_data)
    return (getattr(data, which) if which else data).split("train")


def plain_gan(cfg: DictConfig, device: torch.device, knobs: Knobs) -> Plain:
    """The course DCGAN step (non-saturating BCE): D on real + detached fake, then G."""
    m = cfg.model
    g, gc = _prep(instantiate(m.generator), device, knobs)
    d, dc = _prep(instantiate(m.discriminator), device, knobs)
    og, od = instantiate(m.g_optimizer)(g.parameters()), instantiate(m.d_optimizer)(d.parameters())
    split = _train_split(cfg.data)
    batch = _stream(split.images, None, int(cfg.data.batch_size), device, knobs.channels_last)
    nz = int(m.generator.nz)

    def step() -> None:
        real, _ = batch()
        ones, zeros = torch.ones(len(real), device=device), torch.zeros(len(real), device=device)
        with _autocast(device, knobs):
            fake = gc(torch.randn(len(real), nz, device=device))
            d_loss = F.binary_cross_entropy_with_logits(
                dc(real).float(), ones
            ) + F.binary_cross_entropy_with_logits(dc(fake.detach()).float(), zeros)
        od.zero_grad(set_to_none=True)
        d_loss.backward()
        od.step()
        with _autocast(device, knobs):
            g_loss = F.binary_cross_entropy_with_logits(dc(fake).float(), ones)
        og.zero_grad(set_to_none=True)
        g_loss.backward()
        og.step()

    def state():
        return {
            "g": g.state_dict(),
            "d": d.state_dict(),
            "og": og.state_dict(),
            "od": od.state_dict(),
        }

    return Plain(step, state, int(cfg.data.batch_size))


def plain_ddpm(cfg: DictConfig, device: torch.device, knobs: Knobs) -> Plain:
    """Class-conditional DDPM step: t ~ U{0..T-1}, x_t = sqrt(ab) x0 + sqrt(1-ab) eps, MSE on eps;
    labels replaced by the null class with probability p_uncond (classifier-free guidance);
    cosine LR decay when the model config asks for it."""
    m = cfg.model
    net, netc = _prep(instantiate(m.net), device, knobs)
    from genda.diffusion.schedules import make_betas

    opt = instantiate(m.optimizer)(net.parameters())
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(cfg.trainer.max_steps))
        if m.get("lr_schedule") == "cosine"
        else None
    )
    ab = torch.cumprod(1 - make_betas(**m.schedule).double(), 0).float().to(device)
    p_uncond, null = float(m.get("p_uncond", 0.1)), int(m.net.num_classes)
    split = _train_split(cfg.data)
    batch = _stream(
        split.images, split.labels, int(cfg.data.batch_size), device, knobs.channels_last
    )

    def step() -> None:
        x0, y = batch()
        t = torch.randint(0, len(ab), (len(x0),), device=device)
        y = torch.where(torch.rand(len(y), device=device) < p_uncond, torch.full_like(y, null), y)
        eps = torch.randn_like(x0)
        a = ab[t].view(-1, 1, 1, 1)
        with _autocast(device, knobs):
            loss = F.mse_loss(netc(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, y).float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()

    return Plain(
        step, lambda: {"net": net.state_dict(), "opt": opt.state_dict()}, int(cfg.data.batch_size)
    )


def plain_dann(cfg: DictConfig, device: torch.device, knobs: Knobs) -> Plain:
    """DANN step: CE on source labels + domain BCE through gradient reversal, lambda_p schedule."""
    from genda.models.dann import dann_lambda, grad_reverse

    m = cfg.model
    feat, featc = _prep(instantiate(m.features), device, knobs)
    cls, clsc = _prep(instantiate(m.classifier)(in_features=feat.out_features), device, knobs)
    dom, domc = _prep(
        instantiate(m.domain_classifier)(in_features=feat.out_features), device, knobs
    )
    opt = instantiate(m.optimizer)([p for n in (feat, cls, dom) for p in n.parameters()])
    bs = int(cfg.data.source.batch_size)
    src_split, tgt_split = _train_split(cfg.data, "source"), _train_split(cfg.data, "target")
    src = _stream(src_split.images, src_split.labels, bs, device, knobs.channels_last, seed=0)
    tgt = _stream(tgt_split.images, None, bs, device, knobs.channels_last, seed=1)
    domain = torch.cat([torch.zeros(bs), torch.ones(bs)]).to(device)
    max_steps, done = int(cfg.trainer.max_steps), 0

    def step() -> None:
        nonlocal done
        (xs, ys), (xt, _) = src(), tgt()
        lam = dann_lambda(min(1.0, done / max_steps), float(m.lambda_max), float(m.gamma))
        with _autocast(device, knobs):
            f = featc(torch.cat([xs, xt]))
            cls_loss = F.cross_entropy(clsc(f[:bs]).float(), ys)
            dom_loss = F.binary_cross_entropy_with_logits(
                domc(grad_reverse(f, lam)).float(), domain
            )
        opt.zero_grad(set_to_none=True)
        (cls_loss + dom_loss).backward()
        opt.step()
        done += 1

    def state():
        return {
            "f": feat.state_dict(),
            "c": cls.state_dict(),
            "d": dom.state_dict(),
            "o": opt.state_dict(),
        }

    return Plain(step, state, 2 * bs)


KINDS = {
    "dcgan": Kind("dcgan", "dcgan_a", "genda.tasks.gan", "data.batch_size", plain_gan),
    "ddpm": Kind("ddpm", "ddpm_digits", "genda.tasks.diffusion", "data.batch_size", plain_ddpm),
    "dann": Kind(
        "dann",
        "dann_mnist_mnistm",
        "genda.tasks.uda",
        "data.source.batch_size",
        plain_dann,
        2,
        "data.source.limit_train",
    ),
}


# -- the two sides --------------------------------------------------------------------------
def _save_seconds(state: dict, folder: Path) -> float:
    """Seconds of one plain torch.save of `state` (what a hand-written loop checkpoints)."""
    t0 = time.perf_counter()
    torch.save(state, folder / "plain.pt")
    return time.perf_counter() - t0


def _steady(stamps: list[float], end: float) -> list[float]:
    """Durations of steps 2..N from the start time of each step and the end of the last."""
    return [b - a for a, b in zip(stamps[1:], [*stamps[2:], end], strict=True)]


def plain_side(
    kind: Kind, cfg: DictConfig, steps: int, device: torch.device, stats: list
) -> Callable[[], float]:
    """fn() -> seconds of steps 2..N of a plain loop (fresh nets each call) plus its checkpoint
    (one torch.save) amortised at trainer.checkpoint_every. The plain loop uses the experiment's
    own trainer.channels_last, so both sides run the same memory format."""
    every = int(cfg.trainer.checkpoint_every or 0)
    knobs = Knobs(channels_last=bool(cfg.trainer.get("channels_last", False)))

    def run() -> float:
        plain, stamps = kind.plain(cfg, device, knobs), []
        for _ in range(steps):
            sync(device)
            stamps.append(time.perf_counter())
            plain.step()
        sync(device)
        durations = _steady(stamps, time.perf_counter())
        with tempfile.TemporaryDirectory() as tmp:
            save = _save_seconds(plain.state(), Path(tmp))
        stats.append({"step_s": sum(durations) / len(durations), "save_s": save})
        return sum(durations) + (save * len(durations) / every if every else 0.0)

    return run


def _stamped_trainer(cfg: DictConfig, run_dir: str):
    """A genda Trainer that stamps the start of every training step and the end of the step loop
    (the final save), skips finalize, and times its saves."""
    from genda.train.loop import Trainer

    class Stamped(Trainer):
        def _build(self) -> None:
            super()._build()
            self.stamps, self.saves, self.loop_end = [], [], None
            step_fn, device = self.task.training_step, self.fabric.device

            def stamped(batch: dict, ctx) -> dict:
                sync(device)
                self.stamps.append(time.perf_counter())
                return step_fn(batch, ctx)

            self.task.training_step = stamped
            self.task.finalize = lambda ctx: {}  # end-of-run evaluation is not loop overhead

        def save(self, which: str = "last") -> Path:
            sync(self.fabric.device)
            self.loop_end = t0 = time.perf_counter()
            path = super().save(which)
            self.saves.append(time.perf_counter() - t0)
            return path

    return Stamped(cfg, run_dir)


def genda_side(cfg: DictConfig, steps: int, stats: list) -> Callable[[], float]:
    """fn() -> seconds of steps 2..N of genda's Trainer at its default cadence: the last step's
    log write amortised over trainer.log_every steps, a save over trainer.checkpoint_every."""
    every, log_every = int(cfg.trainer.checkpoint_every or 0), int(cfg.trainer.log_every)
    if not 3 <= steps <= log_every:
        raise ValueError(
            f"loop bench needs 3 <= steps <= trainer.log_every ({log_every}), got {steps}"
        )

    def run() -> float:
        t0 = time.perf_counter()
        with (
            tempfile.TemporaryDirectory() as tmp,
            open(os.devnull, "w") as null,
            contextlib.redirect_stderr(null),
        ):  # the progress bar still draws, to /dev/null
            trainer = _stamped_trainer(cfg, tmp)
            trainer.fit()
        total = time.perf_counter() - t0
        # the loop's defaults (deterministic, no NaN-fill of torch.empty): put torch's back for
        # the plain side
        torch.use_deterministic_algorithms(False)
        torch.utils.deterministic.fill_uninitialized_memory = True
        durations = _steady(trainer.stamps, trainer.loop_end)
        base = sum(durations[:-1]) / len(durations[:-1])  # steps without a log write
        log = max(0.0, durations[-1] - base)  # the last step writes metrics.jsonl (+ W&B)
        save = trainer.saves[-1]
        stats.append(
            {
                "step_s": base,
                "log_s": log,
                "save_s": save,
                "fixed_s": total - (trainer.loop_end - trainer.stamps[0]) - save,
            }
        )
        n = len(durations)
        return n * base + n * log / log_every + (save * n / every if every else 0.0)

    return run


def sizes(quick: bool) -> dict[str, tuple[int, int | None]]:
    """(steps per timed call, batch override or None for the experiment's cpu-scale batch)."""
    if quick:
        return {"dcgan": (3, 4), "ddpm": (3, 4), "dann": (3, 8)}
    return {"dcgan": (12, None), "ddpm": (8, None), "dann": (30, None)}


def bench_kind(kind: Kind, steps: int, batch: int | None, repeats: int, warmup: int) -> Comparison:
    """genda (A) vs plain (B) for one step kind; notes hold steady-state and save times."""
    cfg = compose(kind.experiment, kind.overrides(steps, batch))
    g_stats, p_stats = [], []
    device = default_device()
    images = steps * kind.images(cfg)
    row = compare(
        "loop",
        f"{kind.name} train step ({kind.experiment}, {images // steps} img/step, {steps} steps)",
        ("genda Trainer", genda_side(cfg, steps, g_stats)),
        ("plain PyTorch loop", plain_side(kind, cfg, steps, device, p_stats)),
        repeats=repeats,
        warmup=warmup,
        work=images,
        device=device,
    )
    med = lambda xs, k: statistics.median(x[k] for x in xs[warmup:])  # noqa: E731
    row.notes = {
        "step_ratio_no_log_no_checkpoint": med(p_stats, "step_s") / med(g_stats, "step_s"),
        "genda_step_s": med(g_stats, "step_s"),
        "plain_step_s": med(p_stats, "step_s"),
        "genda_log_write_s": med(g_stats, "log_s"),
        "genda_save_s": med(g_stats, "save_s"),
        "plain_save_s": med(p_stats, "save_s"),
        "genda_fixed_s_per_run": med(g_stats, "fixed_s"),
        "checkpoint_every": int(cfg.trainer.checkpoint_every or 0),
        "log_every": int(cfg.trainer.log_every),
        "logger": str(cfg.logger.mode),
        "ema": bool(cfg.model.get("ema_decay", 0)),
        "progress": bool(cfg.trainer.progress),
    }
    return row


def run(quick: bool = False) -> dict:
    quick = quick or os.environ.get("GENDA_BENCH_QUICK") == "1"
    repeats, warmup = (1, 0) if quick else (5, 1)
    out: dict = {}
    for name, (steps, batch) in sizes(quick).items():
        kind = KINDS[name]
        if not kind.ready():
            out[name] = {
                "skipped": f"{kind.task_module} or conf/experiment/{kind.experiment}.yaml not in the repo yet"
            }
            continue
        out[name] = bench_kind(kind, steps, batch, repeats, warmup)
    return out


if __name__ == "__main__":
    from benchmarks.__main__ import rows_of, table

    print(table(rows_of("loop", run())))
