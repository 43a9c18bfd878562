import os
import subprocess
import sys
from pathlib import Path

import decord

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


def test_demo_writes_mp4_gif_and_contact_sheet(tmp_path):
    out = run_example("demo.py", cwd=tmp_path)
    assert "random-weight stand-in" in out
    assert len(decord.VideoReader(str(tmp_path / "demo.mp4"))) == 16
    assert (tmp_path / "demo.gif").is_file() and (tmp_path / "demo.png").is_file()
