"""Scoring clips longer than the model was trained on, made over temporal windows.

    python -m lumiere.eval.long_video [--model DIR] [--cases 8] [--frames 64] [--window-size 16]
                                      [--window-weighting flat] [--window-noise independent]

Each case is a :func:`lumiere.eval.shapes.prompt_set` triple (half held out), generated
at ``--frames`` frames by the text-to-video model over windows of ``--window-size``
frames, averaged at every step (stride half a window, MultiDiffusion, weighted and with
the initial noise as ``--window-weighting`` and ``--window-noise`` say) and, for
comparison, over non-overlapping windows (stride = window: the naive way). Scored from
pixels:

* ``colour``, ``shape`` and ``motion`` read over the whole clip (every ``F / 16``-th frame,
  the training clips' length);
* ``heading_kept``, for the 8 directions: the share of consecutive ``--window-size``-frame
  segments in which the object's centroid moves the prompted way (at least 1 px, within
  22.5 degrees): whether the motion carries on across windows;
* seams as in :mod:`lumiere.eval.super_resolution`, without a ground truth: the mean
  absolute frame-to-frame change and the centroid's acceleration at window edges over
  their means elsewhere (1: no seam).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.shapes import DIRECTIONS
from ..pipelines import LumierePipeline
from ..pipelines.windows import NOISES, WEIGHTINGS
from .cli import eval_parser, write_results
from .editing import summarize, uint8_frames
from .scoring import score_clip
from .shapes import Case, prompt_set
from .super_resolution import seam_scores, window_edges

METHODS = ("averaged", "non_overlapping")
SCORES = ("colour", "shape", "motion", "heading_kept", "flicker_boundary", "flicker_interior", "acceleration_boundary",
          "acceleration_interior")  # fmt: skip


TRAINED_FRAMES = 16
HEADING_TOLERANCE = math.radians(22.5)


def heading_kept(center: np.ndarray, motion: str, window_size: int) -> float | None:
    """The share of ``window_size``-frame segments of the centroid track ``(F, 2)`` that
    move at least 1 px within :data:`HEADING_TOLERANCE` of ``motion``'s heading; None for
    a motion without one."""
    if motion not in DIRECTIONS:
        return None
    dx, dy = DIRECTIONS[motion]
    kept = []
    for start in range(0, len(center) - window_size + 1, window_size):
        track = center[start : start + window_size]
        found = track[np.isfinite(track).all(axis=1)]
        step = found[-1] - found[0] if len(found) >= 2 else np.zeros(2)
        angle = abs(math.remainder(math.atan2(step[1], step[0]) - math.atan2(dy, dx), math.tau))
        kept.append(bool(np.linalg.norm(step) >= 1 and angle <= HEADING_TOLERANCE))
    return float(np.mean(kept))


def score_long(case: Case, frames: np.ndarray, window_size: int, edges: set[int]) -> dict:
    whole = score_clip(frames[:: max(len(frames) // TRAINED_FRAMES, 1)])
    return {
        "colour": whole.colour == case.colour, "shape": whole.shape == case.shape,
        "motion": whole.motion == case.motion,
        "heading_kept": heading_kept(score_clip(frames).center, case.motion, window_size),
        **seam_scores(frames, None, edges),
    }  # fmt: skip


def evaluate(
    pipe: LumierePipeline,
    cases: Sequence[Case],
    num_frames: int,
    window_size: int,
    settings: dict,
    averaged: dict | None = None,
) -> dict:
    """``averaged``: window options of the averaged run alone (``window_weighting``,
    ``window_noise``); the naive run keeps the defaults."""
    strides = {"averaged": window_size // 2, "non_overlapping": window_size}
    options = {"averaged": averaged or {}, "non_overlapping": {}}
    rows: dict[str, list[dict]] = {method: [] for method in METHODS}
    seconds = dict.fromkeys(METHODS, 0.0)
    for number, case in enumerate(cases):
        print(f"[eval-long] {number + 1}/{len(cases)}: {case.prompt}", flush=True)
        for method, stride in strides.items():
            start = time.perf_counter()
            frames = pipe(case.prompt, num_frames=num_frames, window_size=window_size, window_stride=stride,
                          output_type="np", generator=torch.Generator().manual_seed(case.seed), **options[method],
                          **settings).frames[0]  # fmt: skip
            seconds[method] += time.perf_counter() - start
            frames = uint8_frames(frames)
            rows[method].append(score_long(case, frames, window_size, window_edges(num_frames, window_size, stride)))
    return {"rows": rows, "seconds_per_clip": {m: s / len(cases) for m, s in seconds.items()}}


def markdown_table(summary: dict) -> str:
    keys = SCORES
    lines = ["| windows | split | " + " | ".join(keys) + " | flicker ratio |", "|---|---|" + "---|" * (len(keys) + 1)]
    for method, splits in summary.items():
        for split, m in splits.items():
            ratio = m["flicker_boundary"] / m["flicker_interior"]
            lines.append(f"| {method} | {split} | " + " | ".join(f"{m[k]:.3g}" for k in keys) + f" | {ratio:.3g} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from ..assets import DEFAULT_MODEL_DIR

    parser = eval_parser(__doc__.splitlines()[0], "eval-long")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="text-to-video pipeline folder")
    parser.add_argument("--cases", type=int, default=8, help="half held-out triples, half seen")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--window-size", type=int, default=16)
    parser.add_argument("--window-weighting", choices=WEIGHTINGS, default="flat", help="of the averaged windows")
    parser.add_argument("--window-noise", choices=NOISES, default="independent", help="of the averaged windows")
    args = parser.parse_args(argv)
    pipe = LumierePipeline.from_pretrained(args.model, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    cases = prompt_set(args.cases, args.seed)
    settings = dict(num_inference_steps=args.steps, guidance_scale=args.guidance)
    averaged = dict(window_weighting=args.window_weighting, window_noise=args.window_noise)
    run = evaluate(pipe, cases, args.frames, args.window_size, settings, averaged)
    summary = summarize(run["rows"], [case.seen for case in cases])
    results = {"settings": {**vars(args), "model": str(args.model), "out": str(args.out)}, "summary": summary,
               "cases": [case.prompt for case in cases], **run}  # fmt: skip
    write_results(args.out, "eval-long", results, markdown_table(summary), args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
