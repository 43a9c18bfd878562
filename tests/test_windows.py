"""Temporal MultiDiffusion (lumiere.pipelines.windows): the windows, their weights as a
partition of unity, the averaged prediction against a direct per-window implementation,
the pipelines' window options, and windows shared across two processes."""

import copy
import sys
import weakref

import pytest
import torch

from lumiere import LumierePipeline, LumiereVideoToVideoPipeline
from lumiere.pipelines.sampling import Branch, Guidance, denoise
from lumiere.pipelines.windows import (
    TemporalMultiDiffusion,
    shuffle_window_noise,
    temporal_windows,
    window_weights,
)
from lumiere.testing import make_pixel_lumiere_pipeline, subprocess_env

RUNNER = "tests/windows_runner.py"


@pytest.fixture
def pipe(tmp_path):
    pipe = make_pixel_lumiere_pipeline(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _spans(windows):
    return [(w.start, w.stop) for w in windows]


def test_windows_cover_the_clip_with_a_last_one_aligned_to_the_end():
    assert _spans(temporal_windows(16, 8, 4)) == [(0, 8), (4, 12), (8, 16)]
    assert _spans(temporal_windows(20, 8, 6)) == [(0, 8), (6, 14), (12, 20)]
    assert _spans(temporal_windows(18, 8, 4)) == [(0, 8), (4, 12), (8, 16), (10, 18)]  # 4 does not divide 10
    assert _spans(temporal_windows(16, 8)) == [(0, 8), (4, 12), (8, 16)]  # default stride: half a window
    assert _spans(temporal_windows(8, 8)) == [(0, 8)]
    assert _spans(temporal_windows(10, 4, 4, multiple=2)) == [(0, 4), (4, 8), (6, 10)]


@pytest.mark.parametrize(
    "args, message",
    [
        ((16, 20), r"window_size=20 is longer than num_frames=16"),
        ((16, 8, 9), r"window_stride=9 is larger than window_size=8.*\[1, window_size\]"),
        ((16, 8, 0), r"window_stride must be an integer >= 1; got 0"),
        ((16, 6, 2, 4), r"window_size=6 must be a positive multiple of 4; nearest valid: 4 or 8"),
        ((16, 0), r"window_size must be an integer >= 1; got 0"),
    ],
)
def test_bad_windows_name_the_argument(args, message):
    with pytest.raises(ValueError, match=message):
        temporal_windows(*args)


def test_weights_are_a_partition_of_unity_whatever_the_windows():
    """A model that predicts ones everywhere comes out as ones: each frame's weights are
    normalised to one, also in a last window that overlaps its neighbour by more."""

    class Ones(torch.nn.Module):
        def forward(self, sample, t, encoder_hidden_states, **kwargs):
            return (torch.ones_like(sample),)

    guidance = Guidance(Ones(), _Identity(), 1.0, Branch(torch.zeros(1, 3, 4)))
    latents = torch.randn(1, 2, 18, 2, 2)
    for weighting in ("flat", "pyramid"):
        averaged = TemporalMultiDiffusion(guidance, temporal_windows(18, 8, 3), weighting)(latents, torch.tensor(1))
        assert torch.allclose(averaged, torch.ones_like(latents), atol=1e-6)
    assert window_weights(5, "pyramid").tolist() == [1, 2, 3, 2, 1]
    with pytest.raises(ValueError, match=r"window_weighting='hann' is not one of \['flat', 'pyramid'\]"):
        window_weights(4, "hann")


@pytest.mark.parametrize("num_frames, stride", [(40, 8), (36, 8), (16, 4), (19, 5)])
def test_shuffled_noise_gives_every_window_a_permutation_of_the_first_windows_noise(num_frames, stride):
    windows = temporal_windows(num_frames, 16 if num_frames >= 16 else num_frames, stride)
    frame_ids = torch.arange(num_frames, dtype=torch.float32).view(1, 1, -1, 1, 1).expand(2, 3, -1, 2, 2)
    shuffled = shuffle_window_noise(frame_ids, windows, torch.Generator().manual_seed(0))
    first = sorted(frame_ids[0, 0, windows[0], 0, 0].tolist())
    for window in windows:
        assert sorted(shuffled[0, 0, window, 0, 0].tolist()) == first
    assert torch.equal(shuffled[:, :, windows[0]], frame_ids[:, :, windows[0]])  # the first window keeps its own
    assert torch.equal(shuffled, shuffled[:1, :1, :, :1, :1].expand_as(shuffled))  # one order for every element
    again = shuffle_window_noise(frame_ids, windows, torch.Generator().manual_seed(0))
    other = shuffle_window_noise(frame_ids, windows, torch.Generator().manual_seed(1))
    assert torch.equal(again, shuffled) and (len(windows) == 1 or not torch.equal(other, shuffled))


class _Identity:
    """A scheduler stand-in whose model-input scaling is the identity."""

    def scale_model_input(self, latents, t):
        return latents


def _per_window_ddim(unet, scheduler, context, start, windows, weights, steps):
    """MultiDiffusion done directly: each window keeps its own scheduler and steps its own
    latents; after every step the windows' latents are averaged per frame."""
    schedulers = [copy.deepcopy(scheduler) for _ in windows]
    for s in schedulers:
        s.set_timesteps(steps)
    latents = start
    for t in schedulers[0].timesteps:
        total, norm = torch.zeros_like(latents), torch.zeros(latents.shape[2])
        for window, s in zip(windows, schedulers, strict=True):
            x = latents[:, :, window]
            prediction = unet(s.scale_model_input(x, t), t, encoder_hidden_states=context).sample
            stepped = s.step(prediction, t, x).prev_sample
            total[:, :, window] += weights.view(-1, 1, 1) * stepped
            norm[window] += weights
        latents = total / norm.view(-1, 1, 1)
    return latents


@pytest.mark.parametrize("weighting", ["flat", "pyramid"])
def test_one_step_on_the_averaged_prediction_equals_averaging_per_window_ddim_steps(pipe, weighting):
    unet, scheduler = pipe.unet, pipe.scheduler
    context = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(0))
    factor = unet.temporal_factor
    windows = temporal_windows(5 * factor, 2 * factor, factor)  # 4 windows; the last aligned to the end
    start = torch.randn(1, 3, 5 * factor, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        direct = _per_window_ddim(unet, scheduler, context, start, windows, window_weights(2 * factor, weighting), 3)
        scheduler.set_timesteps(3)
        model_fn = TemporalMultiDiffusion(Guidance(unet, scheduler, 1.0, Branch(context)), windows, weighting)
        averaged = denoise(model_fn, start, scheduler, scheduler.timesteps)
        scheduler.set_timesteps(3)
        whole = denoise(Guidance(unet, scheduler, 1.0, Branch(context)), start, scheduler, scheduler.timesteps)
    assert torch.allclose(averaged, direct, atol=1e-5)
    assert not torch.allclose(averaged, whole, atol=1e-3)  # the temporal layers see the windows, not the clip


def test_batched_windows_cut_each_branchs_inputs_and_repeat_its_text():
    class Echo(torch.nn.Module):
        def forward(self, sample, t, encoder_hidden_states, class_labels, **kwargs):
            self.seen = (sample.shape, encoder_hidden_states.shape, class_labels.tolist())
            return (sample[:, :1] + class_labels.view(-1, 1, 1, 1, 1),)

    frames = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(1, 1, 8, 2, 2)
    cond = Branch(torch.zeros(1, 5, 4), frames, {"class_labels": torch.tensor([10.0])})
    uncond = Branch(torch.zeros(1, 5, 4), -frames, {"class_labels": torch.tensor([20.0])})
    model = Echo()
    guidance = Guidance(model, _Identity(), 1.0, cond, uncond).windows([slice(0, 4), slice(4, 8)])
    assert torch.equal(guidance.cond.concat, torch.cat([frames[:, :, :4], frames[:, :, 4:]]))
    assert torch.equal(guidance.uncond.concat, -guidance.cond.concat)
    latents = torch.zeros(2, 1, 4, 2, 2)  # two windows of batch 1
    guidance(latents, torch.tensor(1))
    assert model.seen == ((4, 2, 4, 2, 2), (4, 5, 4), [20.0, 20.0, 10.0, 10.0])  # uncond windows, then cond


class _Tracked:
    """A guidance stand-in whose window model functions count, at every call, how many of
    the predictions they made before are still alive."""

    def __init__(self):
        self.made, self.alive_at_calls = [], []

    def windows(self, batch):
        def model_fn(latents, t):
            self.alive_at_calls.append(sum(ref() is not None for ref in self.made))
            output = torch.ones_like(latents)
            self.made.append(weakref.ref(output))
            return output

        return model_fn


@pytest.mark.parametrize("window_batch_size", [1, 2])
def test_window_predictions_are_summed_as_they_come_not_held_until_the_last_window(window_batch_size):
    """What keeps the windowed peak memory flat in the clip length: at every model call at
    most the batch before is alive, however many windows there are (here 15)."""
    windows = temporal_windows(64, 8, 4)
    guidance = _Tracked()
    model_fn = TemporalMultiDiffusion(guidance, windows, window_batch_size=window_batch_size)
    prediction = model_fn(torch.zeros(1, 3, 64, 2, 2), torch.tensor(1))
    assert len(windows) == 15 and torch.equal(prediction, torch.ones_like(prediction))
    assert max(guidance.alive_at_calls) <= 1


def test_a_pipeline_on_one_window_as_long_as_the_clip_is_the_whole_clip_model(pipe):
    frames = 2 * pipe.unet.temporal_factor
    run = dict(prompt="a red circle", num_frames=frames, num_inference_steps=3, output_type="latent")
    whole = pipe(**run, generator=torch.Generator().manual_seed(0)).frames
    one = pipe(**run, window_size=frames, generator=torch.Generator().manual_seed(0)).frames
    assert torch.equal(one, whole)


def test_long_clips_from_windows_in_batches_of_any_size(pipe):
    factor = pipe.unet.temporal_factor
    run = dict(prompt="a red circle", num_frames=5 * factor, num_inference_steps=2, window_size=2 * factor)
    one_at_a_time = pipe(**run, output_type="latent", generator=torch.Generator().manual_seed(0)).frames
    batched = pipe(**run, output_type="latent", window_batch_size=3, generator=torch.Generator().manual_seed(0)).frames
    assert one_at_a_time.shape[2] == 5 * factor
    assert torch.allclose(batched, one_at_a_time, atol=1e-5)
    video = pipe(**run, window_stride=factor - 1 or 1, generator=torch.Generator().manual_seed(0)).frames
    assert video.shape == (1, 5 * factor, 16, 16, 3) and 0 <= video.min() and video.max() <= 1


def test_shuffled_window_noise_starts_the_sampler_from_the_rescheduled_noise(pipe):
    factor = pipe.unet.temporal_factor
    run = dict(prompt="a red circle", num_frames=5 * factor, num_inference_steps=2, window_size=2 * factor,
               output_type="latent")  # fmt: skip
    shuffled = pipe(**run, window_noise="shuffled", generator=torch.Generator().manual_seed(0)).frames
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 3, 5 * factor, 16, 16, generator=generator)
    rescheduled = shuffle_window_noise(noise, temporal_windows(5 * factor, 2 * factor), generator)
    assert torch.equal(pipe(**run, latents=rescheduled).frames, shuffled)
    assert not torch.equal(pipe(**run, generator=torch.Generator().manual_seed(0)).frames, shuffled)


def test_window_options_are_checked_up_front(pipe):
    factor = pipe.unet.temporal_factor
    run = dict(prompt="a red circle", num_frames=4 * factor, num_inference_steps=1)
    with pytest.raises(ValueError, match=r"window_stride=2 needs window_size, which is None"):
        pipe(**run, window_stride=2)
    with pytest.raises(ValueError, match=r"window_weighting='pyramid' needs window_size"):
        pipe(**run, window_weighting="pyramid")
    with pytest.raises(ValueError, match=r"window_weighting='hann' is not one of"):
        pipe(**run, window_size=2 * factor, window_weighting="hann")
    with pytest.raises(ValueError, match=r"window_noise='shuffled' needs window_size"):
        pipe(**run, window_noise="shuffled")
    with pytest.raises(ValueError, match=r"window_noise='repeated' is not one of \['independent', 'shuffled'\]"):
        pipe(**run, window_size=2 * factor, window_noise="repeated")
    with pytest.raises(ValueError, match=r"window_noise='shuffled' draws the initial noise itself"):
        pipe(**run, window_size=2 * factor, window_noise="shuffled", latents=torch.randn(1, 3, 4 * factor, 16, 16))
    with pytest.raises(ValueError, match=r"window_batch_size must be an integer >= 1; got 0"):
        pipe(**run, window_size=2 * factor, window_batch_size=0)
    with pytest.raises(ValueError, match=rf"window_size={8 * factor} is longer than num_frames={4 * factor}"):
        pipe(**run, window_size=8 * factor)
    if factor > 1:
        with pytest.raises(ValueError, match=rf"window_size={2 * factor + 1} must be a positive multiple of {factor}"):
            pipe(**run, window_size=2 * factor + 1)


def test_the_memory_estimate_is_for_the_windows_not_the_clip(pipe, monkeypatch):
    seen = []
    monkeypatch.setattr(pipe.unet, "estimate_forward_memory", lambda *args: seen.append(args) or 0)
    factor = pipe.unet.temporal_factor
    pipe("a red circle", num_frames=8 * factor, num_inference_steps=1, window_size=2 * factor, window_batch_size=3,
         output_type="latent")  # fmt: skip
    assert seen == [(2 * 3, 2 * factor, 16, 16)]  # 2 guidance branches x 3 windows, of the window's frames


def test_video_to_video_takes_windows_and_any_frame_count(pipe):
    factor = pipe.unet.temporal_factor
    v2v = LumiereVideoToVideoPipeline.from_pipe(pipe)
    video = torch.rand(3 * factor + 1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    out = v2v(video, "a blue circle", strength=0.5, num_inference_steps=4, window_size=2 * factor).frames
    assert out.shape == (1, 3 * factor + 1, 16, 16, 3)


def test_windows_shared_by_two_processes_give_the_one_process_clip(pipe, tmp_path):
    """Two CPU processes over gloo (``accelerate launch``), each running half the windows:
    both end with the clip one process makes."""
    import subprocess

    factor = pipe.unet.temporal_factor
    pipe.save_pretrained(tmp_path / "pipe")
    run = dict(num_frames=5 * factor, window_size=2 * factor, window_stride=factor)
    launcher = (
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
    )  # fmt: skip
    args = [str(tmp_path / "pipe"), str(tmp_path / "out"), str(run["num_frames"]), str(run["window_size"]),
            str(run["window_stride"])]  # fmt: skip
    done = subprocess.run([*launcher, RUNNER, *args], env=subprocess_env(ACCELERATE_USE_CPU="1"),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    local = LumierePipeline.from_pretrained(tmp_path / "pipe")
    local.set_progress_bar_config(disable=True)
    ranks = [torch.load(tmp_path / "out" / f"rank{rank}.pt") for rank in (0, 1)]
    threads = torch.get_num_threads()
    torch.set_num_threads(ranks[0]["threads"])  # the per-process threads accelerate set: same rounding
    try:
        expected = local("a red circle", num_inference_steps=3, output_type="latent",
                         generator=torch.Generator().manual_seed(0), **run).frames  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert [r["windows"] for r in ranks] == [[0, 1], [2, 3]]  # each ran its own share
    for rank in ranks:
        assert torch.equal(rank["latents"], expected)
