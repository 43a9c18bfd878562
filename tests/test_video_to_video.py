"""Video-to-video (SDEdit) end to end on tiny models, pixel and latent space."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DiffusionPipeline

from lumiere import LumierePipeline, LumiereVideoToVideoPipeline
from lumiere.testing import make_inflated_pipeline, make_pixel_lumiere_pipeline
from lumiere.video import export_to_gif

FRAMES, SIZE = 4, 16
RUN = dict(num_inference_steps=4, guidance_scale=2.0, output_type="pt")


@pytest.fixture(scope="module")
def t2v(tmp_path_factory):
    pipe = make_pixel_lumiere_pipeline(tmp_path_factory.mktemp("vocab"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def v2v(t2v):
    pipe = LumiereVideoToVideoPipeline.from_pipe(t2v)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _video(seed=0, frames=FRAMES, size=SIZE):
    return torch.rand(frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _seed(seed=0):
    return torch.Generator().manual_seed(seed)


def _steps_run(pipe, **kwargs):
    steps = []
    pipe(_video(), "a circle", callback_on_step_end=lambda p, i, t, tensors: steps.append(int(t)) or {}, **kwargs)
    return steps


def test_strength_zero_returns_the_input(v2v):
    out = v2v(_video(), "a circle", strength=0.0, generator=_seed(), **RUN).frames
    assert out.shape == (1, FRAMES, 3, SIZE, SIZE)
    assert (out[0] - _video()).abs().max() < 1e-6  # [0, 1] -> [-1, 1] -> [0, 1] in float32


def test_strength_one_is_text_to_video_from_the_same_noise(t2v, v2v):
    expected = t2v("a circle", FRAMES, generator=_seed(3), **RUN).frames
    assert torch.equal(v2v(_video(), "a circle", strength=1.0, generator=_seed(3), **RUN).frames, expected)


@pytest.mark.parametrize("steps, strength, run", [(4, 0.5, 2), (10, 0.35, 3), (4, 1.0, 4), (4, 0.2, 0)])
def test_the_steps_run_are_the_last_int_steps_times_strength(v2v, steps, strength, run):
    if run == 0:
        with pytest.warns(UserWarning, match="0 steps"):
            assert _steps_run(v2v, strength=strength, num_inference_steps=steps, output_type="pt") == []
        return
    v2v.scheduler.set_timesteps(steps)
    tail = [int(t) for t in v2v.scheduler.timesteps[steps - run :]]
    assert _steps_run(v2v, strength=strength, num_inference_steps=steps, output_type="pt") == tail


def test_partial_strength_starts_from_the_video_noised_to_the_first_step_run(v2v):
    """One step at strength 1/4 of 4: DDIM from the video noised with the generator's noise."""
    video, seen = _video(), []

    def first_input(module, args):
        seen.append(args[0][:1].clone())

    hook = v2v.unet.register_forward_pre_hook(first_input)
    try:
        v2v(video, "a circle", strength=0.25, generator=_seed(5), **RUN)
    finally:
        hook.remove()
    v2v.scheduler.set_timesteps(4)
    t = v2v.scheduler.timesteps[-1:]
    noise = torch.randn((1, 3, FRAMES, SIZE, SIZE), generator=_seed(5))
    clip = video.permute(1, 0, 2, 3)[None] * 2 - 1
    expected = v2v.scheduler.add_noise(clip, noise, t)
    assert len(seen) == 1 and torch.allclose(seen[0], expected, atol=1e-6)


def test_edits_keep_more_of_the_video_at_lower_strength_and_repeat_with_the_seed(v2v):
    video = _video().permute(0, 2, 3, 1)[None]  # (1, F, H, W, 3) as np output
    errors = []
    for strength in (0.25, 0.5, 1.0):
        out = v2v(_video(), "a circle", strength=strength, generator=_seed(), num_inference_steps=4).frames
        errors.append(float(np.abs(out - video.numpy()).mean()))
    assert errors[0] < errors[1] < errors[2], errors
    again = v2v(_video(), "a circle", strength=0.5, generator=_seed(), num_inference_steps=4).frames
    out = v2v(_video(), "a circle", strength=0.5, generator=_seed(), num_inference_steps=4).frames
    assert np.array_equal(again, out)


def test_takes_pil_arrays_and_a_video_file_and_crops_to_the_model_size(v2v, tmp_path):
    frames = (_video(size=24).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)[:, :, 2:22]  # 24x20
    pil = [PIL.Image.fromarray(frame) for frame in frames]
    path = export_to_gif(frames, tmp_path / "clip.gif")
    outputs = [v2v(video, "a circle", strength=0.0, **RUN).frames for video in (frames, pil, path)]
    assert all(out.shape == (1, FRAMES, 3, SIZE, SIZE) for out in outputs)
    assert torch.equal(outputs[0], outputs[1])
    assert (outputs[2] - outputs[0]).abs().mean() < 0.05  # the GIF's palette


def test_latent_space_encodes_through_the_vae_in_chunks():
    pipe = LumiereVideoToVideoPipeline.from_pipe(make_inflated_pipeline("latent", temporal_seed=1))
    pipe.set_progress_bar_config(disable=True)
    size = 8 * pipe.vae_scale_factor
    video = _video(size=size)
    out = pipe(video, "a circle", strength=0.0, generator=_seed(), decode_chunk_size=2, **RUN).frames
    generator = _seed()  # as the pipeline draws: the noise first, then the VAE's sample
    pipe.prepare_latents(1, 4, FRAMES, size, size, torch.float32, torch.device("cpu"), generator)
    encoded = pipe.encode_video(video.permute(1, 0, 2, 3)[None] * 2 - 1, generator, 2)
    expected = (pipe.decode_latents(encoded, 2).permute(0, 2, 1, 3, 4) / 2 + 0.5).clamp(0, 1)
    assert torch.allclose(out, expected, atol=1e-5)
    t2v = LumierePipeline.from_pipe(pipe)
    assert torch.equal(
        pipe(video, "a circle", strength=1.0, generator=_seed(1), **RUN).frames,
        t2v("a circle", FRAMES, height=size, width=size, generator=_seed(1), **RUN).frames,
    )


def test_save_and_load_round_trip_through_diffusion_pipeline(v2v, tmp_path):
    v2v.save_pretrained(tmp_path / "v2v")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "v2v")
    assert type(loaded) is LumiereVideoToVideoPipeline
    loaded.set_progress_bar_config(disable=True)
    expected = v2v(_video(), "a circle", strength=0.5, generator=_seed(), **RUN).frames
    assert torch.equal(loaded(_video(), "a circle", strength=0.5, generator=_seed(), **RUN).frames, expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(strength=-0.1), "strength=-0.1 is invalid"),
        (dict(strength=1.5), "strength=1.5 is invalid"),
        (dict(strength=float("nan")), "strength must be a finite number"),
        (dict(strength="0.5"), "strength must be a finite number"),
        (dict(video=_video(frames=6)), r"len\(video\)=6 must be a positive multiple of 4; nearest valid: 4 or 8"),
        (dict(video=[]), "video must be a list of PIL images"),
        (dict(video=np.zeros((4, 16, 16))), r"video must be a \(F, H, W, 3\) array"),
        (dict(video=_video() * 2), r"video values must be floats in \[0, 1\]"),
        (dict(video="missing.mp4"), "missing.mp4"),
        (dict(guidance_scale=float("inf")), "guidance_scale"),
    ],
)
def test_bad_inputs_name_the_argument(v2v, kwargs, match):
    arguments = {"video": _video(), "prompt": "a circle", **RUN, **kwargs}
    with pytest.raises(ValueError, match=match):
        v2v(**arguments)


def test_unknown_arguments_are_a_type_error(v2v):
    with pytest.raises(TypeError, match="paste_known"):
        v2v(_video(), "a circle", paste_known=True)


def test_computes_in_the_dtype_it_was_loaded_in(tmp_path):
    pipe = LumiereVideoToVideoPipeline.from_pipe(make_pixel_lumiere_pipeline(tmp_path)).to(torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    seen = []
    pipe.unet.register_forward_hook(lambda module, args, output: seen.append(args[0].dtype))
    pipe(_video(), "a circle", strength=0.5, generator=_seed(), **RUN)
    assert seen and set(seen) == {torch.bfloat16}
