"""The pipeline core (lumiere.pipelines.base and .sampling): the pure loop, guidance with
per-branch inputs, resuming from a step, temporal windows, construction from another pipeline,
and the saved-pipeline module paths."""

import importlib
import json
import weakref

import pytest
import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import PipelineCallback

from lumiere import LumierePipeline, LumiereVideoToVideoPipeline, SpaceTimeUNet
from lumiere.assets import default_model_dir
from lumiere.pipelines.sampling import Branch, Guidance, denoise, predicted_original, schedule
from lumiere.testing import make_pixel_lumiere_pipeline, make_scheduler, make_unet2d


@pytest.fixture
def pixel_pipe(tmp_path):
    pipe = make_pixel_lumiere_pipeline(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _seen_steps(pipe, **kwargs):
    steps = []

    def record(pipe, i, t, tensors):
        steps.append((i, int(t), tensors["latents"].clone()))
        return {}

    frames = pipe(callback_on_step_end=record, generator=torch.Generator().manual_seed(0), **kwargs).frames
    return frames, steps


def test_denoising_from_an_intermediate_step_reproduces_the_full_run(pixel_pipe):
    """What a start step (video-to-video, tests/test_video_to_video.py) rests on."""
    pipe = pixel_pipe
    final, steps = _seen_steps(pipe, prompt="a red circle", num_frames=8, num_inference_steps=10, output_type="latent")
    i, _, latents = steps[3]  # the latents after step 3 of 10
    prompt_embeds, negative_prompt_embeds = pipe.encode_prompt("a red circle", torch.device("cpu"))
    guidance = pipe.guidance(prompt_embeds, negative_prompt_embeds)
    with torch.no_grad():  # as in the pipeline, so the U-Net runs the same way (frame chunking)
        resumed = denoise(guidance, latents, pipe.scheduler, pipe.scheduler.timesteps[i + 1 :])
    assert torch.equal(resumed, final)


def test_stop_ends_sampling_and_on_step_can_replace_latents():
    scheduler = make_scheduler()
    scheduler.set_timesteps(5)
    calls = []

    def model_fn(latents, t):
        calls.append(int(t))
        return torch.zeros_like(latents)

    start = torch.ones(1, 1, 2, 2, 2)
    out = denoise(model_fn, start, scheduler, scheduler.timesteps, on_step=lambda i, t, x: x * 0 + i,
                  stop=lambda: len(calls) == 3)  # fmt: skip
    assert calls == scheduler.timesteps[:3].tolist()
    assert torch.equal(out, torch.full_like(start, 2.0))  # the hook's latents after step 2


def test_the_loop_lets_each_prediction_go_before_the_next_model_call():
    """One clip-sized tensor less at the peak of every pipeline."""
    scheduler = make_scheduler()
    scheduler.set_timesteps(4)
    made, alive_at_calls = [], []

    def model_fn(latents, t):
        alive_at_calls.append(sum(ref() is not None for ref in made))
        output = torch.zeros_like(latents)
        made.append(weakref.ref(output))
        return output

    denoise(model_fn, torch.ones(1, 1, 2, 2, 2), scheduler, scheduler.timesteps)
    assert alive_at_calls == [0, 0, 0, 0]


class _Echo(torch.nn.Module):
    """A stand-in U-Net that reports what it was given: the output's channel 0 is the
    input's mean over its extra channels plus the text's mean and ``class_labels``."""

    def __init__(self, channels):
        super().__init__()
        self.channels, self.calls = channels, []

    def forward(self, sample, timestep, encoder_hidden_states, cross_attention_kwargs=None, return_dict=True,
                class_labels=None):  # fmt: skip
        self.calls.append((sample.shape, encoder_hidden_states.shape, class_labels))
        extra = sample[:, self.channels :].mean(dim=1, keepdim=True)
        text = encoder_hidden_states.mean(dim=(1, 2)).view(-1, 1, 1, 1, 1)
        value = extra + text + (0 if class_labels is None else class_labels.view(-1, 1, 1, 1, 1))
        return (value.expand(-1, self.channels, -1, -1, -1),)


def test_guidance_batches_the_branches_each_with_its_own_extra_inputs():
    scheduler = make_scheduler()
    scheduler.set_timesteps(4)
    model = _Echo(channels=2)
    latents = torch.zeros(1, 2, 4, 3, 3)
    image = torch.full((1, 2, 4, 3, 3), 3.0)  # C and M of image-to-video, say
    cond = Branch(torch.full((1, 5, 8), 1.0), concat=image, model_kwargs={"class_labels": torch.tensor([10.0])})
    uncond = Branch(
        torch.full((1, 5, 8), -1.0), concat=torch.zeros_like(image), model_kwargs={"class_labels": torch.tensor([20.0])}
    )
    guided = Guidance(model, scheduler, 2.0, cond, uncond)(latents, scheduler.timesteps[0])
    ((sample_shape, text_shape, labels),) = model.calls
    assert sample_shape == (2, 4, 4, 3, 3) and text_shape == (2, 5, 8)  # one pass, 2 + 2 channels
    assert labels.tolist() == [20.0, 10.0]  # unconditional first
    # cond: 3 + 1 + 10 = 14, uncond: 0 - 1 + 20 = 19, guided: 19 + 2 (14 - 19) = 9
    assert torch.allclose(guided, torch.full_like(latents, 9.0))
    alone = Guidance(model, scheduler, 2.0, cond)(latents, scheduler.timesteps[0])
    assert torch.allclose(alone, torch.full_like(latents, 14.0))  # guidance off: the conditional model


def test_guidance_cut_to_a_window_cuts_each_branchs_extra_channels():
    model, scheduler = _Echo(channels=2), make_scheduler()
    image = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(1, 2, 8, 3, 3)
    guidance = Guidance(
        model, scheduler, 2.0, Branch(torch.zeros(1, 5, 8), image), Branch(torch.zeros(1, 5, 8), -image)
    )
    window = guidance.windows([slice(2, 6)])
    assert torch.equal(window.cond.concat, image[:, :, 2:6]) and torch.equal(window.uncond.concat, -image[:, :, 2:6])
    assert guidance.cond.concat.shape[2] == 8  # the whole-clip guidance is unchanged


def test_a_model_averaged_over_temporal_windows_serves_the_loop():
    """A per-frame model (no temporal layers at work) averaged over overlapping windows is
    the model on the whole clip: the loop takes a windowed model function unchanged."""
    unet = SpaceTimeUNet.from_unet2d(make_unet2d("pixel"), temporal_downsample=False).eval()
    scheduler = make_scheduler("v_prediction")
    context = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(0))
    guidance = Guidance(unet, scheduler, 5.0, Branch(context), Branch(torch.zeros_like(context)))
    windows = [slice(0, 6), slice(2, 8)]

    def windowed(latents, t):
        total, count = torch.zeros_like(latents), torch.zeros_like(latents[:, :1])
        for frames in windows:
            total[:, :, frames] += guidance.windows([frames])(latents[:, :, frames], t)
            count[:, :, frames] += 1
        return total / count

    start = torch.randn(1, 3, 8, 16, 16, generator=torch.Generator().manual_seed(1))
    results = []
    with torch.no_grad():
        for model_fn in (guidance, windowed):
            scheduler.set_timesteps(2)
            results.append(denoise(model_fn, start, scheduler, scheduler.timesteps))
    assert torch.allclose(results[1], results[0], atol=1e-5)
    assert not torch.allclose(results[0], start, atol=1e-2)  # it did denoise


def test_schedule_rejects_a_strength_outside_0_1():
    with pytest.raises(ValueError, match=r"strength=1.5 is invalid; it must be in \[0, 1\]"):
        schedule(make_scheduler(), 10, torch.device("cpu"), 1.5)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_predicted_original_inverts_the_noising_for_each_prediction_type(prediction_type):
    scheduler = make_scheduler(prediction_type)
    generator = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(2, 3, 4, 8, 8, generator=generator), torch.randn(2, 3, 4, 8, 8, generator=generator)
    t = torch.tensor([100, 900])
    noisy = scheduler.add_noise(clean, noise, t)
    target = {"epsilon": noise, "v_prediction": scheduler.get_velocity(clean, noise, t), "sample": clean}
    assert torch.allclose(predicted_original(scheduler, noisy, target[prediction_type], t), clean, atol=1e-3)


def test_from_pipe_shares_modules_and_config_without_casting(pixel_pipe):
    pixel_pipe.register_to_config(noise_frame_correlation=0.25)
    pixel_pipe.unet.to(torch.float16)
    other = LumiereVideoToVideoPipeline.from_pipe(pixel_pipe)
    assert all(other.components[name] is module for name, module in pixel_pipe.components.items())
    assert other.config.noise_frame_correlation == 0.25 and pixel_pipe.unet.dtype == torch.float16
    swapped = LumierePipeline.from_pipe(pixel_pipe, scheduler=make_scheduler())
    assert swapped.unet is pixel_pipe.unet and swapped.scheduler is not pixel_pipe.scheduler
    with pytest.raises(ValueError, match=r"from_pipe got \['strength'\]"):
        LumierePipeline.from_pipe(pixel_pipe, strength=0.5)


def test_a_pipeline_callback_names_its_tensors_and_they_are_checked(pixel_pipe):
    class AsksForTheMask(PipelineCallback):
        tensor_inputs = ["mask"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            return {}

    with pytest.raises(ValueError, match=r"callback_on_step_end_tensor_inputs has \['mask'\]"):
        pixel_pipe("a red circle", num_frames=8, num_inference_steps=1, callback_on_step_end=AsksForTheMask())


def test_saved_pipelines_name_importable_modules_and_load_with_diffusion_pipeline(pixel_pipe, tmp_path):
    """model_index.json names each component's class by module path; the shipped model's
    and a freshly saved one's all import, and both load through DiffusionPipeline."""
    pixel_pipe.save_pretrained(tmp_path / "saved")
    for folder in (default_model_dir(), tmp_path / "saved"):
        index = json.loads((folder / "model_index.json").read_text())
        assert index["_class_name"] == "LumierePipeline"
        for name, (library, class_name) in ((k, v) for k, v in index.items() if isinstance(v, list)):
            if library is not None and library not in ("diffusers", "transformers"):
                assert hasattr(importlib.import_module(library), class_name), (folder, name)
        loaded = DiffusionPipeline.from_pretrained(folder)
        assert isinstance(loaded, LumierePipeline) and isinstance(loaded.unet, SpaceTimeUNet)
