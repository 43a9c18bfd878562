"""`make demo`: the whole path from a text-to-image pipeline to a video file, offline.

Inflates a text-to-image pipeline into a Lumiere pipeline, generates one clip per prompt
and writes demo.mp4, demo.gif and demo.png (a contact sheet of every frame).

No trained model ships yet (the small shapes-world default is planned), so this demo
inflates a tiny text-to-image pipeline with RANDOM weights, built in code: the clips are
noise. It shows that inflation, sampling and export work end to end on this machine.
"""

import time

import numpy as np
import torch

from lumiere import LumierePipeline
from lumiere.testing import make_sd_pipeline
from lumiere.video import save_video

PROMPTS = ["a red circle moving right", "a blue square moving left"]


def main() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = LumierePipeline.from_text_to_image(make_sd_pipeline()).to(device)
    print("NOTE: random-weight stand-in model (no trained model ships yet): expect noise, not shapes.")
    start = time.perf_counter()
    clips = pipe(
        PROMPTS, num_frames=16, height=64, width=64, num_inference_steps=10,
        generator=torch.Generator().manual_seed(0),
    ).frames  # fmt: skip
    print(f"generated {len(PROMPTS)} clips of 16 frames at 64x64 in {time.perf_counter() - start:.1f}s on {device}")
    # One clip per prompt, side by side, so the files show every prompt.
    side_by_side = np.concatenate(list(clips), axis=2)
    for path in ("demo.mp4", "demo.gif", "demo.png"):
        save_video(side_by_side, path, fps=8)
    print("wrote demo.mp4, demo.gif and demo.png")


if __name__ == "__main__":
    main()
