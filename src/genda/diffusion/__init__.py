"""Diffusion core: noise schedules, the forward process and loss, DDPM/DDIM samplers, slerp."""

from genda.diffusion.interpolate import lerp, slerp
from genda.diffusion.process import alpha_bars, eps_loss, posterior, posterior_coefs, q_sample
from genda.diffusion.samplers import (
    classifier_free_guidance,
    ddim_sample,
    ddim_sigma,
    ddim_timesteps,
    ddpm_sample,
)
from genda.diffusion.schedules import make_betas

__all__ = [
    "alpha_bars", "classifier_free_guidance", "ddim_sample", "ddim_sigma", "ddim_timesteps",
    "ddpm_sample", "eps_loss", "lerp", "make_betas", "posterior", "posterior_coefs", "q_sample", "slerp",
]
