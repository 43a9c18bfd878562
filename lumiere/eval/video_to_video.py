"""Scoring video-to-video (SDEdit) colour edits from pixels, as a curve over strength.

    python -m lumiere.eval.video_to_video [--model DIR] [--cases 32] [--strengths 0.4 0.5 0.6 0.7 0.8]

Each case is a :func:`lumiere.eval.shapes.prompt_set` triple, the *target* of the edit
(half held-out, "unseen", half seen in training). The source is the ground-truth clip of
the same shape and motion in another colour (the next one in the palette), rendered as the
training clips are read (:func:`lumiere.eval.editing.edit_case`); the prompt is the
target's caption. Per strength, from the output's pixels (:func:`score_clip`):

* ``colour``: the target colour is read; ``shape``: the source's shape is kept;
* ``motion``: the source's motion is read, and ``direction`` the same over the 8-direction
  cases (the goal is read there);
* ``track_error_px``: the median distance of the output's centroid from the source's;
  ``track_correlation``: the correlation of the two centroid tracks (their displacements
  from their means), undefined (skipped) for a source that does not move.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.shapes import COLOURS, DIRECTIONS
from ..pipelines import LumierePipeline, LumiereVideoToVideoPipeline
from .cli import eval_parser, write_results
from .editing import edit_case, summarize
from .scoring import score_clip
from .shapes import Case, prompt_set

STRENGTHS = (0.4, 0.5, 0.6, 0.7, 0.8)
SCORES = ("colour", "shape", "motion", "direction", "track_error_px", "track_correlation")


def source_case(target: Case) -> Case:
    """The case whose clip is edited into ``target``: the next colour, all else the same."""
    colour = COLOURS[(COLOURS.index(target.colour) + 1) % len(COLOURS)]
    return Case(colour, target.shape, target.motion, target.seen, target.seed)


def track_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two centroid tracks ``(F, 2)`` about their means; NaN where either
    does not move (or was not found)."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    norm = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / norm) if np.isfinite(norm) and norm > 1e-6 else float("nan")


def score_edit(target: Case, source_center: np.ndarray, frames: np.ndarray) -> dict:
    """The scores of one edited clip, uint8 ``(F, H, W, 3)``, against its source's track."""
    score = score_clip(frames)
    error = np.linalg.norm(score.center - source_center, axis=-1)
    return {
        "colour": score.colour == target.colour,
        "shape": score.shape == target.shape,
        "motion": score.motion == target.motion,
        "direction": (score.motion == target.motion) if target.motion in DIRECTIONS else None,
        "track_error_px": float(np.nanmedian(error)) if np.isfinite(error).any() else float("nan"),
        "track_correlation": track_correlation(score.center, source_center),
    }


def evaluate(
    pipe: LumiereVideoToVideoPipeline, cases: Sequence[Case], strengths: Sequence[float], settings: dict
) -> dict[str, list[dict]]:
    """Per strength (``str(strength)``), the scores of every case."""
    rows: dict[str, list[dict]] = {str(s): [] for s in strengths}
    for number, target in enumerate(cases):
        source = edit_case(source_case(target))
        print(f"[eval-v2v] case {number + 1}/{len(cases)}: {source.prompt} -> {target.prompt}", flush=True)
        for strength in strengths:
            frames = pipe(source.clip, target.prompt, strength=strength, output_type="np",
                          generator=torch.Generator().manual_seed(target.seed), **settings).frames[0]  # fmt: skip
            frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
            rows[str(strength)].append(score_edit(target, source.center, frames))
    return rows


def markdown_table(summary: dict) -> str:
    lines = ["| strength | split | " + " | ".join(SCORES) + " |", "|---|---|" + "---|" * len(SCORES)]
    for strength, splits in summary.items():
        for split, means in splits.items():
            cells = [f"{means[k]:.3g} ({means[f'{k}_n']})" for k in SCORES]
            lines.append(f"| {strength} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from ..assets import DEFAULT_MODEL_DIR

    parser = eval_parser(__doc__.splitlines()[0], "eval-v2v")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="text-to-video pipeline folder")
    parser.add_argument("--cases", type=int, default=32, help="half held-out target triples, half seen")
    parser.add_argument("--strengths", type=float, nargs="+", default=list(STRENGTHS))
    args = parser.parse_args(argv)
    cases = prompt_set(args.cases, args.seed)
    model = LumierePipeline.from_pretrained(args.model, dtype=torch.float32)
    pipe = LumiereVideoToVideoPipeline.from_pipe(model)
    pipe.set_progress_bar_config(disable=True)
    start = time.perf_counter()
    rows = evaluate(pipe, cases, args.strengths, dict(num_inference_steps=args.steps, guidance_scale=args.guidance))
    seconds = time.perf_counter() - start
    summary = summarize(rows, [case.seen for case in cases])
    results = {
        "settings": {**vars(args), "model": str(args.model), "out": str(args.out)},
        "cases": [{"source": source_case(c).prompt, "target": c.prompt, "seen": c.seen} for c in cases],
        "summary": summary, "rows": rows,
        "seconds_per_case_and_strength": seconds / (len(cases) * len(args.strengths)),
    }  # fmt: skip
    write_results(args.out, "eval-v2v", results, markdown_table(summary), args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
