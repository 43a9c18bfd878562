"""`make demo`: generate clips with the shipped default model, offline, on this machine.

Loads ``shapes-tiny`` (the small Lumiere trained by ``make train-default`` and committed
in ``lumiere/assets/shapes-tiny``) with ``LumierePipeline.from_pretrained``, generates one
16-frame clip per prompt in one batch, and writes demo.mp4, demo.gif and demo.png (a
contact sheet: one row per prompt). "a red square moving left" is one of the
combinations left out of training on purpose. Existing demo files are replaced only with
``--overwrite`` (which ``make demo`` passes: they are its own outputs).
"""

import argparse
import time

import numpy as np
import torch

from lumiere import LumierePipeline
from lumiere.assets import default_model_dir
from lumiere.files import check_output
from lumiere.recipes.shapes_tiny import SAMPLING
from lumiere.video import save_contact_sheet, save_video

PROMPTS = ["a red circle moving right", "a blue square moving up", "a yellow star growing", "a red square moving left"]
DISPLAY_SCALE = 4  # the model makes 32x32 frames; enlarge them (nearest neighbour) to be seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=SAMPLING["steps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace demo.mp4, demo.gif and demo.png")
    args = parser.parse_args()
    outputs = ("demo.mp4", "demo.gif", "demo.png")
    try:
        for path in outputs:
            check_output(path, args.overwrite)
    except ValueError as error:
        parser.error(str(error))

    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = LumierePipeline.from_pretrained(default_model_dir(), dtype=torch.float32).to(device)
    start = time.perf_counter()
    clips = pipe(
        PROMPTS, num_frames=16, num_inference_steps=args.steps, guidance_scale=SAMPLING["guidance"],
        generator=torch.Generator().manual_seed(args.seed),
    ).frames  # fmt: skip
    num_frames, height, width = clips.shape[1:4]
    print(f"generated {len(PROMPTS)} clips of {num_frames} frames at {height}x{width} "
          f"in {time.perf_counter() - start:.1f}s on {device}")  # fmt: skip
    # Prompts side by side in the animations; one row per prompt in the contact sheet.
    large = clips.repeat(DISPLAY_SCALE, axis=2).repeat(DISPLAY_SCALE, axis=3)
    side_by_side = np.concatenate(list(large), axis=2)
    for path in outputs[:2]:
        save_video(side_by_side, path, fps=8, overwrite=args.overwrite)
    save_contact_sheet(np.concatenate(list(clips)), outputs[2], columns=num_frames, scale=DISPLAY_SCALE,
                       overwrite=args.overwrite)  # fmt: skip
    for i, prompt in enumerate(PROMPTS):
        print(f"  clip {i + 1} (column {i + 1} of demo.mp4, row {i + 1} of demo.png): {prompt}")
    print("wrote demo.mp4, demo.gif and demo.png")


if __name__ == "__main__":
    main()
