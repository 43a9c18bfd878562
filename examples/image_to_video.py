"""Image-to-video with the shipped shapes-tiny-edit: a clip whose frame 0 is the image.

python examples/image_to_video.py                       # a generated shapes-world image
python examples/image_to_video.py --image me.png --prompt "a red circle moving right"
"""

from _editing import default_input, load, parser, write

from lumiere import LumiereImageToVideoPipeline
from lumiere.video import read_image


def main() -> None:
    p = parser(__doc__.splitlines()[0], "image_to_video.mp4")
    p.add_argument("--image", default=None, help="image file (default: frame 0 of a shapes-world clip)")
    p.add_argument("--frames", type=int, default=16)
    args = p.parse_args()
    image = read_image(args.image) if args.image else default_input().clip[0]
    pipe, settings = load(LumiereImageToVideoPipeline, args)
    frames = pipe(image, args.prompt, args.frames, **settings).frames[0]
    write(args, frames, [image], "image, output")


if __name__ == "__main__":
    main()
