"""Spatial super-resolution with the shipped shapes-ssr: a 32 px clip made 64 px.

python examples/super_resolution.py        # a shapes-world clip shrunk to 32 px, upscaled, beside the truth
python examples/super_resolution.py --video low.mp4 --prompt "a green star moving left"
python examples/super_resolution.py --cascade   # shapes-tiny makes the 32 px clip, then shapes-ssr

Rows of the contact sheet: the input (enlarged, nearest neighbour), bicubic upsampling,
the ground truth when the input was made from one, and the model's output.
"""

import numpy as np
from _editing import DEFAULT_CASE, load, parser, write

from lumiere import LumierePipeline, LumiereSuperResolutionPipeline
from lumiere.assets import default_model_dir
from lumiere.eval.editing import uint8_frames
from lumiere.eval.super_resolution import bicubic, ground_truth, shrink
from lumiere.recipes.shapes_ssr import SAMPLING
from lumiere.recipes.shapes_tiny import SAMPLING as BASE_SAMPLING
from lumiere.video import read_video


def main() -> None:
    p = parser(__doc__.splitlines()[0], "super_resolution.mp4", model="shapes-ssr", sampling=SAMPLING)
    p.add_argument("--video", default=None, help="the low-resolution clip (default: a shapes-world clip)")
    p.add_argument("--cascade", action="store_true", help="make the input with the shipped shapes-tiny first")
    p.add_argument("--noise-level", type=int, default=None, help="the input's augmentation (default: the pipeline's)")
    args = p.parse_args()
    pipe, settings = load(LumiereSuperResolutionPipeline, args, kind="super-resolution")
    scale, truth = pipe.config.super_resolution_scale, None
    if args.video:
        low = read_video(args.video)
    elif args.cascade:
        base = LumierePipeline.from_pretrained(default_model_dir(), dtype=pipe.dtype).to(pipe.device)
        low = base(args.prompt, num_frames=16, num_inference_steps=BASE_SAMPLING["steps"],
                   guidance_scale=BASE_SAMPLING["guidance"], generator=settings["generator"]).frames[0]  # fmt: skip
    else:
        truth = ground_truth(DEFAULT_CASE, 16, pipe.default_size(None, None)[0])
        low = shrink(truth, scale)
    options = {} if args.noise_level is None else {"noise_level": args.noise_level}
    frames = pipe(low, args.prompt, **options, **settings).frames[0]
    low = low if low.dtype == np.uint8 else uint8_frames(low)
    rows = [low.repeat(scale, axis=1).repeat(scale, axis=2), bicubic(low, scale)] + ([] if truth is None else [truth])
    names = "input (enlarged), bicubic, " + ("ground truth, " if truth is not None else "") + "output"
    write(args, frames, rows, names, scale=2)


if __name__ == "__main__":
    main()
