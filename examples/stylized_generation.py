"""Stylized generation with the shipped shapes-tiny and a shipped style: spatial weights interpolated.

python examples/stylized_generation.py       # a red circle moving right in night style, at style_scale 0, 0.5 and 1
python examples/stylized_generation.py --style outline --prompt "a blue star moving up"
python examples/stylized_generation.py --style path/to/lora-or-unet --scales 0.25 0.75
"""

from _editing import load, parser, write

from lumiere import LumierePipeline, stylize
from lumiere.recipes.shapes_style import STYLES, styled


def main() -> None:
    p = parser(__doc__.splitlines()[0], "stylized_generation.mp4", prompt="a red circle moving right", edit=False)
    p.add_argument(
        "--style", default="night",
        help=f"a shipped style ({', '.join(STYLES)}: its phrase is added to the prompt) or what lumiere.stylize takes",
    )  # fmt: skip
    p.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.5, 1.0], help="style_scale of each row")
    args = p.parse_args()
    prompt = styled(args.prompt, args.style) if args.style in STYLES else args.prompt
    pipe, settings = load(LumierePipeline, args, edit=False)
    rows = []
    for scale in args.scales:
        with stylize(pipe, args.style, scale):
            settings["generator"].manual_seed(args.seed)  # every row from the same noise
            rows.append(pipe(prompt, **settings).frames[0])
    names = ", ".join(f"style_scale {scale:g}" for scale in args.scales)
    write(args, rows[-1], rows[:-1], names)  # the mp4 is the last row's clip


if __name__ == "__main__":
    main()
