"""Stylized generation with the shipped shapes-tiny and outline style: spatial weights interpolated.

python examples/stylized_generation.py       # a red circle moving right, at style_scale 0, 0.5 and 1
python examples/stylized_generation.py --style path/to/lora-or-unet --scales 0.25 0.75 --prompt "a blue star moving up"
"""

from _editing import load, parser, write

from lumiere import LumierePipeline, stylize
from lumiere.recipes.shapes_style import styled


def main() -> None:
    p = parser(
        __doc__.splitlines()[0], "stylized_generation.mp4", prompt=styled("a red circle moving right"), edit=False
    )
    p.add_argument("--style", default="outline", help="a style lumiere.stylize takes (default: the shipped outline)")
    p.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.5, 1.0], help="style_scale of each row")
    args = p.parse_args()
    pipe, settings = load(LumierePipeline, args, edit=False)
    rows = []
    for scale in args.scales:
        with stylize(pipe, args.style, scale):
            settings["generator"].manual_seed(args.seed)  # every row from the same noise
            rows.append(pipe(args.prompt, **settings).frames[0])
    names = ", ".join(f"style_scale {scale:g}" for scale in args.scales)
    write(args, rows[-1], rows[:-1], names)  # the mp4 is the last row's clip


if __name__ == "__main__":
    main()
