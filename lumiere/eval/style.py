"""Scoring stylized generation from pixels: each shipped style's score, and the paper's
claim that interpolating the spatial weights keeps the motion that swapping them whole
distorts.

    python -m lumiere.eval.style [--style outline|night] [--prompts 64] [--scales 0 0.25 0.5 0.75 1]

For each ``style_scale`` the shipped shapes-tiny is stylized (:func:`lumiere.stylize.stylize`)
and run on :func:`lumiere.eval.shapes.prompt_set` (half held-out triples), prompted with
the style phrase; each clip is scored by the existing scorer (colour, shape, motion,
direction) and by the style's own test (:data:`STYLE_TESTS`). A calibration row scores
the ground truth drawn in the style, so the scorer's own limits on it are visible beside
the model's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import binary_fill_holes

from ..data.shapes import NIGHT, sample_specs
from ..pipelines import LumierePipeline
from ..stylize import stylize
from .cli import eval_parser, write_results
from .scoring import background_colours, object_masks
from .shapes import Case, generate, prompt_set, score_cases

SCALES = (0.0, 0.25, 0.5, 0.75, 1.0)
HOLLOW = 0.85  # a filled shape's object pixels fill its outline (ratio 1); an outline's 0.4-0.75


def fill_ratio(frames: np.ndarray) -> np.ndarray:
    """``(F,)`` per frame: the object's pixels over the pixels inside its outline (holes
    filled), NaN where no object is found. 1 for a filled shape, about 0.4-0.75 for the
    ``outline`` style's hollow ones (smaller shapes have no hole to see)."""
    return np.array([m.sum() / binary_fill_holes(m).sum() if m.any() else np.nan for m in object_masks(frames)])


def outlined(frames: np.ndarray) -> bool:
    """Whether a clip is in the ``outline`` style: most frames where an object is found
    show it hollow (fill ratio below :data:`HOLLOW`)."""
    ratios = fill_ratio(frames)
    found = ratios[np.isfinite(ratios)]
    return bool(found.size) and float(np.mean(found < HOLLOW)) > 0.5


def in_night(frames: np.ndarray) -> bool:
    """Whether a clip is in the ``night`` style: in most frames the background (the median
    of the border) is nearer the ``night`` blue than the black the model was trained on."""
    backgrounds = background_colours(frames) * 255
    night = np.linalg.norm(backgrounds - np.array(NIGHT), axis=-1) < np.linalg.norm(backgrounds, axis=-1)
    return float(np.mean(night)) > 0.5


# Each shipped style's test of a clip.
STYLE_TESTS = {"outline": outlined, "night": in_night}


def _style_rate(cases: Sequence[Case], clips: Sequence[np.ndarray], style: str) -> dict:
    rate = {}
    for split, seen in (("unseen", False), ("seen", True)):
        chosen = [STYLE_TESTS[style](clip) for case, clip in zip(cases, clips) if case.seen == seen]
        rate[split] = float(np.mean(chosen)) if chosen else float("nan")
    return rate


def ground_truth(cases: Sequence[Case], num_frames: int, size: int, style: str | None) -> list[np.ndarray]:
    """The cases drawn in ``style`` (None: as the training clips are), the calibration row."""
    from ..recipes.shapes_style import render_in_style

    clips = []
    for case in cases:
        spec = sample_specs(1, seed=case.seed, include_only=[(case.colour, case.shape, case.motion)])[0]
        clips.append(render_in_style(spec, 2 * num_frames, size, style)[::2])
    return clips


def main(argv: Sequence[str] | None = None) -> int:
    from ..assets import DEFAULT_MODEL_DIR
    from ..recipes.shapes_style import STYLES
    from ..recipes.shapes_tiny import RESOLUTION

    parser = eval_parser(__doc__.splitlines()[0], "eval-style")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--style", default="outline", choices=sorted(STYLE_TESTS), help="a shipped style")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    args = parser.parse_args(argv)
    cases = prompt_set(args.prompts, args.seed)
    pipe = LumierePipeline.from_pretrained(args.model, dtype=torch.float32)
    suffix = f", {STYLES[args.style].phrase}"
    truth = ground_truth(cases, 16, RESOLUTION, args.style)
    results: dict = {
        "settings": {**vars(args), "model": str(args.model), "out": str(args.out), "suffix": suffix},
        "ground_truth_in_style": {**score_cases(cases, truth), "style": _style_rate(cases, truth, args.style)},
    }
    for scale in args.scales:
        start = time.perf_counter()
        with stylize(pipe, args.style, scale):
            clips = generate(pipe, cases, 16, args.steps, args.guidance, prompt_suffix=suffix)
        results[str(scale)] = {**score_cases(cases, clips), "style": _style_rate(cases, clips, args.style),
                               "seconds_per_clip": (time.perf_counter() - start) / len(cases)}  # fmt: skip
        print(f"[eval-style] style_scale {scale}: {results[str(scale)]['style']}", flush=True)
    write_results(args.out, "eval-style", results, markdown_table(results), args.overwrite)
    return 0


def markdown_table(results: dict) -> str:
    keys = ("colour", "shape", "motion", "motion_direction")
    lines = ["| style_scale | split | style | " + " | ".join(keys) + " |", "|---|---|---|" + "---|" * len(keys)]
    for name, report in results.items():
        if name == "settings":
            continue
        for split in ("unseen", "seen"):
            cells = [f"{report[split][k]:.3g}" for k in keys]
            lines.append(f"| {name} | {split} | {report['style'][split]:.3g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
