"""A clip longer than the model was trained on: shapes-tiny (16-frame clips) makes 64
frames over temporal windows of 16, averaged at every step (MultiDiffusion), weighted
towards each window's middle and started from FreeNoise's shuffled noise: the setting that
left the smallest seams in docs/super-resolution.md.

python examples/long_video.py                       # "a red circle bouncing", 64 frames
python examples/long_video.py --prompt "a blue star rotating" --frames 48 --window-stride 4
python examples/long_video.py --window-weighting flat --window-noise independent   # plain MultiDiffusion

The contact sheet holds 16 frames a row (4 rows for 64 frames); a seam between windows
would show as a jump where a window starts or ends (every 8th frame by default).
"""

from _editing import load, parser, write

from lumiere import LumierePipeline
from lumiere.pipelines.windows import NOISES, WEIGHTINGS


def main() -> None:
    p = parser(__doc__.splitlines()[0], "long_video.mp4", prompt="a red circle bouncing", edit=False)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--window-size", type=int, default=16, help="frames per window (the training clips' length)")
    p.add_argument("--window-stride", type=int, default=None, help="frames between windows (default: half)")
    p.add_argument("--window-weighting", choices=WEIGHTINGS, default="pyramid")
    p.add_argument("--window-noise", choices=NOISES, default="shuffled")
    args = p.parse_args()
    pipe, settings = load(LumierePipeline, args, edit=False)
    frames = pipe(args.prompt, num_frames=args.frames, window_size=args.window_size,
                  window_stride=args.window_stride, window_weighting=args.window_weighting,
                  window_noise=args.window_noise, **settings).frames[0]  # fmt: skip
    print(f"made {len(frames)} frames over windows of {args.window_size}")
    write(args, frames, [], "output, 16 frames a row", columns=16)


if __name__ == "__main__":
    main()
