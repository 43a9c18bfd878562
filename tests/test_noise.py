"""Clip noise: i.i.d. or correlated across frames (PYoCo's mixed noise), in training and sampling."""

import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor

from lumiere.noise import video_noise

SHAPE = (4, 3, 8, 16, 16)


def test_zero_correlation_is_the_plain_draw():
    expected = randn_tensor(SHAPE, generator=torch.Generator().manual_seed(0))
    assert torch.equal(video_noise(SHAPE, torch.Generator().manual_seed(0)), expected)


@pytest.mark.parametrize("correlation", [0.0, 0.5, 0.9])
def test_frames_are_correlated_as_asked_with_unit_variance(correlation):
    noise = video_noise((64, 3, 4, 16, 16), torch.Generator().manual_seed(1), correlation)
    first, second = noise[:, :, 0].flatten(), noise[:, :, 1].flatten()
    assert noise.var().item() == pytest.approx(1.0, abs=0.03)
    assert torch.corrcoef(torch.stack([first, second]))[0, 1].item() == pytest.approx(correlation, abs=0.03)
    # the shared part is per clip: different clips stay independent
    clips = noise[:, :, 0].flatten(1)
    assert torch.corrcoef(clips[:2])[0, 1].abs().item() < 0.1


def test_one_generator_per_video_reproduces_each_video_alone():
    batch = video_noise(SHAPE, [torch.Generator().manual_seed(seed) for seed in range(4)], 0.5)
    alone = video_noise((1, *SHAPE[1:]), torch.Generator().manual_seed(2), 0.5)
    assert torch.equal(batch[2:3], alone)


@pytest.mark.parametrize("correlation", [-0.1, 1.0])
def test_correlation_out_of_range_is_named(correlation):
    with pytest.raises(ValueError, match=f"noise_frame_correlation={correlation} is invalid"):
        video_noise(SHAPE, None, correlation)
