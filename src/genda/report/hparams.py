"""Hyperparameter tables from the runs' saved configs (config.yaml in each run dir).

`hyperparameters(config)` picks the settings a reader needs to reproduce a run — optimisers,
batch, steps, LR schedule, method weights (λ, guidance, η, KL weight...), the networks'
constructor arguments (widths, channels), EMA and the seed — as ordered (name, text) pairs;
`table(columns)` merges them over each column's runs (differing values are listed)."""

from __future__ import annotations

from typing import Any

from genda.report import doc as D

# Scalar model settings shown when present (name in the config -> row label).
METHOD_KEYS = {
    "mode": "mode",
    "loss": "GAN loss",
    "n_critic": "D steps per G step",
    "real_label": "real label",
    "label_noise": "label noise",
    "flip_prob": "label flip probability",
    "instance_noise": "instance noise σ",
    "clip_value": "weight clipping",
    "gp_weight": "gradient-penalty weight",
    "kl_weight": "KL weight",
    "kl_warmup": "KL warm-up (fraction of steps)",
    "lambda_max": "λ max (GRL)",
    "gamma": "λ schedule γ",
    "pretrain_fraction": "source pre-training (fraction of steps)",
    "target_lr": "target encoder lr (phase 2)",
    "p_uncond": "CFG label drop probability",
    "min_snr_gamma": "Min-SNR γ",
    "prediction": "net predicts",
    "warmup_steps": "LR warm-up steps",
    "ema_decay": "EMA decay",
}
SKIP = {"seed", "n_images", "n_real", "n_fake", "cache_dir", "tsne_points", "n_show", "num_classes",
        "images_per_class", "sample_batch", "strip_points", "val_batches", "num_noises", "image_size",
        "eta_grid_noises", "interp_points", "ckpt", "noise_dir", "gt_dir", "face_score", "source_ckpt"}
WEIGHTY = ("weight", "lambda", "alpha", "beta", "gamma")  # other method scalars worth a row
NOT_ARGS = {"_target_", "_partial_", "_convert_", "_recursive_"}


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def _short_target(t: str) -> str:
    return str(t).rsplit(".", 1)[-1]


def _optimiser(spec: dict) -> str:
    parts = [_short_target(spec.get("_target_", "?"))]
    if "lr" in spec:
        parts.append(f"lr {_fmt(spec['lr'])}")
    if "betas" in spec:
        parts.append(f"β {_fmt(spec['betas'])}")
    for k, v in spec.items():
        if k not in NOT_ARGS | {"lr", "betas"} and not isinstance(v, dict):
            parts.append(f"{k.replace('_', ' ')} {_fmt(v)}")
    return ", ".join(parts)


def _network(spec: dict) -> str:
    args = ", ".join(f"{k}={_fmt(v)}" for k, v in spec.items()
                     if k not in NOT_ARGS and not isinstance(v, dict))
    return f"{_short_target(spec['_target_'])}({args})"


def _label(key: str, what: str) -> str:
    name = key.removesuffix("optimizer").removesuffix("_").replace("_", " ")
    name = {"g": "G", "d": "D"}.get(name, name)
    return f"{name} {what}".strip()


def _batch(data: dict) -> str | None:
    if "source" in data and "target" in data:
        b = [(data[k] or {}).get("batch_size") for k in ("source", "target")]
        return None if b[0] is None else (_fmt(b[0]) if b[0] == b[1] else f"{b[0]} source + {b[1]} target")
    return None if data.get("batch_size") is None else _fmt(data["batch_size"])


def hyperparameters(config: dict) -> list[tuple[str, str]]:
    """Ordered (row label, value text) of one run's saved config ([] for no config)."""
    if not config:
        return []
    model, trainer = config.get("model") or {}, config.get("trainer") or {}
    out: list[tuple[str, str]] = []
    for k, v in model.items():  # optimisers first
        if isinstance(v, dict) and str(v.get("_target_", "")).startswith("torch.optim"):
            out.append((_label(k, "optimiser"), _optimiser(v)))
    batch = _batch(config.get("data") or {})
    if batch:
        out.append(("batch size", batch))
    size = (config.get("data") or {}).get("image_size")
    if isinstance(size, int):
        out.append(("image size", f"{size}×{size}"))
    if trainer.get("max_steps") is not None:
        out.append(("training steps", _fmt(trainer["max_steps"])))
    sched = model.get("lr_schedule")
    if sched is not None:
        if sched == "anneal":
            sched = f"anneal (α {_fmt(model.get('anneal_alpha'))}, β {_fmt(model.get('anneal_beta'))})"
        out.append(("LR schedule", str(sched)))
    if trainer.get("grad_clip") is not None:
        out.append(("gradient clipping", _fmt(trainer["grad_clip"])))
    for k, v in model.items():
        if isinstance(v, dict) or k in SKIP or k in ("lr_schedule", "anneal_alpha", "anneal_beta"):
            continue
        if k == "pretrain_fraction" and model.get("source_ckpt"):
            continue  # ADDA's phase 1 is read from a run: the "starts from" row below
        if k in METHOD_KEYS:
            out.append((METHOD_KEYS[k], _fmt(v)))
        elif any(w in k for w in WEIGHTY) and isinstance(v, int | float):
            out.append((k.replace("_", " "), _fmt(v)))
    sch = model.get("schedule") or {}
    if sch:
        span = (f"s = {_fmt(sch.get('cosine_s', 0.008))}" if sch.get("kind") == "cosine"  # betas from ᾱ
                else f"β {_fmt(sch.get('beta_start'))} → {_fmt(sch.get('beta_end'))}")
        out.append(("noise schedule", f"{sch.get('kind', '?')}, T={_fmt(sch.get('num_timesteps'))}, {span}"))
    sampler = {**(model.get("sampler") or {}), **(config.get("sampler") or {})}
    if sampler.get("kind"):
        steps = sampler.get("num_steps")
        out.append(("sampler", sampler["kind"] + (f", {_fmt(steps)} steps" if steps else "")))
    if sampler:
        if "eta" in sampler:
            out.append(("η (DDIM)", _fmt(sampler["eta"])))
        if "guidance" in sampler:
            out.append(("guidance w (CFG)", _fmt(sampler["guidance"])))
        if "clip_x0" in sampler:
            clip = sampler["clip_x0"]
            out.append(("x̂₀ clipped to [−1, 1]", "auto (yes for a net genda trained)" if clip is None
                        else ("yes" if clip else "no")))
    if model.get("source_ckpt"):  # the run's path differs per seed: say what it is, not where
        out.append(("starts from", "the pair's source-only run of the same seed (model.source_ckpt)"))
    for k, v in model.items():  # networks: constructor arguments (widths, channels, ...)
        if isinstance(v, dict) and "_target_" in v and not str(v["_target_"]).startswith("torch.optim"):
            out.append((k.replace("_", " "), _network(v)))
    if trainer.get("precision") is not None:
        out.append(("precision", str(trainer["precision"])))
    if config.get("seed") is not None:
        out.append(("seed", _fmt(config["seed"])))
    return out


def merged(configs: list[dict]) -> dict[str, str]:
    """Row label -> value over several runs (distinct values joined in first-seen order)."""
    vals: dict[str, list[str]] = {}
    for c in configs:
        for k, v in hyperparameters(c):
            if v not in vals.setdefault(k, []):
                vals[k].append(v)
    return {k: (" ; " if any("," in x for x in v) else ", ").join(v) for k, v in vals.items()}


def table(columns: dict[str, list[dict]], caption: str) -> D.Table | D.Missing:
    """A hyperparameter table: one column per label, its runs' configs merged."""
    cols = {name: merged(cfgs) for name, cfgs in columns.items()}
    rows: list[str] = []
    for c in cols.values():
        rows += [k for k in c if k not in rows]
    if not rows:
        return D.Missing("hyperparameters: no saved config.yaml in these run dirs")
    return D.Table(["hyperparameter", *cols], [[k, *(c.get(k, "—") for c in cols.values())] for k in rows],
                   caption)
