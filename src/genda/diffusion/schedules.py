"""Noise schedules beta_1..beta_T and `NoiseSchedule`, their tables computed once.

`NoiseSchedule(betas)` holds betas, alphas, alpha_bars, sqrt(alpha_bar), sqrt(1 - alpha_bar) and
DDPM's posterior coefficients, each (T,) float64 on the CPU, computed at construction; `table()`
hands out a copy cast to a device and dtype, made once per (name, device, dtype) and cached, so
the training loss indexes precomputed tensors on the model's device instead of recomputing the
cumulative product every step. `floats()` gives the same tables as Python floats (the samplers'
per-step scalars).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from genda.errors import ConfigError


def make_betas(kind: str = "linear", num_timesteps: int = 1000, beta_start: float = 1e-4,
               beta_end: float = 0.02, cosine_s: float = 0.008) -> torch.Tensor:
    """Betas (T,) float32. 'linear': DDPM (Ho et al. 2020); 'cosine': Nichol & Dhariwal 2021."""
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64).float()
    if kind == "cosine":
        steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
        f = torch.cos((steps + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999).float()
    raise ConfigError(f"model.schedule.kind={kind!r}: use 'linear' or 'cosine'")


class NoiseSchedule:
    """The tables of one beta schedule, computed once (float64, CPU) and cached per device/dtype.

    Build it from betas (a (T,) tensor), from `make_betas` keyword arguments (a mapping, e.g. a
    config's `model.schedule`), or with no argument (linear 1e-4 -> 0.02, T = 1000)."""

    NAMES = ("betas", "alphas", "alpha_bars", "alpha_bars_prev", "sqrt_ab", "sqrt_1mab",
             "post_c0", "post_ct", "post_var")

    def __init__(self, betas: torch.Tensor | Mapping[str, Any] | None = None) -> None:
        if betas is None or isinstance(betas, Mapping):
            betas = make_betas(**dict(betas or {}))
        b = betas.detach().double().cpu()
        ab = torch.cumprod(1.0 - b, 0)
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        self.betas, self.alphas, self.alpha_bars, self.alpha_bars_prev = b, 1.0 - b, ab, ab_prev
        self.sqrt_ab, self.sqrt_1mab = ab.sqrt(), (1 - ab).sqrt()
        # q(x_{t-1} | x_t, x_0) = N(post_c0 x_0 + post_ct x_t, post_var) (DDPM eq. 7)
        self.post_c0 = ab_prev.sqrt() * b / (1 - ab)
        self.post_ct = (1 - b).sqrt() * (1 - ab_prev) / (1 - ab)
        self.post_var = b * (1 - ab_prev) / (1 - ab)
        self._cache: dict[tuple[str, torch.device, torch.dtype], torch.Tensor] = {}
        self._floats: dict[str, list[float]] = {}

    def __len__(self) -> int:
        return len(self.betas)

    @property
    def num_timesteps(self) -> int:
        return len(self.betas)

    def table(self, name: str, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Table `name` (one of NAMES) on `device` in `dtype`; cast once, then served from a cache."""
        if name not in self.NAMES:
            raise KeyError(f"NoiseSchedule has no table {name!r}; tables: {', '.join(self.NAMES)}")
        return self.cached(name, lambda: getattr(self, name), device, dtype)

    def cached(self, key: str, make: Callable[[], torch.Tensor], device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """`make()` (a float64 CPU table derived from this schedule) on `device` in `dtype`, made
        and cast once per (key, device, dtype)."""
        k = (key, torch.device(device), dtype)
        if k not in self._cache:
            self._cache[k] = make().to(device=k[1], dtype=dtype)
        return self._cache[k]

    def floats(self, name: str) -> list[float]:
        """Table `name` as Python floats (computed once)."""
        if name not in self._floats:
            self._floats[name] = getattr(self, name).tolist()
        return self._floats[name]

    def at(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """table[t] for a batch of timesteps t (B,), shaped (B, 1, ..., 1) on `like`'s device/dtype."""
        v = self.table(name, like.device, like.dtype)[t.to(like.device)]
        return v.view(-1, *([1] * (like.ndim - 1)))


def as_schedule(schedule: NoiseSchedule | torch.Tensor | Mapping[str, Any] | None) -> NoiseSchedule:
    """A NoiseSchedule as it is, else one built from betas / make_betas kwargs / the default."""
    return schedule if isinstance(schedule, NoiseSchedule) else NoiseSchedule(schedule)
