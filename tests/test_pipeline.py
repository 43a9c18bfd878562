import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDPMScheduler, DiffusionPipeline
from einops import rearrange

from lumiere import LumierePipeline, LumierePipelineOutput, SpaceTimeUNet
from lumiere.testing import (
    make_bert,
    make_pixel_lumiere_pipeline,
    make_sd_pipeline,
    make_unet2d,
    perturb_temporal,
)

FRAMES = 8


@pytest.fixture
def pixel_pipe(tmp_path):
    pipe = make_pixel_lumiere_pipeline(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def latent_pipe():
    pipe = LumierePipeline.from_text_to_image(make_sd_pipeline())
    perturb_temporal(pipe.unet)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(params=["pixel", "latent"])
def pipe(request):
    return request.getfixturevalue(f"{request.param}_pipe")


def run(pipe, seed=0, **kwargs):
    kwargs = {"prompt": "a red circle moving right", "num_frames": FRAMES, "num_inference_steps": 2, **kwargs}
    return pipe(generator=torch.Generator().manual_seed(seed), **kwargs)


def test_output_types_shapes_and_dtypes(pipe):
    size = 16
    np_frames = run(pipe, height=size, width=size).frames
    assert isinstance(np_frames, np.ndarray) and np_frames.dtype == np.float32
    assert np_frames.shape == (1, FRAMES, size, size, 3)
    assert np_frames.min() >= 0 and np_frames.max() <= 1

    pt_frames = run(pipe, height=size, width=size, output_type="pt").frames
    assert pt_frames.shape == (1, FRAMES, 3, size, size) and pt_frames.dtype == torch.float32
    assert np.allclose(pt_frames.permute(0, 1, 3, 4, 2).numpy(), np_frames, atol=1e-6)

    pil_frames = run(pipe, height=size, width=size, output_type="pil").frames
    assert len(pil_frames) == 1 and len(pil_frames[0]) == FRAMES
    assert all(isinstance(image, PIL.Image.Image) and image.size == (size, size) for image in pil_frames[0])

    latents = run(pipe, height=size, width=size, output_type="latent").frames
    factor = pipe.vae_scale_factor
    assert latents.shape == (1, pipe.num_channels_latents, FRAMES, size // factor, size // factor)


def test_default_size_comes_from_the_unet(pixel_pipe, latent_pipe):
    assert run(pixel_pipe).frames.shape == (1, FRAMES, 16, 16, 3)  # sample_size 16, pixels
    assert run(latent_pipe).frames.shape == (1, FRAMES, 16, 16, 3)  # sample_size 8, VAE x2


def test_dict_and_tuple_outputs_are_equal(pipe):
    as_dict = run(pipe)
    as_tuple = run(pipe, return_dict=False)
    assert isinstance(as_dict, LumierePipelineOutput) and isinstance(as_tuple, tuple)
    assert np.array_equal(as_dict.frames, as_tuple[0])


def test_num_videos_per_prompt_and_batch_of_one(pipe):
    frames = run(pipe, prompt=["a red circle", "a blue square"], num_videos_per_prompt=2).frames
    assert frames.shape[0] == 4
    single = run(pipe, prompt="a red circle").frames
    batch_of_one = run(pipe, prompt=["a red circle"]).frames
    assert np.abs(single - batch_of_one).max() < 1e-6


def test_same_seed_same_video_other_seed_other_video(pipe):
    first, again, other = run(pipe, seed=3).frames, run(pipe, seed=3).frames, run(pipe, seed=4).frames
    assert np.array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3


def test_classifier_free_guidance_on_and_off(pipe):
    batches = []
    original = pipe.unet.forward

    def spy(sample, *args, **kwargs):
        batches.append(sample.shape[0])
        return original(sample, *args, **kwargs)

    pipe.unet.forward = spy
    guided = run(pipe, guidance_scale=6.0, output_type="latent").frames
    unguided = run(pipe, guidance_scale=1.0, output_type="latent").frames
    assert batches == [2, 2, 1, 1]  # two steps each; guidance batches both branches
    assert (guided - unguided).abs().max() > 1e-4
    negative = run(pipe, guidance_scale=6.0, negative_prompt="a blue square", output_type="latent").frames
    assert (guided - negative).abs().max() > 1e-4


def test_callback_reads_and_replaces_tensors(pipe):
    seen = []

    def callback(pipeline, step, timestep, tensors):
        seen.append((step, int(timestep), tuple(tensors["latents"].shape), tuple(tensors["prompt_embeds"].shape)))
        if step == pipeline.num_timesteps - 1:
            return {"latents": torch.zeros_like(tensors["latents"])}
        return {}

    latents = run(
        pipe, num_inference_steps=3, output_type="latent", callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"],
    ).frames  # fmt: skip
    assert [step for step, *_ in seen] == [0, 1, 2]
    assert [t for _, t, *_ in seen] == pipe.scheduler.timesteps.tolist()
    assert torch.count_nonzero(latents) == 0
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs has \\['noise'\\]"):
        run(pipe, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["noise"])


def test_prompt_embeds_instead_of_prompt(pipe):
    embeds, negative = pipe.encode_prompt("a red circle", pipe.device, 1, True)
    from_text = run(pipe, prompt="a red circle").frames
    from_embeds = run(pipe, prompt=None, prompt_embeds=embeds, negative_prompt_embeds=negative).frames
    assert np.abs(from_text - from_embeds).max() < 1e-6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_frames": 6}, r"num_frames=6 must be a positive multiple of 4; nearest valid: 4 or 8"),
        ({"height": 20}, r"height=20 must be a positive multiple of 8; nearest valid: 16 or 24"),
        ({"output_type": "mp4"}, r"output_type='mp4' is not one of"),
        ({"num_inference_steps": 0}, r"num_inference_steps must be an integer >= 1; got 0"),
        ({"prompt": None}, r"exactly one of prompt and prompt_embeds"),
        ({"negative_prompt": ["x", "y"]}, r"negative_prompt has 2 entries but there are 1 prompts"),
    ],
)
def test_bad_arguments_are_named(latent_pipe, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(latent_pipe, **kwargs)


def test_save_load_round_trip(pipe, tmp_path):
    expected = run(pipe).frames
    pipe.save_pretrained(tmp_path / "saved")
    for loader in (LumierePipeline, DiffusionPipeline):
        loaded = loader.from_pretrained(tmp_path / "saved")
        assert type(loaded) is LumierePipeline
        assert isinstance(loaded.unet, SpaceTimeUNet)
        assert (loaded.vae is None) == (pipe.vae is None)
        loaded.set_progress_bar_config(disable=True)
        assert np.abs(run(loaded).frames - expected).max() < 5e-4


def test_noise_frame_correlation_is_config_and_shapes_the_initial_noise(pixel_pipe, tmp_path):
    assert pixel_pipe.config.noise_frame_correlation == 0
    shape = (1, 3, FRAMES, 16, 16)

    def initial_noise(pipe):
        return pipe.prepare_latents(
            *shape[:3], 16, 16, torch.float32, torch.device("cpu"), torch.Generator().manual_seed(0)
        )

    independent = initial_noise(pixel_pipe)
    pixel_pipe.register_to_config(noise_frame_correlation=0.75)
    pixel_pipe.save_pretrained(tmp_path / "saved")
    loaded = LumierePipeline.from_pretrained(tmp_path / "saved")
    assert loaded.config.noise_frame_correlation == 0.75
    correlated = initial_noise(loaded)
    frames = rearrange(correlated, "b c f h w -> f (b c h w)")
    assert torch.corrcoef(frames).triu(1)[torch.ones(FRAMES, FRAMES).triu(1).bool()].mean() > 0.6
    shared = correlated - 0.5 * independent  # sqrt(1 - 0.75) of the same i.i.d. draw, plus a part shared by all frames
    assert torch.allclose(shared, shared[:, :, :1].expand_as(shared), atol=1e-6)
    with pytest.raises(ValueError, match="noise_frame_correlation=1.5 is invalid"):
        LumierePipeline(**loaded.components, noise_frame_correlation=1.5)


def test_from_text_to_image_folder(sd_folder):
    pipe = LumierePipeline.from_text_to_image(sd_folder, temporal_downsample=(True, False))
    assert isinstance(pipe.unet, SpaceTimeUNet) and pipe.vae is not None
    assert pipe.unet.temporal_factor == 2
    pipe.set_progress_bar_config(disable=True)
    assert run(pipe, num_frames=6).frames.shape == (1, 6, 16, 16, 3)
    with pytest.raises(ValueError, match="path_or_pipeline='/nonexistent' is not found; give a saved pipeline folder"):
        LumierePipeline.from_text_to_image("/nonexistent")


def test_static_video_of_inflated_pipeline_matches_text_to_image_denoiser(sd_folder):
    """With untrained temporal layers, every frame of a static start follows the T2I model."""
    text_to_image = DiffusionPipeline.from_pretrained(sd_folder)
    pipe = LumierePipeline.from_text_to_image(text_to_image)
    pipe.set_progress_bar_config(disable=True)
    noise = torch.randn(1, 4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    video = run(pipe, latents=noise.expand(-1, -1, FRAMES, -1, -1), output_type="latent").frames
    text_to_image.set_progress_bar_config(disable=True)
    image = text_to_image(
        "a red circle moving right", num_inference_steps=2, latents=noise[:, :, 0], output_type="latent"
    ).images
    assert (video - image[:, :, None]).abs().max() < 1e-4


def test_learned_variance_unet_is_guided_on_prediction_channels(tmp_path):
    encoder, tokenizer = make_bert(tmp_path)
    unet = perturb_temporal(SpaceTimeUNet.from_unet2d(make_unet2d("if")))
    scheduler = DDPMScheduler(variance_type="learned_range")
    pipe = LumierePipeline(unet=unet, scheduler=scheduler, text_encoder=encoder, tokenizer=tokenizer)
    pipe.set_progress_bar_config(disable=True)
    frames = run(pipe, num_frames=4, guidance_scale=4.0).frames
    assert frames.shape == (1, 4, 16, 16, 3) and np.isfinite(frames).all()


def test_bfloat16_pipeline(latent_pipe):
    latent_pipe.to(torch.bfloat16)
    assert latent_pipe.unet.dtype == torch.bfloat16 and latent_pipe.vae.dtype == torch.bfloat16
    frames = run(latent_pipe, output_type="pt").frames
    assert frames.dtype == torch.float32 and torch.isfinite(frames).all()


def test_callback_can_replace_prompt_embeds(latent_pipe):
    other, _ = latent_pipe.encode_prompt("a blue square", latent_pipe.device, 1, False)

    def swap(pipeline, step, timestep, tensors):
        return {"prompt_embeds": other} if step == 0 else {}

    kwargs = {"num_inference_steps": 3, "output_type": "latent"}
    plain = run(latent_pipe, **kwargs).frames
    swapped = run(latent_pipe, callback_on_step_end=swap, **kwargs).frames
    target = run(latent_pipe, prompt="a blue square", **kwargs).frames
    assert (plain - swapped).abs().max() > 1e-4
    # Only the first step used the original prompt, so the result differs from both runs.
    assert (target - swapped).abs().max() > 1e-6


def test_the_pipeline_computes_in_its_dtype_unless_asked(latent_pipe, monkeypatch):
    """diffusers' convention: a float32 pipeline computes in float32 by default, whatever the
    hardware; autocast=True opts into bf16 where it is native."""
    import lumiere.performance as performance

    fast = performance.fast_autocast_dtype("cpu")
    assert fast == (torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None)
    monkeypatch.setattr(performance, "fast_autocast_dtype", lambda device: torch.bfloat16)
    seen = []
    hook = latent_pipe.unet.conv_in.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    default = run(latent_pipe, output_type="pt").frames
    assert set(seen) == {torch.float32}
    seen.clear()
    bf16 = run(latent_pipe, output_type="pt", autocast=True).frames
    hook.remove()
    assert set(seen) == {torch.bfloat16}
    assert 0 < (bf16 - default).abs().max() < 0.05
