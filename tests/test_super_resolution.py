"""Spatial super-resolution: the low-resolution input as the U-Net reads it (training and
sampling alike), LumiereSuperResolutionPipeline end to end (also over temporal windows),
and SR training in image and video mode."""

import pytest
import torch
from diffusers import DDPMScheduler, DiffusionPipeline

from lumiere import LumiereSuperResolutionPipeline
from lumiere.data.shapes import write_dataset
from lumiere.super_resolution import conditioning, downsample, residual_base, upsample
from lumiere.testing import make_pixel_t2i_pipeline, make_scheduler, make_super_resolution_pipeline
from lumiere.training import TrainConfig, train


@pytest.fixture
def pipe(tmp_path):
    pipe = make_super_resolution_pipeline(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _low_res(frames: int) -> torch.Tensor:
    return torch.rand(frames, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_downsampling_averages_blocks_and_refuses_sizes_it_cannot_divide():
    image = torch.arange(16.0).view(1, 1, 4, 4)
    assert downsample(image, 2).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    clip = torch.rand(2, 3, 5, 8, 8)
    assert torch.equal(downsample(clip, 4)[:, :, 3], downsample(clip[:, :, 3], 4))  # frame by frame
    with pytest.raises(ValueError, match=r"a 8x8 clip cannot be shrunk by super_resolution_scale=3 exactly"):
        downsample(clip, 3)


def test_the_input_is_augmented_to_its_level_then_upsampled():
    scheduler = DDPMScheduler.from_config(make_scheduler().config)
    low = torch.rand(2, 3, 4, 8, 8) * 2 - 1
    clean = conditioning(low, (16, 16), torch.tensor([0, 0]), scheduler, torch.Generator().manual_seed(0))
    assert clean.shape == (2, 3, 4, 16, 16)
    assert (clean - upsample(low, (16, 16))).abs().mean() < 0.05  # level 0: nearly the input
    noisy = conditioning(low, (16, 16), torch.tensor([0, 900]), scheduler, torch.Generator().manual_seed(0))
    assert (noisy[1] - upsample(low, (16, 16))[1]).abs().mean() > 0.3  # level 900: mostly noise


def test_upscaling_reads_the_input_and_its_noise_level_in_both_branches(pipe, monkeypatch):
    seen = []
    forward = pipe.unet.forward

    def spy(sample, timestep, *args, class_labels=None, **kwargs):
        seen.append((sample.clone(), class_labels.clone()))
        return forward(sample, timestep, *args, class_labels=class_labels, **kwargs)

    monkeypatch.setattr(pipe.unet, "forward", spy)
    frames = pipe.unet.temporal_factor
    video = _low_res(frames)
    out = pipe(video, "a red circle", noise_level=0, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, frames, 32, 32, 3)  # 2x the 16 px input
    sample, labels = seen[0]
    assert sample.shape == (2, 6, frames, 32, 32) and labels.tolist() == [0, 0]  # guidance: 2 branches, one pass
    expected = upsample((video * 2 - 1).permute(1, 0, 2, 3)[None], (32, 32))
    assert (sample[1, 3:] - expected[0]).abs().mean() < 0.05  # level 0: nearly the upsampled input
    assert torch.equal(sample[0, 3:], sample[1, 3:])  # the unconditional branch sees the input too


def test_upscaling_is_reproducible_and_the_noise_level_matters(pipe):
    video = _low_res(pipe.unet.temporal_factor)
    run = dict(num_inference_steps=2, output_type="pt")
    a = pipe(video, "a red circle", generator=torch.Generator().manual_seed(0), **run).frames
    b = pipe(video, "a red circle", generator=torch.Generator().manual_seed(0), **run).frames
    c = pipe(video, "a red circle", noise_level=600, generator=torch.Generator().manual_seed(0), **run).frames
    assert torch.equal(a, b) and not torch.allclose(a, c, atol=1e-3)


def test_long_clips_upscale_over_temporal_windows(pipe):
    factor = pipe.unet.temporal_factor
    video = _low_res(3 * factor)
    run = dict(num_inference_steps=2, output_type="latent")
    whole = pipe(video, "a red circle", generator=torch.Generator().manual_seed(0), **run).frames
    one = pipe(video, "a red circle", window_size=3 * factor, generator=torch.Generator().manual_seed(0), **run).frames
    assert torch.equal(one, whole)  # one window as long as the clip: the whole-clip model
    windowed = pipe(video, "a red circle", window_size=2 * factor, window_stride=factor,
                    generator=torch.Generator().manual_seed(0), **run).frames  # fmt: skip
    assert windowed.shape == whole.shape and not torch.allclose(windowed, whole, atol=1e-4)


def test_bad_upscaling_inputs_name_the_argument(pipe):
    video = _low_res(pipe.unet.temporal_factor)
    with pytest.raises(ValueError, match=r"noise_level must be an integer in \[0, 999\]; got 1000"):
        pipe(video, "a red circle", noise_level=1000)
    with pytest.raises(ValueError, match=r"height=36 must be a positive multiple of 8"):
        pipe(video, "a red circle", height=36)
    with pytest.raises(TypeError, match=r"got unexpected arguments \['strength'\]"):
        pipe(video, "a red circle", strength=0.5)
    with pytest.raises(ValueError, match=r"vae must be None"):
        LumiereSuperResolutionPipeline(**{**pipe.components, "vae": object()})


def test_a_saved_upscaler_loads_with_its_scale(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "sr")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "sr")
    assert type(loaded) is LumiereSuperResolutionPipeline and loaded.config.super_resolution_scale == 2


def test_a_residual_upscaler_adds_the_upsampled_input_to_what_it_samples(pipe, tmp_path):
    residual = LumiereSuperResolutionPipeline(**pipe.components, super_resolution_residual=True)
    video = _low_res(pipe.unet.temporal_factor)
    call = dict(num_inference_steps=2, output_type="latent")
    plain = pipe(video, "a red circle", generator=torch.Generator().manual_seed(0), **call).frames
    summed = residual(video, "a red circle", generator=torch.Generator().manual_seed(0), **call).frames
    base = residual_base((video * 2 - 1).permute(1, 0, 2, 3)[None], (32, 32))
    torch.testing.assert_close(summed - plain, base, rtol=0, atol=1e-5)
    residual.save_pretrained(tmp_path / "residual")
    assert DiffusionPipeline.from_pretrained(tmp_path / "residual").config.super_resolution_residual is True
    with pytest.raises(ValueError, match=r"super_resolution_residual must be a bool; got 'yes'"):
        LumiereSuperResolutionPipeline(**pipe.components, super_resolution_residual="yes")


@pytest.fixture(scope="module")
def sr_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sr-training")
    make_pixel_t2i_pipeline("sr").save_pretrained(root / "t2i")
    write_dataset(root / "clips", 4, num_frames=8, size=32, seed=0)
    write_dataset(root / "stills", 8, size=32, seed=0, images=True)
    return root


def _sr_config(files, output_dir, **overrides):
    values = dict(
        pretrained=str(files / "t2i"), train_data=str(files / "stills"), output_dir=str(output_dir), mode="image",
        resolution=16, max_train_steps=2, learning_rate=1e-3, lr_warmup_steps=0, report_to="none", seed=0,
        super_resolution_scale=2, super_resolution_noise_level=300,
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def test_sr_training_from_stills_then_clips_makes_an_upscaler(sr_files, tmp_path, monkeypatch):
    import lumiere.training.trainer as trainer

    levels = []
    conditioning_fn = trainer.super_resolution.conditioning

    def recording(low, size, level, scheduler, generator):
        levels.append((tuple(low.shape), tuple(size), level.tolist()))
        return conditioning_fn(low, size, level, scheduler, generator)

    monkeypatch.setattr(trainer.super_resolution, "conditioning", recording)
    train(_sr_config(sr_files, tmp_path / "sr-2d", train_batch_size=4))
    assert [shape for shape, _, _ in levels] == [(4, 3, 8, 8)] * 2  # stills of 16 px shrunk to 8
    assert all(0 <= level <= 300 for _, _, batch in levels for level in batch)
    result = train(_sr_config(sr_files, tmp_path / "sr", mode="video", pretrained=str(tmp_path / "sr-2d"),
                              train_data=str(sr_files / "clips"), num_frames=4))  # fmt: skip
    assert levels[-1][0] == (1, 3, 4, 8, 8) and levels[-1][1] == (16, 16)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    upscaler = DiffusionPipeline.from_pretrained(tmp_path / "sr")
    assert type(upscaler) is LumiereSuperResolutionPipeline and upscaler.config.super_resolution_scale == 2
    upscaler.set_progress_bar_config(disable=True)
    out = upscaler(torch.rand(4, 3, 8, 8), "a red circle", height=16, width=16, num_inference_steps=2).frames
    assert out.shape == (1, 4, 16, 16, 3)


def test_residual_sr_training_diffuses_the_clip_minus_its_upsampled_input(sr_files, tmp_path, monkeypatch):
    import lumiere.training.trainer as trainer

    targets = []
    add_noise = DDPMScheduler.add_noise

    def recording(self, clean, noise, timesteps):
        targets.append(clean.clone())
        return add_noise(self, clean, noise, timesteps)

    monkeypatch.setattr(DDPMScheduler, "add_noise", recording)
    batches = []
    loss = trainer._loss

    def keep_batch(batch, *args, **kwargs):
        batches.append(batch["pixel_values"].clone())
        return loss(batch, *args, **kwargs)

    monkeypatch.setattr(trainer, "_loss", keep_batch)
    train(_sr_config(sr_files, tmp_path / "sr-res", mode="video", train_data=str(sr_files / "clips"), num_frames=4,
                     max_train_steps=1, super_resolution_residual=True))  # fmt: skip
    clean = batches[0]
    expected = clean - upsample(downsample(clean, 2), clean.shape[-2:])
    torch.testing.assert_close(targets[0], expected)  # the first add_noise: the target; the next: the input
    assert DiffusionPipeline.from_pretrained(tmp_path / "sr-res").config.super_resolution_residual is True


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(super_resolution_scale=0, super_resolution_residual=True), r"super_resolution_residual=True needs"),
        (dict(conditioning=True, mode="video"), r"super_resolution_scale and conditioning cannot be combined"),
        (dict(resolution=18, super_resolution_scale=4), r"resolution=18 is not a multiple of super_resolution_scale=4"),
        (dict(validation_prompts=["a red circle"]), r"validation_prompts are text-to-video samples"),
        (dict(super_resolution_noise_level=1000), r"super_resolution_noise_level must be an integer in \[0, 999\]"),
    ],
)
def test_bad_sr_training_options_name_the_option(sr_files, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _sr_config(sr_files, tmp_path / "x", **overrides)
