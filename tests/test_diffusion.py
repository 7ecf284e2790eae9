"""Diffusion core against diffusers' schedulers (the oracle): forward noising, DDPM posterior and
ancestral sampling, DDIM (eta = 0 and eta > 0), the course timestep rule, slerp/lerp, guidance, and
the course DDIM UNet's state-dict layout. The samplers are genda's scheduler objects driven by the
one loop `sample` (hooks: Trace, clip_x0); DPM-Solver++ is in test_diffusion_schedulers.py."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from genda.diffusion import (
    NoiseSchedule,
    Trace,
    classifier_free_guidance,
    clip_x0,
    ddim_sample,
    ddim_sigma,
    ddim_timesteps,
    eps_loss,
    lerp,
    make_betas,
    posterior,
    q_sample,
    sample,
    slerp,
)
from genda.diffusion import schedulers as gs
from genda.diffusion.process import alpha_bars
from genda.models.ddim_unet import DDIMUNet
from genda.models.unet import ConditionalUNet

BETAS = make_betas("linear", 1000, 1e-4, 0.02)
SCHEDULE = NoiseSchedule(BETAS)  # the tables, computed once for every test


def _ddim_oracle() -> DDIMScheduler:
    return DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                         clip_sample=False, set_alpha_to_one=True, timestep_spacing="leading")


def _ddpm_oracle(**kw) -> DDPMScheduler:
    """diffusers' DDPM scheduler with its tables in float64 (in float32, 1 - alpha_bar_t cancels
    badly at small t; genda computes the coefficients in float64)."""
    sched = DDPMScheduler(beta_schedule="linear", clip_sample=False, **kw)
    sched.betas = sched.betas.double()
    sched.alphas = 1.0 - sched.betas
    sched.alphas_cumprod = torch.cumprod(sched.alphas, 0)
    return sched


class RandomEps(nn.Module):
    """A fixed random eps-model that depends on x and t (so a wrong timestep or update shows).
    Shaped like a trained one, eps = sqrt(1 - ab_t) x + sqrt(ab_t) f(x), so x_0 stays bounded."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.register_buffer("ab", alpha_bars(BETAS).float())

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self.ab[t].view(-1, 1, 1, 1)
        return (1 - ab).sqrt() * x + ab.sqrt() * 0.5 * torch.tanh(self.conv(x))


def test_betas_match_diffusers() -> None:
    assert torch.allclose(BETAS, DDPMScheduler(beta_schedule="linear").betas, atol=1e-9)
    cos = DDPMScheduler(beta_schedule="squaredcos_cap_v2").betas
    assert torch.allclose(make_betas("cosine", 1000), cos, atol=1e-6)


def test_forward_noising_equals_add_noise() -> None:
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(6, 3, 8, 8, generator=g), torch.randn(6, 3, 8, 8, generator=g)
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    ref = DDPMScheduler(beta_schedule="linear").add_noise(x0, noise, t)
    assert (q_sample(x0, t, noise, BETAS) - ref).abs().max() < 1e-5


@pytest.mark.parametrize("t", [1, 10, 200, 500, 999])
def test_posterior_mean_and_variance_equal_diffusers(t: int) -> None:
    sched = _ddpm_oracle(variance_type="fixed_small", prediction_type="sample")
    g = torch.Generator().manual_seed(t)
    x0, x_t = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    mean, var = posterior(x0, x_t, torch.full((2,), t), BETAS)
    assert abs(float(var[0]) / float(sched._get_variance(t)) - 1) < 1e-6
    gen = torch.Generator().manual_seed(99)
    noisy = sched.step(x0, t, x_t, generator=gen).prev_sample  # mean + sqrt(var) * z
    z = torch.randn(x0.shape, generator=torch.Generator().manual_seed(99))
    ref_mean = noisy - sched._get_variance(t).sqrt() * z
    assert (mean - ref_mean).abs().max() < 1e-5


@pytest.mark.slow
def test_ddpm_sampler_equals_diffusers_loop() -> None:
    """Same eps-model, x_T and noise stream (diffusers draws on the CPU generator as genda does)."""
    model, sched = RandomEps(), _ddpm_oracle()
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    tracer = Trace([999, 500])
    ours = sample(gs.DDPMScheduler(SCHEDULE), model, x_T, torch.Generator().manual_seed(5), callback=tracer)
    trace = tracer.states
    gen, x = torch.Generator().manual_seed(5), x_T
    with torch.no_grad():
        for t in sched.timesteps:
            if int(t) == 500:
                assert (trace[500] - x).abs().max() < 1e-4
            x = sched.step(model(x, t.expand(2)), t, x, generator=gen).prev_sample
    assert torch.equal(trace[999], x_T)
    assert (ours - x).abs().max() < 1e-4


def test_course_timesteps() -> None:
    ts = ddim_timesteps(50, 1000)
    assert ts[0] == 980 and ts[-1] == 0 and len(ts) == 50 and all(a - b == 20 for a, b in zip(ts, ts[1:], strict=False))
    sched = _ddim_oracle()
    for n in (10, 50, 100, 37):
        sched.set_timesteps(n)
        assert ddim_timesteps(n, 1000) == sched.timesteps.tolist()


def test_ddim_eta0_equals_diffusers_loop() -> None:
    model, sched = RandomEps(), _ddim_oracle()
    sched.set_timesteps(50)
    x_T = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    x = x_T
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(model(x, t.expand(len(x))), int(t), x, eta=0.0).prev_sample
    ours = sample(gs.DDIMScheduler(SCHEDULE, num_steps=50, eta=0.0), model, x_T)
    assert (ours - x).abs().max() <= 1e-5
    assert ours.abs().max() > 0.1  # a real image, not a degenerate zero


@pytest.mark.parametrize("eta", [0.25, 1.0])
def test_ddim_sigma_equals_diffusers_variance(eta: float) -> None:
    sched = _ddim_oracle()
    sched.set_timesteps(50)
    ab = alpha_bars(BETAS).tolist()
    for t in sched.timesteps.tolist():
        prev = t - 20
        ab_prev = ab[prev] if prev >= 0 else 1.0
        ref = eta * math.sqrt(float(sched._get_variance(t, prev)))
        assert abs(ddim_sigma(ab[t], ab_prev, eta) - ref) < 1e-6


def test_ddim_eta_positive_equals_diffusers_with_same_noise() -> None:
    model, sched, eta = RandomEps(), _ddim_oracle(), 0.5
    sched.set_timesteps(20)
    x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    gen, x = torch.Generator().manual_seed(4), x_T
    with torch.no_grad():
        for t in sched.timesteps[:-1]:  # genda draws no noise at the last step (sigma = 0 there)
            z = torch.randn(x.shape, generator=gen)
            x = sched.step(model(x, t.expand(2)), int(t), x, eta=eta, variance_noise=z).prev_sample
        t = sched.timesteps[-1]
        x = sched.step(model(x, t.expand(2)), int(t), x, eta=eta, variance_noise=torch.zeros_like(x)).prev_sample
    ours = sample(gs.DDIMScheduler(SCHEDULE, 20, eta=eta), model, x_T, torch.Generator().manual_seed(4))
    assert (ours - x).abs().max() <= 1e-5
    assert (ours - sample(gs.DDIMScheduler(SCHEDULE, 20), model, x_T)).abs().max() > 1e-2


def test_ddim_return_steps_are_model_inputs() -> None:
    model = RandomEps()
    x_T = torch.randn(1, 3, 8, 8)
    out, trace = ddim_sample(model, x_T, BETAS, num_steps=10, return_steps=[900, 0])
    assert sorted(trace) == [0, 900] and torch.equal(trace[900], x_T)
    assert not torch.equal(trace[0], out)


def test_eps_loss_uses_the_forward_process() -> None:
    model, x0 = RandomEps(), torch.randn(3, 3, 8, 8)
    loss = eps_loss(model, x0, SCHEDULE, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, 1000, (3,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    expected = ((model(q_sample(x0, t, noise, BETAS), t) - noise) ** 2).mean()
    assert torch.allclose(loss, expected)


def test_classifier_free_guidance_formula() -> None:
    net = ConditionalUNet(in_channels=3, base_channels=8, channel_mult=(1, 2), attention_levels=(), groups=4)
    for p in net.parameters():  # non-zero output layers so conditional and null predictions differ
        nn.init.normal_(p, std=0.1)
    x, t, y = torch.randn(3, 3, 28, 28), torch.tensor([5, 500, 900]), torch.tensor([0, 4, 9])
    with torch.no_grad():
        cond, uncond = net(x, t, y), net(x, t, torch.full_like(y, 10))
        guided = classifier_free_guidance(net, y, 10, 2.0)(x, t)
    assert (guided - (3 * cond - 2 * uncond)).abs().max() < 1e-4
    assert (cond - uncond).abs().max() > 1e-3


def test_slerp_endpoints_norm_and_difference_from_lerp() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 3, 16, 16, generator=g), torch.randn(1, 3, 16, 16, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    ua, ub = a / a.norm(), b / b.norm()
    for alpha in (0.1, 0.5, 0.9):
        assert abs(float(slerp(ua, ub, alpha).norm()) - 1.0) < 1e-5
        assert (slerp(a, b, alpha) - lerp(a, b, alpha)).abs().max() > 0.1
    assert float(lerp(ua, ub, 0.5).norm()) < 0.8  # lerp shrinks the norm of near-orthogonal vectors


def test_conditional_unet_shapes_and_null_class() -> None:
    net = ConditionalUNet(base_channels=16, channel_mult=(1, 2, 4), num_res_blocks=1, groups=8)
    y = torch.tensor([0, 10])  # 10 = the null class
    assert net(torch.randn(2, 3, 28, 28), torch.tensor([0, 999]), y).shape == (2, 3, 28, 28)
    assert net.class_emb.num_embeddings == 11


def test_conditional_unet_patch_size_folds_pixels_losslessly() -> None:
    net = ConditionalUNet(base_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
                          groups=8, patch_size=2)
    assert net.conv_in.in_channels == 12 and net.out[-1].out_channels == 12 and net.in_channels == 3
    x = torch.randn(2, 3, 28, 28)
    for p in net.parameters():
        nn.init.normal_(p, std=0.05)
    out = net(x, torch.tensor([3, 700]), torch.tensor([1, 10]))
    assert out.shape == x.shape
    # pixel_unshuffle / pixel_shuffle are exact inverses: no pixel is lost or duplicated
    fold = torch.nn.functional.pixel_unshuffle(x, 2)
    assert fold.shape == (2, 12, 14, 14) and torch.equal(torch.nn.functional.pixel_shuffle(fold, 2), x)
    # a change in one input pixel reaches the output (the patch path is wired through the UNet)
    x2 = x.clone()
    x2[0, 0, 5, 5] += 1.0
    assert (net(x2, torch.tensor([3, 700]), torch.tensor([1, 10])) - out)[0].abs().max() > 0


# The course's DDIM checkpoint (rosinality layout, ch 128, ch_mult 1,1,2,2,4,4, 2 res blocks,
# attention at stride 16): 113,673,219 parameters = 454.7 MB of float32, 427 state-dict entries.
COURSE_UNET_PARAMS = 113_673_219


@pytest.mark.slow
def test_course_ddim_unet_loads_a_fresh_state_dict_strictly() -> None:
    net = DDIMUNet()
    assert sum(p.numel() for p in net.parameters()) == COURSE_UNET_PARAMS
    state = DDIMUNet().state_dict()
    assert len(state) == 427
    expected = {"time.0.inv_freq": (64,), "time.1.weight": (512, 128), "time.3.weight": (512, 512),
                "down.0.weight": (128, 3, 3, 3), "down.1.resblocks.time.1.weight": (128, 512),
                "down.3.0.weight": (128, 128, 3, 3), "down.13.attention.qkv.weight": (1536, 512, 1, 1),
                "mid.0.attention.out.weight": (512, 512, 1, 1), "up.0.resblocks.skip.weight": (512, 1024, 1, 1),
                "up.3.1.weight": (512, 512, 3, 3), "out.0.weight": (128,), "out.2.weight": (3, 128, 3, 3)}
    for k, shape in expected.items():
        assert tuple(state[k].shape) == shape, k
    assert net.load_state_dict(state, strict=True).missing_keys == []
    bad = dict(state)
    bad.pop("out.2.bias")
    with pytest.raises(RuntimeError, match="out.2.bias"):
        net.load_state_dict(bad, strict=True)


def test_ddim_unet_norm_groups_changes_no_parameter_name_or_shape() -> None:
    """model.net.norm_groups (ddim_small: 8, i.e. 4 channels per group) builds every GroupNorm with
    that many groups; names and shapes stay the course's, so either net loads the other's weights."""
    sizes = dict(channel=32, channel_multiplier=(1, 2, 2, 2), n_res_blocks=1, attn_strides=(8,))
    a, b = DDIMUNet(**sizes), DDIMUNet(**sizes, norm_groups=8)
    norms = [m for m in b.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and {m.num_groups for m in norms} == {8}
    assert {m.num_groups for m in a.modules() if isinstance(m, torch.nn.GroupNorm)} == {32}
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    b.load_state_dict(a.state_dict(), strict=True)
    with pytest.raises(ValueError):
        DDIMUNet(**sizes, norm_groups=5)  # 32 channels do not split into 5 groups


class LoudEps(RandomEps):
    """RandomEps whose implied x_0 leaves [-1, 1], so clipping x_0 changes the result."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self.ab[t].view(-1, 1, 1, 1)
        return (1 - ab).sqrt() * x - ab.sqrt() * 3.0 * torch.tanh(self.conv(x))


def test_ddim_clip_x0_equals_diffusers_clip_sample() -> None:
    model = LoudEps()
    sched = DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                          clip_sample=True, clip_sample_range=1.0, set_alpha_to_one=True,
                          timestep_spacing="leading")
    sched.set_timesteps(20)
    x_T = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    x = x_T
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(model(x, t.expand(len(x))), int(t), x, eta=0.0,
                           use_clipped_model_output=True).prev_sample
    ours = sample(gs.DDIMScheduler(SCHEDULE, 20), model, x_T, x0_hook=clip_x0())
    unclipped = sample(gs.DDIMScheduler(SCHEDULE, 20), model, x_T)
    assert (ours - x).abs().max() < 1e-4
    assert (unclipped - x).abs().max() > 1e-2  # the clip mattered
    assert ours.abs().max() <= 1.0 + 1e-5


@pytest.mark.slow
def test_ddpm_clip_x0_equals_diffusers_clip_sample() -> None:
    model = LoudEps()
    sched = DDPMScheduler(beta_schedule="linear", clip_sample=True, clip_sample_range=1.0)
    sched.betas = sched.betas.double()
    sched.alphas = 1.0 - sched.betas
    sched.alphas_cumprod = torch.cumprod(sched.alphas, 0)
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    ours = sample(gs.DDPMScheduler(SCHEDULE), model, x_T, torch.Generator().manual_seed(5), x0_hook=clip_x0(-1.0, 1.0))
    gen, x = torch.Generator().manual_seed(5), x_T
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(model(x, t.expand(2)), t, x, generator=gen).prev_sample
    assert (ours - x.float()).abs().max() < 1e-4


def test_min_snr_weights_equal_diffusers_snr() -> None:
    from diffusers.training_utils import compute_snr

    from genda.diffusion.process import min_snr_weights

    t = torch.tensor([0, 1, 10, 100, 300, 500, 999])
    snr = compute_snr(DDPMScheduler(beta_schedule="linear"), t).double()
    ref = snr.clamp(max=5.0) / snr
    assert torch.allclose(min_snr_weights(BETAS, 5.0)[t], ref, rtol=1e-3)  # diffusers: float32
    assert float(min_snr_weights(BETAS, 5.0)[999]) == 1.0  # noisy steps keep full weight


def test_eps_loss_min_snr_weights_each_image() -> None:
    from genda.diffusion.process import min_snr_weights

    model, x0 = RandomEps(), torch.randn(4, 3, 8, 8)
    loss = eps_loss(model, x0, SCHEDULE, torch.Generator().manual_seed(7), min_snr_gamma=5.0)
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, 1000, (4,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    per = ((model(q_sample(x0, t, noise, BETAS), t) - noise) ** 2).flatten(1).mean(1)
    assert torch.allclose(loss, (min_snr_weights(BETAS, 5.0)[t].float() * per).mean())


def test_v_target_and_eps_from_v_match_diffusers() -> None:
    """v-prediction: the loss target is diffusers' `get_velocity`, and `EpsFromV` turns a v-net into
    the eps diffusers' DDIM derives for prediction_type='v_prediction', so a v-trained net samples
    through genda's eps schedulers exactly as diffusers samples it."""
    from genda.diffusion.process import EpsFromV, v_target

    g = torch.Generator().manual_seed(11)
    x0, noise = torch.randn(3, 3, 8, 8, generator=g), torch.randn(3, 3, 8, 8, generator=g)
    t = torch.tensor([0, 480, 980])
    ref = DDPMScheduler(beta_schedule="linear").get_velocity(x0, noise, t)
    assert torch.allclose(v_target(x0, noise, t, SCHEDULE), ref, atol=1e-5)
    v_net = RandomEps()  # any deterministic net (x, t) -> tensor, read as a v-prediction
    x_T = torch.randn(2, 3, 8, 8, generator=g)
    ours = sample(gs.DDIMScheduler(SCHEDULE, 50), EpsFromV(v_net, SCHEDULE), x_T, torch.Generator().manual_seed(1))
    sched = DDIMScheduler(beta_schedule="linear", prediction_type="v_prediction", clip_sample=False,
                          set_alpha_to_one=True, timestep_spacing="leading")
    sched.set_timesteps(50)
    x = x_T
    with torch.no_grad():
        for step_t in sched.timesteps:
            x = sched.step(v_net(x, step_t.expand(2)), step_t, x, eta=0.0).prev_sample
    assert (ours - x).abs().max() < 1e-3


def test_eps_loss_with_v_prediction_regresses_v() -> None:
    from genda.diffusion.process import min_snr_weights, v_target

    model, x0 = RandomEps(), torch.randn(4, 3, 8, 8)
    loss = eps_loss(model, x0, SCHEDULE, torch.Generator().manual_seed(7), prediction="v")
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, 1000, (4,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    pred = model(q_sample(x0, t, noise, BETAS), t)
    assert torch.allclose(loss, ((pred - v_target(x0, noise, t, BETAS)) ** 2).mean())
    w = min_snr_weights(BETAS, 5.0, "v")  # Hang et al.: min(SNR, gamma) / (SNR + 1) for v
    ab = alpha_bars(BETAS)
    assert torch.allclose(w, (ab / (1 - ab)).clamp(max=5.0) / (ab / (1 - ab) + 1))


def test_eps_loss_refuses_an_unknown_prediction() -> None:
    with pytest.raises(ValueError, match="prediction='x0'"):
        eps_loss(RandomEps(), torch.randn(2, 3, 8, 8), SCHEDULE, prediction="x0")
