"""The command line of super-resolution and long clips: ``lumiere upscale``, the cascade
``lumiere generate --upscale`` and the ``--window-*`` options of every generating command,
on tiny pixel-space pipelines saved to folders."""

import re

import numpy as np
import pytest

from lumiere.testing import make_pixel_lumiere_pipeline, make_super_resolution_pipeline
from lumiere.video import read_video, save_video

from .test_cli import run_in_process


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A 16 px text-to-video pipeline, a 16 -> 32 px upscaler and a 4-frame 16 px clip."""
    root = tmp_path_factory.mktemp("upscale")
    make_pixel_lumiere_pipeline(root).save_pretrained(root / "t2v")
    make_super_resolution_pipeline(root).save_pretrained(root / "sr")
    clip = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    save_video(clip, root / "clip.gif")  # lossless, unlike mp4
    return root


def _frames(path) -> np.ndarray:
    return read_video(path)  # PyAV: decord mis-decodes 16 px mp4s (dmlc/decord#336)


def test_upscale_writes_the_clip_at_the_models_scale(capsys, folders, tmp_path):
    out = tmp_path / "up.mp4"
    args = ["upscale", str(folders / "clip.gif"), "a red circle", "--model", str(folders / "sr"), "--steps", "2"]
    result = run_in_process(capsys, *args, "--noise-level", "100", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout and out.with_suffix(".png").is_file()
    assert _frames(out).shape == (4, 32, 32, 3)  # the input's frame count, 2x its size
    again = run_in_process(capsys, *args, "--out", str(out))
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr


def test_generate_upscale_runs_the_cascade(capsys, folders, tmp_path):
    base, cascade = tmp_path / "base.mp4", tmp_path / "cascade.mp4"
    args = ["generate", "a red circle", "--model", str(folders / "t2v"), "--frames", "4", "--steps", "2"]
    assert run_in_process(capsys, *args, "--out", str(base)).returncode == 0
    result = run_in_process(
        capsys, *args, "--upscale", "--upscale-model", str(folders / "sr"), "--noise-level", "0", "--out", str(cascade)
    )
    assert result.returncode == 0, result.stderr
    assert _frames(base).shape == (4, 16, 16, 3) and _frames(cascade).shape == (4, 32, 32, 3)


def test_window_options_reach_the_pipeline(capsys, folders, tmp_path, monkeypatch):
    from lumiere.pipelines import LumierePipeline

    seen = {}
    call = LumierePipeline.__call__

    def spy(self, *args, **kwargs):
        seen.update({k: v for k, v in kwargs.items() if k.startswith("window")})
        return call(self, *args, **kwargs)

    monkeypatch.setattr(LumierePipeline, "__call__", spy)
    out = tmp_path / "long.mp4"
    args = ["generate", "a red circle", "--model", str(folders / "t2v"), "--frames", "8", "--steps", "1"]
    result = run_in_process(capsys, *args, "--window-size", "4", "--window-stride", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert seen == dict(window_size=4, window_stride=2, window_weighting="flat", window_noise="independent")
    assert _frames(out).shape == (8, 16, 16, 3)


@pytest.mark.parametrize(
    "args, match",
    [
        (["upscale", "CLIP", "a", "--noise-level", "1000"], r"noise_level must be an integer in \[0, 999\]"),
        (["upscale", "CLIP", "a", "--window-size", "8"], r"window_size=8 is longer than num_frames=4"),
        (["upscale", "CLIP", "a", "--window-stride", "2"], r"window_stride=2 needs window_size"),
        (["upscale", "CLIP", "a", "--height", "30"], r"height=30"),
        (["upscale", "missing.mp4", "a"], r"cannot be read as a video"),
        (["upscale", "CLIP", "a", "--window-weighting", "cosine"], r"invalid choice: 'cosine'"),
        (["upscale", "CLIP", "a", "--window-noise", "shuffled"], r"window_noise='shuffled' needs window_size"),
        (["generate", "a", "--model", "T2V", "--noise-level", "5"], r"--noise-level 5 needs --upscale"),
        (["generate", "a", "--model", "T2V", "--upscale-model", "SR"], r"--upscale-model .* needs --upscale"),
        (
            ["generate", "a", "--model", "T2V", "--upscale", "--upscale-model", "T2V"],
            r"unet is not a super-resolution U-Net: it reads in_channels=3",
        ),
    ],
)
def test_bad_upscaling_and_window_options_exit_2_in_one_line(capsys, folders, tmp_path, args, match):
    names = {"CLIP": folders / "clip.gif", "T2V": folders / "t2v", "SR": folders / "sr"}
    args = [str(names[a]) if a in names else a for a in args]
    args += ["--model", str(folders / "sr")] if args[0] == "upscale" else ["--frames", "4"]
    result = run_in_process(capsys, *args, "--steps", "1", "--out", str(tmp_path / "x.mp4"))
    assert result.returncode == 2, result
    assert re.search(match, result.stderr) and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_command_lines_window_weightings_and_noises_are_the_samplers():
    from lumiere.cli import WINDOW_NOISES, WINDOW_WEIGHTINGS
    from lumiere.pipelines.windows import NOISES, WEIGHTINGS

    assert WINDOW_WEIGHTINGS == WEIGHTINGS and WINDOW_NOISES == NOISES


def test_shipped_models_by_kind():
    from lumiere.assets import DEFAULT_MODEL_DIR, EDIT_MODEL_DIR, default_model_dir

    assert default_model_dir() == DEFAULT_MODEL_DIR == default_model_dir(kind="text-to-video")
    assert default_model_dir(edit=True) == EDIT_MODEL_DIR == default_model_dir(kind="edit")
    with pytest.raises(ValueError, match=r"kind='nope' is not a shipped model; one of: text-to-video, edit"):
        default_model_dir(kind="nope")


def test_upscale_and_the_cascade_on_the_shipped_models(capsys, folders, tmp_path):
    from lumiere.assets import SSR_MODEL_DIR, default_model_dir

    assert default_model_dir(kind="super-resolution") == SSR_MODEL_DIR
    low = tmp_path / "low.gif"
    result = run_in_process(capsys, "generate", "a red circle moving right", "--steps", "2", "--out", str(low))
    assert result.returncode == 0, result.stderr
    up = tmp_path / "up.mp4"
    result = run_in_process(capsys, "upscale", str(low), "a red circle moving right", "--steps", "2", "--out", str(up))
    assert result.returncode == 0, result.stderr
    cascade = tmp_path / "cascade.mp4"
    args = ["generate", "a red circle moving right", "--upscale", "--steps", "2", "--out", str(cascade)]
    assert run_in_process(capsys, *args).returncode == 0
    assert _frames(up).shape == _frames(cascade).shape == (16, 64, 64, 3)
