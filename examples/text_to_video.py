"""Generate a clip with a saved Lumiere pipeline and write it as MP4 plus a PNG contact sheet.

python examples/text_to_video.py path/to/lumiere-folder "a red circle moving right" --out clip.mp4
"""

import argparse
from pathlib import Path

import torch

from lumiere import LumierePipeline
from lumiere.files import check_output
from lumiere.video import save_contact_sheet, save_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("prompt")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("clip.mp4"))
    parser.add_argument("--overwrite", action="store_true", help="replace --out and its .png if they exist")
    args = parser.parse_args()
    sheet = args.out.with_suffix(".png")
    try:
        for path in (args.out, sheet):  # before sampling, not after
            check_output(path, args.overwrite)
    except ValueError as error:
        parser.error(str(error))

    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = LumierePipeline.from_pretrained(args.model_dir).to(device)
    frames = pipe(
        args.prompt,
        num_frames=args.frames,
        num_inference_steps=args.steps,
        generator=torch.Generator().manual_seed(args.seed),
    ).frames[0]  # (F, H, W, 3) floats in [0, 1]
    video = save_video(frames, args.out, overwrite=args.overwrite)
    print("wrote", video, "and", save_contact_sheet(frames, sheet, overwrite=args.overwrite))


if __name__ == "__main__":
    main()
