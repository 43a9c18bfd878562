"""Every bad argument of a pipeline call is a ValueError naming it; callbacks that break the
contract, NaN during sampling and work that cannot fit are clear errors; saved folders load
or say what is wrong with them."""

import json

import pytest
import torch

import lumiere.memory
from lumiere import LumierePipeline
from lumiere.files import OutputExistsError
from lumiere.memory import InsufficientMemoryError
from lumiere.testing import make_inflated_pipeline, make_sd_pipeline

FAST = dict(num_frames=4, num_inference_steps=2, output_type="latent")


@pytest.fixture(scope="module")
def pipe():
    return make_inflated_pipeline("pixel", temporal_seed=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(prompt=[]), "prompt must be a str or a non-empty list of str; got an empty list"),
        (dict(prompt=["a red circle", 3]), r"prompt\[1\] must be a str; got int 3"),
        (dict(prompt="bad \udcff bytes"), "prompt is not valid UTF-8 text"),
        (dict(negative_prompt=7), "negative_prompt must be a str or a non-empty list of str; got int"),
        (dict(height="16"), "height must be an integer >= 1; got '16'"),
        (dict(width=0), "width must be an integer >= 1; got 0"),
        (dict(height=10), "height=10 must be a positive multiple of 4; nearest valid: 8 or 12"),
        (dict(num_frames=2.0), "num_frames must be an integer >= 1; got 2.0"),
        (dict(num_frames=3), "num_frames=3 must be a positive multiple of 4; nearest valid: 4"),
        (dict(num_inference_steps=0), "num_inference_steps must be an integer >= 1; got 0"),
        (dict(num_videos_per_prompt=0), "num_videos_per_prompt must be an integer >= 1; got 0"),
        (dict(guidance_scale=float("nan")), "guidance_scale must be a finite number; got nan"),
        (dict(guidance_scale=float("inf")), "guidance_scale must be a finite number; got inf"),
        (dict(eta=-1.0), "eta must be a finite number >= 0.0; got -1.0"),
        (dict(generator=0), "generator must be a torch.Generator, a list of them"),
        (dict(generator=[torch.Generator(), 1]), "generator must be a torch.Generator"),
        (dict(decode_chunk_size=0), "decode_chunk_size must be an integer >= 1"),
        (dict(output_type="mp4"), "output_type='mp4' is not one of"),
        (dict(prompt=None, prompt_embeds=torch.zeros(1, 5, 7)), r"prompt_embeds must be a tensor \(B, L, 32\)"),
        (dict(prompt=None, prompt_embeds=torch.zeros(5, 32)), r"got \(5, 32\)"),
    ],
)
def test_bad_arguments_name_themselves(pipe, kwargs, message):
    call = {**FAST, "prompt": "a red circle", **kwargs}
    with pytest.raises(ValueError, match=message):
        pipe(**call)


def test_width_zero_is_not_silently_the_default(pipe):
    assert pipe.default_size(None, None) == pipe.default_size(16, 16)
    with pytest.raises(ValueError, match="width"):
        pipe.default_size(None, 0)


def _returning(value):
    def callback(pipe, step, timestep, tensors):
        return value(tensors) if callable(value) else value

    return callback


@pytest.mark.parametrize(
    "returned, message",
    [
        (None, "returned NoneType; it must return a dict"),
        ([1], "returned list; it must return a dict"),
        (lambda t: {"latents": t["latents"][:, :, :2]}, r"returned latents as \(1, 3, 2, 16, 16\)"),
        (lambda t: {"latents": t["latents"].double()}, "torch.float64; it must keep"),
        (lambda t: {"latents": "noise"}, "returned latents as str"),
    ],
)
def test_a_callback_that_breaks_the_contract_is_named(pipe, returned, message):
    with pytest.raises(ValueError, match=f"callback_on_step_end .*callback.*{message}"):
        pipe("a red circle", **FAST, callback_on_step_end=_returning(returned))


def test_nan_during_sampling_stops_at_the_step_that_made_it(pipe):
    def poison(module, args, output):
        return (output[0] * float("nan"),)

    handle = pipe.unet.register_forward_hook(poison)
    try:
        with pytest.raises(FloatingPointError, match=r"NaN or infinite at step 0 \(timestep \d+\)"):
            pipe("a red circle", **FAST)
    finally:
        handle.remove()


def test_the_nan_message_suggests_fp32_when_the_model_ran_in_low_precision(pipe):
    half = make_inflated_pipeline("pixel").to(torch.bfloat16)

    def poison(module, args, output):
        return (output[0] * float("inf"),)

    half.unet.register_forward_hook(poison)
    with pytest.raises(FloatingPointError, match="ran in torch.bfloat16: try autocast=False, or load the pipeline"):
        half("a red circle", **FAST)


def test_work_that_cannot_fit_is_refused_up_front_with_the_estimate(pipe, monkeypatch):
    with pytest.raises(
        InsufficientMemoryError, match=r"1 video\(s\) of 1000000 frames at 16x16 needs about [\d.]+ GiB"
    ):
        pipe("a red circle", num_frames=1_000_000, num_inference_steps=1)
    monkeypatch.setattr(lumiere.memory, "available_memory", lambda device: 1000)
    with pytest.raises(ValueError, match="has 0.0 GiB available; .* check_memory=False"):
        pipe("a red circle", **FAST)
    assert pipe("a red circle", **FAST, check_memory=False).frames.shape == (1, 3, 4, 16, 16)


def test_the_memory_estimate_counts_both_guidance_branches(pipe, monkeypatch):
    needed = {}
    monkeypatch.setattr(lumiere.memory, "check_fits", lambda count, device, what: needed.setdefault(what, count))
    monkeypatch.setattr("lumiere.pipelines.base.check_fits", lumiere.memory.check_fits)
    pipe("a", **FAST, guidance_scale=1.0)
    pipe("b", **FAST, guidance_scale=5.0, num_videos_per_prompt=2)
    single, quadruple = needed.values()  # batch 1 without guidance; 2 videos x 2 branches
    forward = pipe.unet.estimate_forward_memory
    assert quadruple - single > forward(4, 4, 16, 16) - forward(1, 4, 16, 16) > 0


# ---------------------------------------------------------------- saved folders


def test_save_pretrained_refuses_a_non_empty_folder_and_replaces_it_whole(pipe, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="is not empty"):
        pipe.save_pretrained(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    pipe.save_pretrained(folder, overwrite=True)
    assert not (folder / "notes.txt").exists() and (folder / "model_index.json").is_file()
    loaded = LumierePipeline.from_pretrained(folder).unet.state_dict()
    assert all(torch.equal(loaded[name], value) for name, value in pipe.unet.state_dict().items())


def test_a_save_that_fails_leaves_no_folder(pipe, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(pipe.unet), "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        pipe.save_pretrained(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "lumiere"
    make_inflated_pipeline("pixel").save_pretrained(folder)
    return folder


def _damaged(saved, tmp_path, damage):
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(saved, folder)
    damage(folder)
    return folder


def _truncate_weights(folder):
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: [p.unlink() for p in f.rglob("*") if p.is_file()] and None, "is not a saved diffusers pipeline"),
        (lambda f: (f / "model_index.json").write_text("{not json"), "model_index.json' is not valid JSON"),
        (lambda f: (f / "model_index.json").write_text("[]"), "must be a JSON object with a '_class_name'"),
        (_truncate_weights, r"could not load the pipeline in .*damaged"),
        (lambda f: (f / "unet" / "config.json").write_text("{"), r"could not load the pipeline in .*damaged"),
    ],
)
def test_a_damaged_folder_says_what_is_wrong(saved, tmp_path, damage, message):
    with pytest.raises(ValueError, match=message):
        LumierePipeline.from_pretrained(_damaged(saved, tmp_path, damage))


def test_an_empty_folder_and_a_file_are_not_pipelines(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is an empty folder"):
        LumierePipeline.from_pretrained(tmp_path / "empty")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        LumierePipeline.from_pretrained(tmp_path / "file")
    with pytest.raises(ValueError, match="is an empty folder"):
        LumierePipeline.from_text_to_image(tmp_path / "empty")


def test_a_text_to_image_folder_says_inflate_it_first(sd_folder, saved):
    with pytest.raises(ValueError, match=r"is a text-to-image pipeline \(StableDiffusionPipeline\); inflate it first"):
        LumierePipeline.from_pretrained(sd_folder)
    with pytest.raises(ValueError, match="is already a Lumiere pipeline; load it with"):
        LumierePipeline.from_text_to_image(saved)


def test_an_index_of_another_pipeline_is_refused(saved, tmp_path):
    def other(folder):
        index = json.loads((folder / "model_index.json").read_text())
        index["unet"] = ["diffusers", "UNet3DConditionModel"]
        (folder / "model_index.json").write_text(json.dumps(index))

    with pytest.raises(ValueError, match="not a Lumiere pipeline"):
        LumierePipeline.from_pretrained(_damaged(saved, tmp_path, other))


def test_from_text_to_image_still_takes_a_loaded_pipeline():
    assert isinstance(LumierePipeline.from_text_to_image(make_sd_pipeline()), LumierePipeline)
