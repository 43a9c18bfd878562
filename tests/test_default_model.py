"""The shipped default model, ``lumiere/assets/shapes-tiny``: it loads with the standard
``from_pretrained`` and generates a valid clip offline."""

import decord
import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import load_file

from lumiere import LumierePipeline
from lumiere.assets import default_model_dir
from lumiere.cli import main as cli
from lumiere.models import SpaceTimeUNet
from lumiere.models.minilm import MiniLMTextEncoder, minilm_dir
from lumiere.recipes.shapes_tiny import SAMPLING
from lumiere.testing import subprocess_env
from lumiere.video import make_contact_sheet


@pytest.fixture(scope="module")
def pipe():
    return LumierePipeline.from_pretrained(default_model_dir(), dtype=torch.float32)


@pytest.mark.parametrize("kind", ["text-to-video", "edit", "super-resolution", "fast"])
def test_shipped_weights_are_the_unet_alone_in_fp16_and_a_few_mb(kind):
    folder = default_model_dir(kind=kind)
    weights = sorted(folder.glob("**/*.safetensors"))
    assert [path.relative_to(folder).as_posix() for path in weights] == ["unet/diffusion_pytorch_model.safetensors"]
    assert {tensor.dtype for tensor in load_file(weights[0]).values()} == {torch.float16}
    assert weights[0].stat().st_size < 16 * 2**20
    assert sum(path.stat().st_size for path in folder.glob("**/*") if path.is_file()) < 16 * 2**20
    assert (folder / "README.md").is_file()


def test_text_encoder_is_the_frozen_minilm_of_the_installed_package(pipe):
    assert isinstance(pipe.text_encoder, MiniLMTextEncoder) and not pipe.text_encoder.training
    assert not any(weight.requires_grad for weight in pipe.text_encoder.parameters())
    packaged = load_file(minilm_dir() / "model.safetensors")
    shipped = pipe.text_encoder.state_dict()
    assert set(shipped) <= set(packaged)
    for name, weight in shipped.items():
        assert torch.equal(weight, packaged[name].float()), name


def _generate(pipe, prompt, seed=0, num_frames=16):
    return pipe(
        prompt, num_frames=num_frames, num_inference_steps=2, guidance_scale=SAMPLING["guidance"],
        generator=torch.Generator().manual_seed(seed),
    ).frames  # fmt: skip


def test_generates_a_clip_of_the_requested_size(pipe, tmp_path):
    assert isinstance(pipe.unet, SpaceTimeUNet) and pipe.unet.config.temporal_cross_attention
    frames = _generate(pipe, "a red square moving left")
    assert frames.shape == (1, 16, 32, 32, 3)
    assert frames.min() >= 0 and frames.max() <= 1 and frames.std() > 0.05
    # Reproducible for a seed; the prompt and the seed both change the clip.
    np.testing.assert_array_equal(_generate(pipe, "a red square moving left"), frames)
    assert np.abs(_generate(pipe, "a blue circle moving right") - frames).mean() > 0.01
    assert np.abs(_generate(pipe, "a red square moving left", seed=1) - frames).mean() > 0.01


def test_lumiere_generate_uses_the_shipped_model_without_model_flag(pipe, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    assert cli(["generate", "a blue circle moving right", "--frames", "8", "--steps", "2", "--out", str(out)]) == 0
    video = decord.VideoReader(str(out))
    assert len(video) == 8 and video[0].shape == (32, 32, 3)
    # What it wrote is the shipped model's clip at the recipe's guidance and seed 0 (the
    # contact sheet is lossless, so exactly).
    expected = _generate(pipe, "a blue circle moving right", num_frames=8)[0]
    with PIL.Image.open(tmp_path / "clip.png") as sheet:
        np.testing.assert_array_equal(np.asarray(sheet), np.asarray(make_contact_sheet(expected)))


@pytest.mark.parametrize(
    "load",
    [
        "from lumiere import LumierePipeline; LumierePipeline.from_pretrained(DEFAULT_MODEL_DIR)",
        "import lumiere; from diffusers import DiffusionPipeline; DiffusionPipeline.from_pretrained(DEFAULT_MODEL_DIR)",
    ],
)
def test_loads_in_a_fresh_interpreter_with_only_the_documented_imports(load):
    """As the model card shows it: no import of the text encoder's module beforehand (this
    process has imported it already, so the check needs a new one)."""
    import subprocess
    import sys

    code = f"from lumiere.assets import DEFAULT_MODEL_DIR; {load}; print('loaded')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=300
    )
    assert result.returncode == 0 and "loaded" in result.stdout, result.stderr[-2000:]
