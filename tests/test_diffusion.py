"""The noise schedule, DDPM/DDIM schedulers, the guided sampling loop, the denoiser and the losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from motiongpt_cli.diffusion.denoiser import DenoiserConfig, MotionDenoiser
from motiongpt_cli.diffusion.losses import LossWeights, diffusion_loss
from motiongpt_cli.diffusion.sampler import SamplingOptions, sample
from motiongpt_cli.diffusion.schedule import DDIMScheduler, DDPMScheduler, NoiseSchedule, make_scheduler, randn
from motiongpt_cli.errors import MotionGPTError
from motiongpt_cli.motion.features import FOOT_CONTACTS, features_to_joints
from motiongpt_cli.motion.skeleton import FEATURE_DIM

# ---------------------------------------------------------------------------------------------------- schedule


def test_cosine_schedule_matches_closed_form():
    sched = NoiseSchedule(1000, "cosine")

    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    # away from the clipped last betas, alpha_bar_t = f((t+1)/T) / f(0)
    for t in (0, 10, 250, 500, 900):
        assert sched.alphas_cumprod[t] == pytest.approx(f((t + 1) / 1000) / f(0), rel=1e-9)
    assert np.all(np.diff(sched.alphas_cumprod) < 0)
    assert sched.betas.max() <= 0.999
    assert sched.alphas_cumprod[-1] < 1e-4  # the last step is essentially pure noise
    assert sched.alpha_bar(-1) == 1.0


def test_linear_schedule_and_bad_names():
    lin = NoiseSchedule(1000, "linear")
    assert lin.betas[0] == pytest.approx(1e-4) and lin.betas[-1] == pytest.approx(0.02)
    with pytest.raises(MotionGPTError, match="beta_schedule"):
        NoiseSchedule(1000, "sigmoid")
    with pytest.raises(MotionGPTError, match="at least 2"):
        NoiseSchedule(1)
    with pytest.raises(MotionGPTError, match="unknown sampler"):
        make_scheduler("euler", lin)
    with pytest.raises(MotionGPTError, match="eta"):
        DDIMScheduler(lin, eta=-1)


def test_add_noise_statistics():
    sched = NoiseSchedule(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((4, 20000), 2.0)
    noise = torch.randn(x0.shape, generator=g)
    t = torch.tensor([0, 100, 500, 999])
    xt = sched.add_noise(x0, noise, t)
    for i, step in enumerate(t.tolist()):
        abar = sched.alphas_cumprod[step]
        assert xt[i].mean().item() == pytest.approx(2 * math.sqrt(abar), abs=0.03)
        assert xt[i].std().item() == pytest.approx(math.sqrt(1 - abar), rel=0.03, abs=1e-3)


@pytest.mark.parametrize("n", [1, 10, 50, 1000])
def test_timesteps_trailing_and_distinct(n):
    s = DDIMScheduler(NoiseSchedule(1000))
    steps = s.set_timesteps(n)
    assert len(steps) == n == len(set(steps))
    assert steps[0] == 999
    if n > 1:
        assert steps[-1] == 0 and all(a > b for a, b in zip(steps, steps[1:], strict=False))
    assert s.previous_timestep(steps[-1]) == -1
    with pytest.raises(MotionGPTError, match="steps must be between"):
        s.set_timesteps(0)
    with pytest.raises(MotionGPTError, match="not in this scheduler"):
        s.previous_timestep(1234)


def test_ddim_eta_one_equals_ddpm_posterior():
    sched = NoiseSchedule(1000)
    ddpm, ddim = DDPMScheduler(sched), DDIMScheduler(sched, eta=1.0)
    ddpm.set_timesteps(20)
    ddim.set_timesteps(20)
    g = torch.Generator().manual_seed(1)
    x_t, x0 = torch.randn(3, 8, 5, generator=g), torch.randn(3, 8, 5, generator=g)
    for t in ddpm.timesteps[:-1]:
        a = ddpm.step(x0, t, x_t, torch.Generator().manual_seed(7))
        b = ddim.step(x0, t, x_t, torch.Generator().manual_seed(7))
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_ddim_eta_zero_is_deterministic_and_last_step_returns_x0():
    sched = NoiseSchedule(1000)
    s = DDIMScheduler(sched)
    s.set_timesteps(10)
    x_t, x0 = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    assert torch.equal(s.step(x0, 999, x_t, None), s.step(x0, 999, x_t, None))
    torch.testing.assert_close(s.step(x0, 0, x_t), x0)
    p = DDPMScheduler(sched)
    p.set_timesteps(10)
    torch.testing.assert_close(p.step(x0, 0, x_t), x0)


def test_randn_per_sample_generators():
    rows = randn((3, 4, 5), [torch.Generator().manual_seed(s) for s in (1, 2, 3)])
    alone = randn((1, 4, 5), [torch.Generator().manual_seed(2)])
    assert torch.equal(rows[1], alone[0])
    with pytest.raises(MotionGPTError, match="generators"):
        randn((2, 4), [torch.Generator()])


# ---------------------------------------------------------------------------------------------------- sampler


class _Fake(nn.Module):
    """A stand-in denoiser: ``fn(x_t, t, high, low, mask, high_keep, low_keep)`` gives x0; records batch sizes."""

    def __init__(self, fn, feature_dim=6, uses_low=True, max_frames=16):
        super().__init__()
        self.config = DenoiserConfig(
            feature_dim=feature_dim, width=8, layers=1, heads=2, ff_size=8, max_frames=max_frames,
            conditioning="dual" if uses_low else "high", high_dim=4, low_dim=4,
        )  # fmt: skip
        self.fn = fn
        self.batches: list[int] = []

    def forward(self, x_t, t, high, low, mask, high_keep, low_keep, *, pack=False):
        self.batches.append(x_t.shape[0])
        return self.fn(x_t, t, high, low, mask, high_keep, low_keep)


def _gaussian_oracle(schedule, mu, s):
    """The exact E[x0 | x_t] for data x0 ~ N(mu, s^2): the best possible x0 predictor."""

    def fn(x_t, t, *rest):
        abar = torch.as_tensor(schedule.alphas_cumprod, dtype=torch.float32)[t].view(-1, 1, 1)
        gain = abar.sqrt() * s**2 / (abar * s**2 + 1 - abar)
        return mu + gain * (x_t - abar.sqrt() * mu)

    return fn


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_sampling_with_the_optimal_denoiser_recovers_the_data_distribution(sampler):
    """With the exact E[x0 | x_t] of Gaussian data and all 1000 steps, both samplers reproduce the data's mean and
    standard deviation (fewer steps shrink the spread a little: 0.385 of 0.4 at DDIM-50, measured)."""
    steps = 1000
    schedule = NoiseSchedule(1000)
    mu, s = 1.5, 0.4
    model = _Fake(_gaussian_oracle(schedule, mu, s), feature_dim=50)
    B = 64
    out = sample(
        model, schedule, torch.zeros(B, 4), torch.zeros(B, 4), torch.full((B,), 16),
        SamplingOptions(steps=steps, sampler=sampler, guidance=1.0), torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert out.shape == (B, 16, 50)
    assert out.mean().item() == pytest.approx(mu, abs=0.01)
    assert out.std().item() == pytest.approx(s, rel=0.015)


def test_guidance_is_one_batched_forward_with_the_guidance_formula():
    cond_value, uncond_value = 3.0, 1.0

    def fn(x_t, t, high, low, mask, high_keep, low_keep):
        v = torch.where(high_keep, cond_value, uncond_value).to(x_t.dtype)
        return v.view(-1, 1, 1).expand_as(x_t).clone()

    model = _Fake(fn)
    B = 3
    out = sample(
        model, NoiseSchedule(100), torch.zeros(B, 4), torch.zeros(B, 4), torch.full((B,), 8),
        SamplingOptions(steps=5, guidance=2.5),
    )  # fmt: skip
    assert model.batches == [2 * B] * 5  # conditional and unconditional passes share one forward per step
    # DDIM's last step returns the x0 estimate: uncond + s (cond - uncond)
    torch.testing.assert_close(out, torch.full_like(out, uncond_value + 2.5 * (cond_value - uncond_value)))
    model.batches.clear()
    out = sample(model, NoiseSchedule(100), torch.zeros(B, 4), torch.zeros(B, 4), torch.full((B,), 8),
                 SamplingOptions(steps=5, guidance=1.0))  # fmt: skip
    assert model.batches == [B] * 5 and torch.allclose(out, torch.full_like(out, cond_value))


def test_sampler_keeps_and_masks():
    seen = {}

    def fn(x_t, t, high, low, mask, high_keep, low_keep):
        seen.update(high_keep=high_keep.clone(), low_keep=low_keep.clone(), mask=mask.clone())
        return torch.ones_like(x_t)

    model = _Fake(fn)
    use_low = torch.tensor([True, False])
    out = sample(model, NoiseSchedule(100), torch.zeros(2, 4), torch.zeros(2, 4), torch.tensor([8, 5]),
                 SamplingOptions(steps=3), use_low=use_low)  # fmt: skip
    assert seen["high_keep"].tolist() == [True, True, False, False]
    assert seen["low_keep"].tolist() == [True, False, False, False]
    assert seen["mask"][1].sum().item() == 5 and seen["mask"][3].sum().item() == 5
    assert out[1, 5:].abs().max().item() == 0  # padding is zeroed
    sample(model, NoiseSchedule(100), torch.zeros(2, 4), None, torch.tensor([8, 5]), SamplingOptions(steps=2))
    assert not seen["low_keep"].any()  # no low-level text given: high only
    with pytest.raises(MotionGPTError, match="lengths"):
        sample(model, NoiseSchedule(100), torch.zeros(1, 4), None, torch.tensor([17]), SamplingOptions(steps=2))
    with pytest.raises(MotionGPTError, match="steps"):
        SamplingOptions(steps=0)
    with pytest.raises(MotionGPTError, match="guidance"):
        SamplingOptions(guidance=-1)


# ---------------------------------------------------------------------------------------------------- denoiser


def _tiny(conditioning="dual", **kw) -> MotionDenoiser:
    torch.manual_seed(0)
    cfg = DenoiserConfig(width=32, layers=1, heads=2, ff_size=64, dropout=0.0, max_frames=24,
                         conditioning=conditioning, high_dim=8, low_dim=6, **kw)  # fmt: skip
    return MotionDenoiser(cfg).eval()


def _inputs(B=3, N=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, N, 263, generator=g), torch.randint(0, 1000, (B,), generator=g),
            torch.randn(B, 8, generator=g), torch.randn(B, 6, generator=g))  # fmt: skip


def test_denoiser_shapes_and_padding_invariance():
    model = _tiny()
    x, t, high, low = _inputs()
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[1, 12:] = False
    out = model(x, t, high, low, mask)
    assert out.shape == x.shape
    x2 = x.clone()
    x2[1, 12:] = 100.0  # change only the padding of sample 1
    out2 = model(x2, t, high, low, mask)
    torch.testing.assert_close(out[1, :12], out2[1, :12], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[0], out2[0])


@pytest.mark.parametrize("conditioning", ["dual", "high"])
def test_packed_training_forward_equals_the_padded_one_in_outputs_and_gradients(conditioning):
    torch.manual_seed(3)
    config = DenoiserConfig(width=32, layers=2, heads=4, ff_size=64, dropout=0.0, conditioning=conditioning,
                            high_dim=16, low_dim=8)  # fmt: skip
    padded, packed = MotionDenoiser(config).train(), MotionDenoiser(config).train()
    packed.load_state_dict(padded.state_dict())
    B, N = 4, 30
    x, t = torch.randn(B, N, FEATURE_DIM), torch.randint(0, 1000, (B,))
    high, low = torch.randn(B, 16), torch.randn(B, 8) if conditioning == "dual" else None
    mask = torch.arange(N)[None] < torch.tensor([30, 7, 1, 19])[:, None]
    keep = torch.tensor([True, False, True, True])
    target = torch.randn(B, N, FEATURE_DIM)
    outs = []
    for model, pack in ((padded, False), (packed, True)):
        out = model(x, t, high, low, mask, keep, keep.flip(0), pack=pack)
        (((out - target) ** 2).sum(-1) * mask).sum().backward()
        outs.append(out)
    torch.testing.assert_close(outs[1][mask], outs[0][mask], rtol=1e-5, atol=1e-5)
    assert torch.equal(outs[1][~mask], packed.output_proj.bias.expand(int((~mask).sum()), -1))  # padded rows: zeros
    for (name, a), (_, b) in zip(padded.named_parameters(), packed.named_parameters(), strict=True):
        # float rounding, relative to the gradient's scale (its entries reach ~1e3 here; the sums run in other orders)
        assert (b.grad - a.grad).abs().max() <= 1e-5 * a.grad.abs().max(), name
    # without padding there is nothing to pack: the same code path, bitwise
    full = torch.ones(B, N, dtype=torch.bool)
    assert torch.equal(packed(x, t, high, low, full, pack=True), packed(x, t, high, low, full))


@pytest.mark.parametrize("per_clip", [True, False])
def test_both_packed_attentions_equal_the_masked_encoder_even_with_holes_in_the_mask(per_clip):
    """Clip by clip (CPU) and batched on the padded layout (GPU) give the padded encoder's outputs and input
    gradients on valid tokens, also when a clip's valid tokens are not a prefix."""
    model = _tiny()  # eval, no dropout: the paths would draw it differently
    valid = torch.arange(25)[None] < torch.tensor([25, 8, 1, 14])[:, None]
    valid[0, 5:9] = False
    tokens = torch.randn(4, 25, 32, requires_grad=True)
    weights = torch.randn(4, 25, 32)
    grads = []
    for run in (lambda z: model.encoder(z, src_key_padding_mask=~valid),
                lambda z: model._encode_packed(z, valid, per_clip=per_clip)):  # fmt: skip
        out = run(tokens)
        ((out * weights)[valid]).sum().backward()
        grads.append((out[valid].detach(), tokens.grad[valid].clone()))
        tokens.grad = None
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-5, atol=1e-5)


class _Unpacked(nn.Module):
    """``model`` with every forward on the padded layout (the sampler asks for packed ones)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, *args, pack=False):
        return self.model(*args, pack=False)


@pytest.mark.parametrize("passes", ["batched", "separate"])
def test_sampling_packs_and_a_padded_batch_gives_each_clip_its_own_motion(passes):
    """The sampler's packed forwards give the clip frames of a padded batch what the padded forwards give (float
    rounding), and each clip is what it is when sampled alone: padding never leaks into a clip."""
    model = _tiny().eval()
    high, low = torch.randn(3, 8), torch.randn(3, 6)
    lengths = torch.tensor([24, 9, 16])
    options = SamplingOptions(steps=10, sampler="ddim", guidance=2.5, guidance_passes=passes)

    noise = list(torch.randn(11, 3, 24, FEATURE_DIM, generator=torch.Generator().manual_seed(40)))

    def draw(m, rows):
        n = int(lengths[rows].max())
        return sample(m, NoiseSchedule(1000), high[rows], low[rows], lengths[rows], options,
                      noise=[z[rows, :n] for z in noise])  # fmt: skip

    packed, padded = draw(model, [0, 1, 2]), draw(_Unpacked(model), [0, 1, 2])
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(packed[i, :n], padded[i, :n], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(packed[i, :n], draw(model, [i])[0, :n], rtol=1e-4, atol=1e-4)
    assert (packed[1, :9] - packed[2, :9]).abs().max() > 0.1  # the clips differ: the comparison means something


def test_denoiser_keep_masks_are_independent_per_text_and_sample():
    model = _tiny()
    x, t, high, low = _inputs()
    yes, no = torch.ones(3, dtype=torch.bool), torch.tensor([True, False, True])
    base = model(x, t, high, low, None, yes, no)
    # sample 1 does not see its low-level text: changing it changes nothing there, but does for sample 0
    low2 = low + 5
    moved = model(x, t, high, low2, None, yes, no)
    torch.testing.assert_close(base[1], moved[1])
    assert (base[0] - moved[0]).abs().max() > 1e-3
    # dropping the high-level text of every sample makes the output independent of it
    drop = torch.zeros(3, dtype=torch.bool)
    a = model(x, t, high, low, None, drop, yes)
    b = model(x, t, high * -3, low, None, drop, yes)
    torch.testing.assert_close(a, b)
    # fully unconditional: neither text matters
    u1 = model(x, t, high, low, None, drop, drop)
    u2 = model(x, t, torch.randn_like(high), torch.randn_like(low), None, drop, drop)
    torch.testing.assert_close(u1, u2)


def test_conditioning_variants():
    assert _tiny("dual").low_proj is not None
    for name in ("high", "concat"):
        model = _tiny(name)
        assert model.low_proj is None
        x, t, high, _ = _inputs()
        assert model(x, t, high).shape == x.shape
    with pytest.raises(MotionGPTError, match="needs low-level"):
        _tiny("dual")(*_inputs()[:3])
    with pytest.raises(MotionGPTError, match="unknown conditioning"):
        DenoiserConfig(conditioning="cross")
    with pytest.raises(MotionGPTError, match="divisible"):
        DenoiserConfig(width=30, heads=4)
    with pytest.raises(MotionGPTError, match="exceed"):
        _tiny()(torch.zeros(1, 25, 263), torch.zeros(1, dtype=torch.long), torch.zeros(1, 8), torch.zeros(1, 6))
    with pytest.raises(MotionGPTError, match="unknown denoiser settings"):
        DenoiserConfig.from_dict({"width": 32, "depth": 3})


def test_seeded_sampling_reproduces_and_is_batch_independent():
    model = _tiny()
    _, _, high, low = _inputs()
    opts = SamplingOptions(steps=4)
    lengths = torch.tensor([20, 16, 24])

    def gens():
        return [torch.Generator().manual_seed(s) for s in (10, 11, 12)]

    a = sample(model, NoiseSchedule(1000), high, low, lengths, opts, gens())
    b = sample(model, NoiseSchedule(1000), high, low, lengths, opts, gens())
    assert torch.equal(a, b)
    alone = sample(model, NoiseSchedule(1000), high[1:2], low[1:2], lengths[1:2], opts,
                   [torch.Generator().manual_seed(11)])  # fmt: skip
    torch.testing.assert_close(a[1, :16], alone[0], rtol=1e-4, atol=1e-4)


def test_flops_count_matches_a_manual_count():
    cfg = DenoiserConfig(width=64, layers=2, heads=4, ff_size=128, high_dim=8, low_dim=6)
    model = MotionDenoiser(cfg)
    n, d = 11, 64
    per_layer = 2 * n * (4 * d * d + 2 * d * 128) + 4 * n * n * d
    io = 2 * 10 * 263 * d * 2 + 2 * (2 * d * d + 14 * d)
    assert model.flops_per_forward(3, 10) == 3 * (2 * per_layer + io)


# ---------------------------------------------------------------------------------------------------- losses


@pytest.fixture(scope="module")
def real_batch(sample_features):
    f = torch.as_tensor(sample_features[:60])
    mean, std = f.mean(0), f.std(0).clamp(min=1e-2)
    x0 = ((f - mean) / std)[None].repeat(2, 1, 1)
    mask = torch.ones(2, 60, dtype=torch.bool)
    mask[1, 40:] = False
    return x0, mask, mean, std


def test_losses_are_zero_for_a_perfect_prediction(real_batch):
    x0, mask, mean, std = real_batch
    terms = diffusion_loss(x0.clone(), x0, mask, mean, std)
    for name in ("rec", "pos", "vel"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-10)
    # eq. 5 penalises the predicted feet moving while the ground truth says they are planted; real feet slide a
    # little on contact frames, so even the ground truth pays a small foot term (m^2 per frame)
    assert 0 < terms["foot"].item() < 1e-3
    assert terms["total"].item() == pytest.approx(terms["foot"].item(), rel=1e-6)


def test_reconstruction_loss_is_a_per_sample_masked_mean(real_batch):
    x0, mask, mean, std = real_batch
    pred = x0 + 0.1
    pred[1] = x0[1] + 0.3
    pred[1, 40:] = 99.0  # padding must not count
    terms = diffusion_loss(pred, x0, mask, mean, std, LossWeights(0, 0, 0))
    assert terms["rec"].item() == pytest.approx((0.01 + 0.09) / 2, rel=1e-5)
    assert set(terms) == {"rec", "total"}
    # the loss of a batch is the mean of its samples' losses (what makes DDP equal to one process)
    one = diffusion_loss(pred[:1], x0[:1], mask[:1], mean, std)["total"]
    two = diffusion_loss(pred[1:], x0[1:], mask[1:], mean, std)["total"]
    both = diffusion_loss(pred, x0, mask, mean, std)["total"]
    assert both.item() == pytest.approx((one.item() + two.item()) / 2, rel=1e-5)


def test_geometric_losses_match_their_equations(real_batch):
    x0, mask, mean, std = real_batch
    g = torch.Generator().manual_seed(0)
    pred = (x0 + 0.05 * torch.randn(x0.shape, generator=g)).requires_grad_()
    terms = diffusion_loss(pred, x0, mask, mean, std, LossWeights(2.0, 3.0, 4.0))
    jp, jt = features_to_joints(pred.detach() * std + mean), features_to_joints(x0 * std + mean)
    n = [60, 40]
    pos = np.mean([((jp[i, : n[i]] - jt[i, : n[i]]) ** 2).mean().item() for i in range(2)])
    vp, vt = jp[:, 1:] - jp[:, :-1], jt[:, 1:] - jt[:, :-1]
    vel = np.mean([((vp[i, : n[i] - 1] - vt[i, : n[i] - 1]) ** 2).mean().item() for i in range(2)])
    contact = ((x0 * std + mean)[:, :-1, FOOT_CONTACTS] > 0.5).float()
    fv = vp[:, :, [7, 10, 8, 11]] * contact[..., None]
    foot = np.mean([(fv[i, : n[i] - 1] ** 2).mean().item() for i in range(2)])
    assert terms["pos"].item() == pytest.approx(pos, rel=1e-4)
    assert terms["vel"].item() == pytest.approx(vel, rel=1e-4)
    assert terms["foot"].item() == pytest.approx(foot, rel=1e-4)
    assert foot > 0 and contact.sum() > 0  # the real clip has planted feet
    expected = terms["rec"] + 2 * terms["pos"] + 3 * terms["vel"] + 4 * terms["foot"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    terms["total"].backward()  # differentiable through features -> joints
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert pred.grad[1, 40:].abs().max().item() == 0  # padding gets no gradient
