"""The denoising objective: timestep draws, targets, Min-SNR weights, video-shaped noise offset."""

import pytest
import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from lumiere.training.objective import diffusion_loss, resolve_prediction_type, sample_noise, sample_timesteps


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_loss_targets_and_min_snr_weights(prediction_type):
    scheduler = DDPMScheduler(prediction_type=prediction_type)
    clean, noise = torch.randn(3, 3, 4, 8, 8), torch.randn(3, 3, 4, 8, 8)
    timesteps = torch.tensor([10, 500, 990])
    target = noise if prediction_type == "epsilon" else scheduler.get_velocity(clean, noise, timesteps)
    assert diffusion_loss(target, clean, noise, timesteps, scheduler) == 0

    output = target + 1.0  # squared error 1 everywhere
    snr = compute_snr(scheduler, timesteps)
    weight = snr.clamp(max=5.0) / (snr + 1 if prediction_type == "v_prediction" else snr)
    assert diffusion_loss(output, clean, noise, timesteps, scheduler) == pytest.approx(1.0)
    assert diffusion_loss(output, clean, noise, timesteps, scheduler, snr_gamma=5.0) == pytest.approx(
        weight.mean().item(), rel=1e-5
    )


def test_pixel_weights_are_normalised_per_sample():
    scheduler = DDPMScheduler(prediction_type="epsilon")
    clean, noise = torch.randn(2, 3, 4, 8, 8), torch.randn(2, 3, 4, 8, 8)
    timesteps = torch.tensor([10, 500])
    output = noise + torch.randn(2, 3, 4, 8, 8)
    plain = diffusion_loss(output, clean, noise, timesteps, scheduler)
    assert diffusion_loss(output, clean, noise, timesteps, scheduler, pixel_weight=torch.ones(2, 1, 4, 8, 8)) == (
        pytest.approx(plain.item(), rel=1e-6)
    )
    known = torch.zeros(2, 1, 4, 8, 8)
    known[:, :, 0] = 1  # frame 0 known
    squared = (output - noise) ** 2
    on_known, elsewhere = squared[:, :, :1].flatten(1).mean(1), squared[:, :, 1:].flatten(1).mean(1)
    expected = ((4 * on_known * 1 + elsewhere * 3) / (4 * 1 + 3)).mean()  # one frame of four, weighed 4x
    weighted = diffusion_loss(output, clean, noise, timesteps, scheduler, pixel_weight=1 + 3 * known)
    assert weighted == pytest.approx(expected.item(), rel=1e-5)


def test_learned_variance_channels_are_not_scored():
    scheduler = DDPMScheduler(prediction_type="epsilon")
    clean, noise = torch.randn(1, 3, 4, 8, 8), torch.randn(1, 3, 4, 8, 8)
    output = torch.cat([noise, torch.full_like(noise, 100.0)], dim=1)  # IF: prediction + variance
    assert diffusion_loss(output, clean, noise, torch.tensor([5]), scheduler) == 0


def test_noise_offset_is_constant_over_frames_and_pixels():
    generator = torch.Generator().manual_seed(0)
    plain = sample_noise((2, 3, 4, 8, 8), 0.0, torch.Generator().manual_seed(0), torch.device("cpu"), torch.float32)
    offset = sample_noise((2, 3, 4, 8, 8), 0.5, generator, torch.device("cpu"), torch.float32)
    shift = offset - plain
    assert torch.allclose(shift, shift[:, :, :1, :1, :1].expand_as(shift))
    assert shift[:, :, 0, 0, 0].abs().min() > 0  # per sample and channel


def test_auto_prediction_type_keeps_the_pretrained_one():
    assert resolve_prediction_type("auto", "epsilon", from_scratch=False) == "epsilon"
    assert resolve_prediction_type("auto", "epsilon", from_scratch=True) == "v_prediction"
    assert resolve_prediction_type("epsilon", "v_prediction", from_scratch=True) == "epsilon"


def test_unbiased_timesteps_are_the_plain_uniform_draw():
    drawn = sample_timesteps(64, 1000, torch.Generator().manual_seed(3))
    assert torch.equal(drawn, torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("strategy", ["later", "earlier"])
def test_timestep_bias_favours_the_chosen_end(strategy):
    # portion 0.1 at multiplier 9: the favoured tenth gets 0.9 / (0.9 + 0.9) = half the draws
    drawn = sample_timesteps(20000, 1000, torch.Generator().manual_seed(0), strategy, 0.1, 9.0)
    favoured = drawn >= 900 if strategy == "later" else drawn < 100
    assert drawn.min() >= 0 and drawn.max() <= 999
    assert favoured.float().mean().item() == pytest.approx(0.5, abs=0.02)
    others = torch.bincount(drawn[~favoured], minlength=1000)
    assert (others > 0).sum() > 850  # the rest of the range is still drawn


def test_unknown_timestep_bias_is_refused_by_name():
    with pytest.raises(ValueError, match="bias_strategy='middle'"):
        sample_timesteps(4, 1000, torch.Generator(), "middle")
