import runpy
import subprocess
import sys
from pathlib import Path

import decord
import numpy as np
import PIL.Image
import pytest

from lumiere.testing import subprocess_env

REPO = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, cwd: Path) -> str:
    """``python examples/NAME ARGS`` in a fresh interpreter; returns its stdout."""
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args], capture_output=True, text=True,
        env=subprocess_env(), cwd=cwd, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(
    params=[
        "in_process",
        # A fresh interpreter per script (its startup and imports dominate); the same
        # scripts run in process in the fast set.
        pytest.param("subprocess", marks=pytest.mark.slow),
    ]
)
def example(request, monkeypatch, capsys):
    """Runs an example script as ``__main__``, here (``runpy``) or in a new interpreter."""
    if request.param == "subprocess":
        return run_example

    def run_here(name: str, *args: str, cwd: Path) -> str:
        path = REPO / "examples" / name
        with monkeypatch.context() as patch:
            patch.chdir(cwd)
            patch.syspath_prepend(str(REPO / "examples"))  # as a script run sees its own folder
            patch.setattr(sys, "argv", [str(path), *args])
            runpy.run_path(str(path), run_name="__main__")
        return capsys.readouterr().out

    return run_here


def test_inflate_and_text_to_video_examples(example, sd_folder, tmp_path):
    out = example("inflate_text_to_image.py", str(sd_folder), str(tmp_path / "video-pipe"), cwd=tmp_path)
    assert "frames per level for an 80-frame clip: [80, 40, 20]" in out
    example(
        "text_to_video.py", str(tmp_path / "video-pipe"), "a red circle", "--frames", "4", "--steps", "2",
        "--out", "clip.mp4", cwd=tmp_path,
    )  # fmt: skip
    assert len(decord.VideoReader(str(tmp_path / "clip.mp4"))) == 4
    assert (tmp_path / "clip.png").is_file()


def test_demo_writes_mp4_gif_and_contact_sheet_from_the_shipped_model(example, tmp_path):
    out = example("demo.py", "--steps", "2", cwd=tmp_path)
    assert "generated 4 clips of 16 frames at 32x32" in out
    video = decord.VideoReader(str(tmp_path / "demo.mp4"))
    # Four prompts side by side, each enlarged 4x.
    assert len(video) == 16 and video[0].shape == (128, 4 * 128, 3)
    with PIL.Image.open(tmp_path / "demo.gif") as gif:
        assert gif.n_frames == 16
    with PIL.Image.open(tmp_path / "demo.png") as sheet:
        assert sheet.size == (16 * 128 + 17 * 2, 4 * 128 + 5 * 2)
        grid = np.asarray(sheet.convert("RGB"))
    # Each 4x-enlarged tile is made of whole 4x4 blocks, and the four rows (prompts) and the
    # frames within a row differ: the contact sheet shows four distinct clips that move.
    cells = [(2 + row * 130, 2 + column * 130) for row in range(4) for column in range(16)]
    tiles = np.stack([grid[top : top + 128, left : left + 128] for top, left in cells])
    tiles = tiles.reshape(4, 16, 128, 128, 3).astype(int)
    assert (tiles == tiles[:, :, ::4, ::4].repeat(4, axis=2).repeat(4, axis=3)).all()
    rows = tiles.mean(axis=1)
    assert min(np.abs(rows[i] - rows[j]).mean() for i in range(4) for j in range(i)) > 5  # measured 9.6 and up
    assert (np.abs(tiles[:, -1] - tiles[:, 0]).mean(axis=(1, 2, 3)) > 5).all()  # measured 15 and up


@pytest.mark.parametrize(
    "name, rows",
    [
        ("image_to_video.py", "image, output"),
        ("inpaint_video.py", "input, mask, output"),
        ("cinemagraph.py", "image, region, output"),
        ("video_to_video.py", "input, output"),
        ("stylized_generation.py", "style_scale 0, style_scale 0.5, style_scale 1"),
    ],
)
def test_editing_examples_run_offline_on_the_shipped_models(example, tmp_path, name, rows):
    out = example(name, "--steps", "2", cwd=tmp_path)
    assert f"(rows: {rows})" in out
    stem = name.removesuffix(".py")
    video = decord.VideoReader(str(tmp_path / f"{stem}.mp4"))
    assert len(video) == 16 and video[0].shape == (128, 128, 3)
    rows = len(rows.split(", "))
    with PIL.Image.open(tmp_path / f"{stem}.png") as sheet:
        assert sheet.size == (16 * 128 + 17 * 2, rows * 128 + (rows + 1) * 2)


def test_long_video_example_makes_64_frames_from_windows_of_16(example, tmp_path):
    out = example("long_video.py", "--steps", "2", cwd=tmp_path)
    assert "made 64 frames over windows of 16" in out and "(rows: output, 16 frames a row)" in out
    assert len(decord.VideoReader(str(tmp_path / "long_video.mp4"))) == 64
    with PIL.Image.open(tmp_path / "long_video.png") as sheet:
        assert sheet.size == (16 * 128 + 17 * 2, 4 * 128 + 5 * 2)


@pytest.mark.parametrize("mode, rows", [((), 4), (("--cascade",), 3)])
def test_super_resolution_example_upscales_32_to_64_px_offline(example, tmp_path, mode, rows):
    out = example("super_resolution.py", "--steps", "2", *mode, cwd=tmp_path)
    names = "input (enlarged), bicubic, " + ("ground truth, " if rows == 4 else "") + "output"
    assert f"(rows: {names})" in out
    video = decord.VideoReader(str(tmp_path / "super_resolution.mp4"))
    assert len(video) == 16 and video[0].shape == (128, 128, 3)  # 64 px, shown 2x
    with PIL.Image.open(tmp_path / "super_resolution.png") as sheet:
        assert sheet.size == (16 * 128 + 17 * 2, rows * 128 + (rows + 1) * 2)


def test_few_step_example_puts_the_distilled_model_beside_shapes_tiny(example, tmp_path):
    out = example("few_step.py", "--steps", "2", "--reference-steps", "3", cwd=tmp_path)
    assert "shapes-tiny, 3 steps:" in out and "(rows: shapes-tiny 3 steps, shapes-tiny-fast 2 steps)" in out
    assert len(decord.VideoReader(str(tmp_path / "few_step.mp4"))) == 16
    with PIL.Image.open(tmp_path / "few_step.png") as sheet:
        assert sheet.size == (16 * 128 + 17 * 2, 2 * 128 + 3 * 2)
