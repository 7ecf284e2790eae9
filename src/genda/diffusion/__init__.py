"""Diffusion core: noise schedules (tables computed once), the forward process and loss, the
DDPM / DDIM / DPM-Solver++(2M) scheduler objects, the one sampling loop with its hooks, slerp."""

from genda.diffusion.interpolate import lerp, slerp
from genda.diffusion.process import alpha_bars, eps_loss, posterior, posterior_coefs, q_sample
from genda.diffusion.samplers import (
    Trace,
    classifier_free_guidance,
    clip_x0,
    ddim_sample,
    ddpm_sample,
    sample,
)
from genda.diffusion.schedulers import (
    SCHEDULERS,
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverScheduler,
    Scheduler,
    ddim_sigma,
    ddim_timesteps,
    make_scheduler,
    sampler_from_config,
)
from genda.diffusion.schedules import NoiseSchedule, make_betas

__all__ = [
    "SCHEDULERS", "DDIMScheduler", "DDPMScheduler", "DPMSolverScheduler", "NoiseSchedule", "Scheduler", "Trace",
    "alpha_bars", "classifier_free_guidance", "clip_x0", "ddim_sample", "ddim_sigma", "ddim_timesteps",
    "ddpm_sample", "eps_loss", "lerp", "make_betas", "make_scheduler", "posterior", "posterior_coefs",
    "q_sample", "sample", "sampler_from_config", "slerp",
]
