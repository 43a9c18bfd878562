"""Cinemagraphs with the shipped shapes-tiny-edit: only the masked region of an image moves.

python examples/cinemagraph.py            # a shapes-world image, its object's path as the region
python examples/cinemagraph.py --image me.png --mask region.png --prompt "a red star rotating"
"""

from _editing import default_input, load, parser, write

from lumiere import LumiereCinemagraphPipeline
from lumiere.eval.editing import cinemagraph_region
from lumiere.video import read_image


def main() -> None:
    p = parser(__doc__.splitlines()[0], "cinemagraph.mp4")
    p.add_argument("--image", default=None, help="image file (default: frame 0 of a shapes-world clip)")
    p.add_argument("--mask", default=None, help="image, white = animate (default: around the object's path)")
    p.add_argument("--frames", type=int, default=16)
    args = p.parse_args()
    case = default_input()
    image = read_image(args.image) if args.image else case.clip[0]
    region = read_image(args.mask, "mask", grey=True) if args.mask else cinemagraph_region(case)
    pipe, settings = load(LumiereCinemagraphPipeline, args)
    frames = pipe(image, region, args.prompt, args.frames, **settings).frames[0]
    write(args, frames, [image, region], "image, region, output")


if __name__ == "__main__":
    main()
