"""Video inpainting with the shipped shapes-tiny-edit: the masked region regenerated.

python examples/inpaint_video.py          # a shapes-world clip, the object hidden on frames 4-11
python examples/inpaint_video.py --video clip.mp4 --mask mask.png --prompt "a blue star moving up"
"""

from _editing import default_input, load, parser, write

from lumiere import LumiereInpaintPipeline
from lumiere.eval.editing import inpainting_mask
from lumiere.video import read_image, read_video


def main() -> None:
    p = parser(__doc__.splitlines()[0], "inpaint_video.mp4")
    p.add_argument("--video", default=None, help="video file (default: a shapes-world clip)")
    p.add_argument("--mask", default=None, help="image, white = regenerate (default: a box over the path)")
    args = p.parse_args()
    case = default_input()
    video = read_video(args.video) if args.video else case.clip
    mask = read_image(args.mask, "mask", grey=True) if args.mask else inpainting_mask(case)
    pipe, settings = load(LumiereInpaintPipeline, args)
    frames = pipe(video, mask, args.prompt, **settings).frames[0]
    write(args, frames, [video, mask])


if __name__ == "__main__":
    main()
