import os
import subprocess
import sys
from pathlib import Path

import decord
import PIL.Image

REPO = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_inflate_and_text_to_video_examples(sd_folder, tmp_path):
    out = run_example("inflate_text_to_image.py", str(sd_folder), str(tmp_path / "video-pipe"), cwd=tmp_path)
    assert "frames per level for an 80-frame clip: [80, 40, 20]" in out
    run_example(
        "text_to_video.py", str(tmp_path / "video-pipe"), "a red circle", "--frames", "4", "--steps", "2",
        "--out", "clip.mp4", cwd=tmp_path,
    )  # fmt: skip
    assert len(decord.VideoReader(str(tmp_path / "clip.mp4"))) == 4
    assert (tmp_path / "clip.png").is_file()


def test_demo_writes_mp4_gif_and_contact_sheet_from_the_shipped_model(tmp_path):
    out = run_example("demo.py", "--steps", "2", cwd=tmp_path)
    assert "generated 4 clips of 16 frames at 32x32" in out
    video = decord.VideoReader(str(tmp_path / "demo.mp4"))
    # Four prompts side by side, each enlarged 4x.
    assert len(video) == 16 and video[0].shape == (128, 4 * 128, 3)
    with PIL.Image.open(tmp_path / "demo.gif") as gif:
        assert gif.n_frames == 16
    with PIL.Image.open(tmp_path / "demo.png") as sheet:
        assert sheet.size == (16 * 128 + 17 * 2, 4 * 128 + 5 * 2)
