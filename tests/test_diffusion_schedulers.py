"""The scheduler objects: DPM-Solver++(2M) against diffusers' DPMSolverMultistepScheduler (full
trajectories), strided DDPM against diffusers' DDPMScheduler, tables computed once, the loop's
hooks, the task's sampler config (`kind` and `_target_`), and a dpmsolver smoke run."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler
from omegaconf import OmegaConf

from genda.diffusion import (
    SCHEDULERS,
    DDIMScheduler,
    DPMSolverScheduler,
    NoiseSchedule,
    Trace,
    ddim_timesteps,
    eps_loss,
    make_scheduler,
    q_sample,
    sample,
)
from genda.diffusion import schedulers as gs
from genda.errors import ConfigError

from .test_diffusion import BETAS, SCHEDULE, RandomEps


def _dpm_oracle(n: int, **kw) -> DPMSolverMultistepScheduler:
    sched = DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                        beta_schedule="linear", algorithm_type="dpmsolver++", solver_order=2,
                                        timestep_spacing="linspace", **kw)
    sched.set_timesteps(n)
    return sched


def _trajectories(ours, oracle, model, x_T: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every x after each step: diffusers' loop and genda's `sample` (its callback sees the inputs)."""
    ref, x = [], x_T
    with torch.no_grad():
        for t in oracle.timesteps:
            x = oracle.step(model(x, t.expand(len(x))), t, x).prev_sample
            ref.append(x)
    seen: list[torch.Tensor] = []
    out = sample(ours, model, x_T, callback=lambda t, x: seen.append(x.clone()))
    return ref, seen[1:] + [out]


@pytest.mark.parametrize("n", [10, 15, 20, 25])
def test_dpmsolver_equals_diffusers_trajectory(n: int) -> None:
    """Default settings (final step to alpha_bar = 1, lower_order_final): within 1e-5 at every step."""
    model, oracle = RandomEps(), _dpm_oracle(n, lower_order_final=True, final_sigmas_type="zero")
    ours = DPMSolverScheduler(SCHEDULE, n)
    assert ours.timesteps == oracle.timesteps.tolist() and ours.timesteps[0] == 999
    x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(n))
    ref, got = _trajectories(ours, oracle, model, x_T)
    assert len(ref) == len(got) == n
    for a, b in zip(ref, got, strict=True):
        assert (a - b).abs().max() <= 1e-5
    assert got[-1].abs().max() > 0.1
    # the second-order correction matters: a first-order (DDIM-like) run lands elsewhere
    first = DPMSolverScheduler(SCHEDULE, n)
    first.step = functools.partial(_first_order_step, first)
    assert (sample(first, model, x_T) - got[-1]).abs().max() > 1e-3


def _first_order_step(sched, eps, t, x, generator=None, x0_hook=None):
    sched.reset()
    return DPMSolverScheduler.step(sched, eps, t, x, generator, x0_hook)


@pytest.mark.parametrize("lower_order_final", [True, False])
def test_dpmsolver_sigma_min_final_equals_diffusers(lower_order_final: bool) -> None:
    """Ending at t = 0's noise level: the final step's order follows `lower_order_final` (n < 15).
    diffusers computes these coefficients in float32 (its error vs float64 is ~3e-5 here)."""
    model = RandomEps()
    oracle = _dpm_oracle(10, lower_order_final=lower_order_final, final_sigmas_type="sigma_min")
    ours = DPMSolverScheduler(BETAS, 10, lower_order_final=lower_order_final, final_sigmas_type="sigma_min")
    ref, got = _trajectories(ours, oracle, model, torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)))
    assert max(float((a - b).abs().max()) for a, b in zip(ref, got, strict=True)) <= 1e-4


def test_strided_ddpm_equals_diffusers() -> None:
    model = RandomEps()
    oracle = DDPMScheduler(beta_schedule="linear", clip_sample=False)
    oracle.betas = oracle.betas.double()
    oracle.alphas = 1.0 - oracle.betas
    oracle.alphas_cumprod = torch.cumprod(oracle.alphas, 0)
    oracle.set_timesteps(25)
    ours = gs.DDPMScheduler(SCHEDULE, 25)
    assert ours.timesteps == oracle.timesteps.tolist() == ddim_timesteps(25)
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    gen, x = torch.Generator().manual_seed(5), x_T
    with torch.no_grad():
        for t in oracle.timesteps:
            x = oracle.step(model(x, t.expand(2)), t, x, generator=gen).prev_sample
    assert (sample(ours, model, x_T, torch.Generator().manual_seed(5)) - x.float()).abs().max() < 1e-4


def test_tables_are_computed_once(monkeypatch) -> None:
    """The loss and the schedulers read the NoiseSchedule's tables: no cumprod per step."""
    schedule, model, x0 = NoiseSchedule(BETAS), RandomEps(), torch.randn(3, 3, 8, 8)
    scheds = [cls(schedule) for cls in SCHEDULERS.values()]
    ref = eps_loss(model, x0, BETAS, torch.Generator().manual_seed(7))
    ref_snr = eps_loss(model, x0, BETAS, torch.Generator().manual_seed(7), min_snr_gamma=5.0)
    eps_loss(model, x0, schedule, min_snr_gamma=5.0)  # fills the cache
    t = torch.tensor([0, 500, 999])
    ref_q = q_sample(x0, t, x0, BETAS)

    def no_cumprod(*a, **k):
        raise AssertionError("alpha_bars recomputed")

    monkeypatch.setattr(torch, "cumprod", no_cumprod)
    assert torch.equal(eps_loss(model, x0, schedule, torch.Generator().manual_seed(7)), ref)
    assert torch.equal(eps_loss(model, x0, schedule, torch.Generator().manual_seed(7), min_snr_gamma=5.0), ref_snr)
    for s in scheds:
        s.set_timesteps(5)
        sample(s, model, torch.randn(1, 3, 8, 8), torch.Generator().manual_seed(0))
    assert schedule.table("sqrt_ab", "cpu", torch.float32) is schedule.table("sqrt_ab", "cpu", torch.float32)
    assert torch.equal(q_sample(x0, t, x0, schedule), ref_q)


def test_loop_hooks_guidance_and_trace() -> None:
    model = RandomEps()
    calls: list[int] = []

    def eps(x, t):
        calls.append(int(t[0]))
        return model(x, t)

    sched, trace = DPMSolverScheduler(SCHEDULE, 8), Trace([999, 0])
    x_T = torch.randn(1, 3, 8, 8)
    out = sample(sched, eps, x_T, callback=trace)
    assert calls == sched.timesteps and 0 not in calls
    assert sorted(trace.states) == [999] and torch.equal(trace.states[999], x_T)
    again = sample(sched, model, x_T)  # state is reset between samples
    assert torch.equal(out, again)


def test_make_scheduler_and_settings() -> None:
    assert isinstance(make_scheduler("ddim", SCHEDULE, 50, eta=0.5), DDIMScheduler)
    assert DDIMScheduler(SCHEDULE).timesteps == list(range(980, -1, -20))  # the course's DDIM-50
    assert len(gs.DDPMScheduler(SCHEDULE).timesteps) == 1000
    with pytest.raises(ConfigError, match="sampler.kind='euler'"):
        make_scheduler("euler")
    with pytest.raises(ConfigError, match="num_steps"):
        DDIMScheduler(SCHEDULE, 2000)
    s = DDIMScheduler(SCHEDULE, 10)
    assert s.replace(eta=1.0).eta == 1.0 and s.eta == 0.0
    assert s.with_schedule({"kind": "cosine"}).timesteps == s.timesteps


def _task(sampler):
    from genda.models.unet import ConditionalUNet
    from genda.tasks.diffusion import ConditionalDDPMTask

    net = ConditionalUNet(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(), groups=4)
    schedule = {"kind": "linear", "num_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02}
    return ConditionalDDPMTask(net, None, schedule, sampler, evaluator={})


def test_task_sampler_from_kind_and_target() -> None:
    from hydra.utils import instantiate

    from genda import targets

    task = _task({"kind": "dpmsolver", "num_steps": 20, "eta": 0.0, "guidance": 4.0, "clip_x0": True})
    assert isinstance(task.scheduler, DPMSolverScheduler) and task.visited_timesteps()[0] == 999
    assert task.scheduler.schedule is task.noise_schedule and task.sampler["guidance"] == 4.0
    assert isinstance(_task({"kind": "ddpm", "num_steps": 50}).scheduler, gs.DDPMScheduler)
    with pytest.raises(ConfigError, match="sampler.kind='euler'"):
        _task({"kind": "euler"})
    for cls in ("DDPMScheduler", "DDIMScheduler", "DPMSolverScheduler"):
        assert targets.is_allowed(f"genda.diffusion.schedulers.{cls}")
    node = OmegaConf.create({"_target_": "genda.diffusion.schedulers.DDIMScheduler", "_partial_": True,
                             "num_steps": 10, "eta": 0.5, "guidance": 2.0, "clip_x0": False})
    built = instantiate(node)  # what Hydra hands the task for a `_target_` sampler block
    assert isinstance(built, functools.partial)
    task = _task(built)
    assert isinstance(task.scheduler, DDIMScheduler) and task.scheduler.eta == 0.5
    assert task.sampler["guidance"] == 2.0 and task.sampler["num_steps"] == 10
    assert len(task.visited_timesteps()) == 10


@pytest.mark.slow
def test_ddpm_digits_smoke_with_dpmsolver(smoke_run) -> None:
    run = smoke_run("ddpm_digits", "model.sampler.kind=dpmsolver", "model.sampler.num_steps=20")
    ev = json.loads((run / "artifacts" / "eval.json").read_text())
    assert ev["sampler"]["kind"] == "dpmsolver" and ev["sampler"]["num_steps"] == 20
    assert ev["n_images"] == 30 and ev["reverse_process_timesteps"][0] == 999
