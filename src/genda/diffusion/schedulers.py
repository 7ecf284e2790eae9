"""Reverse-process schedulers as small objects: DDPM, DDIM and DPM-Solver++ (2M).

A scheduler holds a `NoiseSchedule` (tables computed once), the descending `timesteps` its loop
visits (`set_timesteps(n)`), and `step(eps, t, x, generator=None, x0_hook=None) -> x_prev`, one
update from x_t to the next visited timestep (the last step lands on alpha_bar = 1, x_0 itself).
`x0_hook` maps the predicted x_0 (e.g. clipping to [-1, 1]); the step then uses it as the model's
prediction. Multistep state (DPM-Solver's history) is cleared by `reset()`, which
`set_timesteps` and the loop (`genda.diffusion.samplers.sample`) call. The per-step coefficients
are Python floats from float64 tables, so a step costs no table work and no device transfer.

Configs pick one by `kind` (`SCHEDULERS`) or name the class with `_target_` (and `_partial_:
true`: the task passes the model's schedule), see `sampler_from_config`; all three classes are
registered on the `_target_` allow-list.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from genda.diffusion.schedules import NoiseSchedule, as_schedule
from genda.errors import ConfigError
from genda.targets import register_target

X0Hook = Callable[[torch.Tensor], torch.Tensor]


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like `like`, drawn on the generator's device."""
    dev = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def ddim_timesteps(num_steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """The course's (diffusers' 'leading') rule, descending: k·(n-1), ..., k, 0 with k = T // n."""
    k = num_train_timesteps // num_steps
    return list(range(0, num_steps * k, k))[::-1]


def linspace_timesteps(num_steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """diffusers' 'linspace' rule, descending: round(linspace(0, T-1, n+1)) without its 0."""
    return np.linspace(0, num_train_timesteps - 1, num_steps + 1).round()[::-1][:-1].astype(np.int64).tolist()


def ddim_sigma(ab_t: float, ab_prev: float, eta: float) -> float:
    """sigma = eta sqrt((1 - ab_prev) / (1 - ab_t)) sqrt(1 - ab_t / ab_prev) (DDIM eq. 16)."""
    return eta * math.sqrt((1 - ab_prev) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_prev)


class Scheduler:
    """Base: the schedule's tables, the visited timesteps, and the x_0 / eps conversions.

    schedule: a NoiseSchedule, betas (T,), `make_betas` kwargs, or None (linear, T = 1000);
    num_steps: model calls per sample (None: the scheduler's default)."""

    default_steps: int | None = 50

    def __init__(self, schedule: NoiseSchedule | torch.Tensor | Mapping[str, Any] | None = None,
                 num_steps: int | None = None) -> None:
        self.schedule = as_schedule(schedule)
        self.num_train_timesteps = len(self.schedule)
        self._ab = self.schedule.floats("alpha_bars")
        self.set_timesteps(num_steps)

    def set_timesteps(self, num_steps: int | None = None) -> None:
        """Choose the visited timesteps (descending) for `num_steps` model calls."""
        n = int(num_steps or self.default_steps or self.num_train_timesteps)
        if not 1 <= n <= self.num_train_timesteps:
            raise ConfigError(f"sampler.num_steps={n}: use 1..{self.num_train_timesteps}")
        self.num_steps = n
        self.timesteps = self._timesteps(n)
        self._index = {t: i for i, t in enumerate(self.timesteps)}
        self.reset()

    def _timesteps(self, n: int) -> list[int]:
        return ddim_timesteps(n, self.num_train_timesteps)

    def reset(self) -> None:
        """Forget per-sample state (multistep history); stateless schedulers keep nothing."""

    def replace(self, **changes: Any) -> Scheduler:
        """A shallow copy (sharing the tables) with attributes changed, e.g. `replace(eta=0.5)`."""
        new = copy.copy(self)
        for k, v in changes.items():
            if not hasattr(new, k):
                raise AttributeError(f"{type(self).__name__} has no setting {k!r}")
            setattr(new, k, v)
        new.reset()
        return new

    def with_schedule(self, schedule: NoiseSchedule | torch.Tensor | Mapping[str, Any] | None) -> Scheduler:
        """A copy with the same settings and number of steps on another noise schedule."""
        new = copy.copy(self)
        new.schedule = as_schedule(schedule)
        new.num_train_timesteps, new._ab = len(new.schedule), new.schedule.floats("alpha_bars")
        new.set_timesteps(min(self.num_steps, new.num_train_timesteps))
        return new

    def prev_alpha_bar(self, t: int) -> float:
        """alpha_bar of the timestep after t on the path; 1.0 after the last one."""
        i = self._index[t]
        return self._ab[self.timesteps[i + 1]] if i + 1 < len(self.timesteps) else 1.0

    def predict_x0(self, eps: torch.Tensor, t: int, x: torch.Tensor) -> torch.Tensor:
        """x_0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)."""
        return (x - math.sqrt(1 - self._ab[t]) * eps) / math.sqrt(self._ab[t])

    def step(self, eps: torch.Tensor, t: int, x: torch.Tensor, generator: torch.Generator | None = None,
             x0_hook: X0Hook | None = None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_steps={self.num_steps}, T={self.num_train_timesteps})"


@register_target
class DDPMScheduler(Scheduler):
    """Ancestral sampling (Ho et al. 2020), variance = posterior variance (beta tilde). Default:
    all T steps; with `num_steps` n < T, the strided posterior over ddim_timesteps(n) (diffusers'
    DDPMScheduler with num_inference_steps). `x0_hook` acts on x_0 before the posterior (Ho et
    al.'s `clip_denoised`, diffusers' `clip_sample`)."""

    default_steps = None

    def set_timesteps(self, num_steps: int | None = None) -> None:
        super().set_timesteps(num_steps)
        s, coefs = self.schedule, {}
        c0, ct, var = s.floats("post_c0"), s.floats("post_ct"), s.floats("post_var")
        for t in self.timesteps:
            ab_t, ab_prev = self._ab[t], self.prev_alpha_bar(t)
            if ab_prev == (self._ab[t - 1] if t > 0 else 1.0):  # adjacent: the exact tables
                coefs[t] = (c0[t], ct[t], math.sqrt(var[t]))
            else:  # strided: beta_t' = 1 - ab_t / ab_prev
                b = 1 - ab_t / ab_prev
                coefs[t] = (math.sqrt(ab_prev) * b / (1 - ab_t), math.sqrt(1 - b) * (1 - ab_prev) / (1 - ab_t),
                            math.sqrt(max(b * (1 - ab_prev) / (1 - ab_t), 1e-20)))
        self._coefs = coefs

    def step(self, eps, t, x, generator=None, x0_hook=None):
        t = int(t)  # a python int or a 0-d tensor
        x0 = self.predict_x0(eps, t, x)
        if x0_hook is not None:
            x0 = x0_hook(x0)
        c0, ct, std = self._coefs[t]
        x = c0 * x0 + ct * x
        if t != self.timesteps[-1]:
            x = x + std * _noise(x, generator)
        return x


@register_target
class DDIMScheduler(Scheduler):
    """DDIM (Song et al. 2021) over the course's timesteps (n = 50: 980, 960, ..., 0); the last
    step goes to alpha_bar = 1. `eta` scales the noise (0: deterministic, 1: DDPM-like). With an
    `x0_hook`, eps is re-derived from the hooked x_0 (diffusers' `clip_sample=True` with
    `use_clipped_model_output=True`)."""

    default_steps = 50

    def __init__(self, schedule=None, num_steps: int | None = None, eta: float = 0.0) -> None:
        self.eta = float(eta)
        super().__init__(schedule, num_steps)

    def step(self, eps, t, x, generator=None, x0_hook=None):
        t = int(t)  # a python int or a 0-d tensor
        ab_t, ab_prev = self._ab[t], self.prev_alpha_bar(t)
        x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        if x0_hook is not None:
            x0 = x0_hook(x0)
            eps = (x - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)
        sigma = ddim_sigma(ab_t, ab_prev, self.eta)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(0.0, 1 - ab_prev - sigma**2)) * eps
        if sigma > 0:
            x = x + sigma * _noise(x, generator)
        return x

    def __repr__(self) -> str:
        return f"DDIMScheduler(num_steps={self.num_steps}, eta={self.eta:g}, T={self.num_train_timesteps})"


@register_target
class DPMSolverScheduler(Scheduler):
    """DPM-Solver++(2M) (Lu et al. 2022): multistep, second order, data (x_0) prediction, in
    lambda = log(alpha / sigma) with alpha = sqrt(ab), sigma = sqrt(1 - ab). The first step is
    first order (no history yet); timesteps follow diffusers' 'linspace' rule (20 steps: 999,
    949, ..., 50). `final_sigmas_type` 'zero' ends at alpha_bar = 1 (x_0) with a first-order step;
    'sigma_min' ends at t = 0's noise level, first order only when `lower_order_final` and
    n < 15: the rules of diffusers' DPMSolverMultistepScheduler(algorithm_type='dpmsolver++',
    solver_order=2). `x0_hook` acts on each data prediction (diffusers' thresholding slot)."""

    default_steps = 20

    def __init__(self, schedule=None, num_steps: int | None = None, lower_order_final: bool = True,
                 final_sigmas_type: str = "zero") -> None:
        if final_sigmas_type not in ("zero", "sigma_min"):
            raise ConfigError(f"final_sigmas_type={final_sigmas_type!r}: use 'zero' or 'sigma_min'")
        self.lower_order_final, self.final_sigmas_type = bool(lower_order_final), final_sigmas_type
        super().__init__(schedule, num_steps)

    def _timesteps(self, n: int) -> list[int]:
        return linspace_timesteps(n, self.num_train_timesteps)

    def reset(self) -> None:
        self._prev: tuple[torch.Tensor, float] | None = None  # (x0 prediction, lambda) of the last step

    def _target_ab(self, t: int) -> float:
        i = self._index[t]
        if i + 1 < len(self.timesteps):
            return self._ab[self.timesteps[i + 1]]
        return 1.0 if self.final_sigmas_type == "zero" else self._ab[0]

    @staticmethod
    def _alpha_sigma_lambda(ab: float) -> tuple[float, float, float]:
        alpha, sigma = math.sqrt(ab), math.sqrt(1 - ab)
        return alpha, sigma, (math.log(alpha) - math.log(sigma)) if sigma > 0 else math.inf

    def step(self, eps, t, x, generator=None, x0_hook=None):
        t = int(t)  # a python int or a 0-d tensor
        i, n = self._index[t], len(self.timesteps)
        a_s, s_s, lam_s = self._alpha_sigma_lambda(self._ab[t])
        a_t, s_t, lam_t = self._alpha_sigma_lambda(self._target_ab(t))
        x0 = (x - s_s * eps) / a_s
        if x0_hook is not None:
            x0 = x0_hook(x0)
        prev, self._prev = self._prev, (x0, lam_s)
        if s_t == 0:  # to alpha_bar = 1: the first-order update is x_0 itself
            return x0
        last = i == n - 1
        first_order = prev is None or (last and self.lower_order_final and n < 15)
        h = lam_t - lam_s
        phi = a_t * math.expm1(-h)  # alpha_t (e^{-h} - 1)
        x = (s_t / s_s) * x - phi * x0
        if not first_order:
            x0_prev, lam_prev = prev
            r = (lam_s - lam_prev) / h
            x = x - (0.5 * phi / r) * (x0 - x0_prev)
        return x

    def __repr__(self) -> str:
        return f"DPMSolverScheduler(num_steps={self.num_steps}, T={self.num_train_timesteps})"


SCHEDULERS: dict[str, type[Scheduler]] = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler,
                                          "dpmsolver": DPMSolverScheduler}


def make_scheduler(kind: str, schedule: NoiseSchedule | torch.Tensor | Mapping[str, Any] | None = None,
                   num_steps: int | None = None, **settings: Any) -> Scheduler:
    """`SCHEDULERS[kind](schedule, num_steps, **settings)`; an unknown kind is a ConfigError."""
    if kind not in SCHEDULERS:
        raise ConfigError(f"sampler.kind={kind!r}: use one of {', '.join(SCHEDULERS)}")
    return SCHEDULERS[kind](schedule, num_steps, **settings)


HOOK_KEYS = ("guidance", "clip_x0")  # sampler-block keys that configure the loop's hooks


def sampler_from_config(block: Mapping[str, Any] | Callable[..., Scheduler] | Scheduler,
                        schedule: NoiseSchedule) -> tuple[dict[str, Any], Scheduler]:
    """(settings, scheduler) from a config's `sampler` block, on the model's `schedule`:

    - `{kind: ddim|ddpm|dpmsolver, num_steps, eta, guidance, clip_x0}` (kind=ddpm: all T steps;
      dpmsolver also reads lower_order_final / final_sigmas_type when given);
    - a block with `_target_` naming a scheduler class and `_partial_: true`, which Hydra hands
      over as a partial: its keywords go to the class, except guidance / clip_x0 / kind (and eta
      for a class without one);
    - a built Scheduler: the same settings, re-built on `schedule`.
    settings always holds kind, num_steps, eta, guidance and clip_x0."""
    if isinstance(block, functools.partial):
        kw = dict(block.keywords)
        hooks = {k: kw.pop(k) for k in HOOK_KEYS if k in kw}
        kw.pop("kind", None)  # the `_target_` names the class
        if "eta" in kw and "eta" not in inspect.signature(block.func).parameters:
            kw.pop("eta")  # the block's DDIM eta means nothing to the others (as with `kind`)
        try:
            sched = block.func(*block.args, schedule=schedule, **kw)
        except TypeError as e:
            raise ConfigError(f"sampler: {getattr(block.func, '__name__', block.func)}: {e}") from None
        settings = {"kind": type(sched).__name__, **kw, **hooks}
    elif isinstance(block, Scheduler):
        sched, settings = block.with_schedule(schedule), {"kind": type(block).__name__}
    else:
        settings = {"kind": "ddim", "num_steps": 50, "eta": 0.0, **dict(block)}
        kind = settings["kind"]
        if kind == "ddpm":  # ancestral sampling over all T steps, whatever num_steps says
            sched = make_scheduler(kind, schedule)
        elif kind == "ddim":
            sched = make_scheduler(kind, schedule, int(settings["num_steps"]), eta=float(settings["eta"]))
        else:
            extra = {k: settings[k] for k in ("lower_order_final", "final_sigmas_type") if k in settings}
            sched = make_scheduler(kind, schedule, int(settings["num_steps"]), **extra)
    if not isinstance(sched, Scheduler):
        raise ConfigError(f"sampler: {type(sched).__name__} is not a genda.diffusion scheduler")
    return {"guidance": 0.0, "clip_x0": False, "num_steps": sched.num_steps,
            "eta": getattr(sched, "eta", 0.0), **settings}, sched
