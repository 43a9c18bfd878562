"""What the editing examples share: the default shapes-world input, the model, the outputs."""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from lumiere.assets import default_model_dir
from lumiere.eval.editing import edit_case
from lumiere.eval.shapes import Case
from lumiere.files import check_output
from lumiere.recipes.shapes_tiny import SAMPLING
from lumiere.video import save_contact_sheet, save_video

# A held-out triple: every colour, shape and motion was trained, never this combination.
DEFAULT_CASE = Case("red", "square", "moving left", seen=False, seed=3)
DISPLAY_SCALE = 4  # 32x32 frames, enlarged (nearest neighbour) to be seen


def parser(
    description: str,
    out: str,
    prompt: str = DEFAULT_CASE.prompt,
    edit: bool = True,
    model: str | None = None,
    sampling: dict = SAMPLING,
) -> argparse.ArgumentParser:
    """The options every example shares; ``model`` names the shipped default (else by ``edit``),
    ``sampling`` its evaluated steps and guidance."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--prompt", default=prompt, help=f"default: {prompt!r}")
    model = model or ("shapes-tiny-edit" if edit else "shapes-tiny")
    parser.add_argument("--model", type=Path, default=None, help=f"default: the shipped {model}")
    parser.add_argument("--steps", type=int, default=sampling["steps"])
    parser.add_argument("--guidance", type=float, default=sampling["guidance"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(out), help="the .mp4; the .png contact sheet goes beside it")
    parser.add_argument("--overwrite", action="store_true")
    return parser


def default_input():
    """The shapes-world clip of :data:`DEFAULT_CASE` (with its true track)."""
    return edit_case(DEFAULT_CASE)


def load(cls, args, edit: bool = True, kind: str | None = None):
    try:
        for path in (args.out, args.out.with_suffix(".png")):
            check_output(path, args.overwrite)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    model = args.model or default_model_dir(edit=edit, kind=kind)
    pipe = cls.from_pretrained(model, dtype=torch.float32).to("cuda" if torch.cuda.is_available() else "cpu")
    return pipe, dict(num_inference_steps=args.steps, guidance_scale=args.guidance,
                      generator=torch.Generator().manual_seed(args.seed))  # fmt: skip


def as_frames(value: np.ndarray, num_frames: int) -> np.ndarray:
    """uint8 ``(F, H, W, 3)`` from an image ``(H, W, 3)``, a mask ``(H, W)`` / ``(F, H, W)`` or a clip."""
    value = np.asarray(value)
    if value.dtype != np.uint8:
        value = (np.clip(value, 0, 1) * 255).round().astype(np.uint8)
    if value.ndim == 2 or (value.ndim == 3 and value.shape[-1] != 3):
        value = np.repeat(value[..., None], 3, axis=-1)
    if value.ndim == 3:
        value = value[None]
    return np.broadcast_to(value, (num_frames, *value.shape[1:])) if len(value) == 1 else value


def write(
    args,
    output: np.ndarray,
    rows: list[np.ndarray],
    names: str = "input, mask, output",
    scale: int = DISPLAY_SCALE,
    columns: int | None = None,
) -> None:
    """The output clip as mp4 and a contact sheet: one row per entry of ``rows`` (input,
    mask), then the output; ``names`` says which. Frames are enlarged ``scale`` times; a
    sheet row holds ``columns`` frames (default: a whole clip)."""
    num_frames = len(output)
    large = as_frames(output, num_frames).repeat(scale, axis=1).repeat(scale, axis=2)
    save_video(large, args.out, fps=8, overwrite=args.overwrite)
    sheet = np.concatenate([as_frames(row, num_frames) for row in rows] + [as_frames(output, num_frames)])
    save_contact_sheet(sheet, args.out.with_suffix(".png"), columns=columns or num_frames, scale=scale,
                       overwrite=args.overwrite)  # fmt: skip
    print(f"wrote {args.out} and {args.out.with_suffix('.png')} (rows: {names})")
