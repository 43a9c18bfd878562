"""Scoring spatial super-resolution (SSR) from pixels, and the seams of temporal windows.

    python -m lumiere.eval.super_resolution [--model DIR] [--cases 16] [--seam-cases 16] [--seam-frames 32]

**Quality.** Each case is a :func:`lumiere.eval.shapes.prompt_set` triple (half held out)
rendered as the training clips are read, at the output size (the ground truth), then
shrunk by area averaging (the training degradation, :func:`lumiere.super_resolution.downsample`)
to the input. Scored per frame against the ground truth: PSNR and SSIM of the SSR output
and of bicubic upsampling of the same input; and the existing scorer's colour, shape and
motion read from the SSR output and from the low-resolution input.

**Seams.** ``--seam-cases`` clips of ``--seam-frames`` frames are upscaled three ways: over
temporal windows averaged at every step (MultiDiffusion, ``window_size`` frames, stride
half of it), over non-overlapping windows (stride = ``window_size``: the naive way) and in
one pass over the whole clip. Per transition ``t -> t+1`` the flicker is the mean absolute
frame-to-frame change that the ground truth does not have, ``|(out[t+1] - out[t]) -
(gt[t+1] - gt[t])|`` in 1/255 units, and the centroid's excess acceleration ``|a_out -
a_gt|`` in px per frame^2 at each frame. A transition (or frame) is at a boundary when it
crosses the edge of one of that run's windows (a frame where a window starts, or the
first after one ends); the ratio of the boundary mean to the interior mean is the seam
score (1: no seam). The one-pass run is scored on the averaging windows' edges.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from ..data.shapes import render_clip, sample_specs
from ..pipelines import LumiereSuperResolutionPipeline
from ..super_resolution import downsample, upsample
from .cli import eval_parser, write_results
from .editing import psnr, summarize, uint8_frames
from .scoring import score_clip
from .shapes import Case, prompt_set

RENDER_STRIDE = 2  # training clips are read every 2nd rendered frame
METHODS = ("averaged", "non_overlapping", "one_pass")


def ground_truth(case: Case, num_frames: int, size: int) -> np.ndarray:
    """The clip of ``case`` at ``size`` px, uint8 ``(F, H, W, 3)``, read as training clips are."""
    spec = sample_specs(1, seed=case.seed, include_only=[(case.colour, case.shape, case.motion)])[0]
    return render_clip(spec, RENDER_STRIDE * num_frames, size)[::RENDER_STRIDE]


def _tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(F, H, W, 3)`` -> float ``(F, 3, H, W)`` in [0, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255


def _pixels(frames: torch.Tensor) -> np.ndarray:
    """Float ``(F, 3, H, W)`` in [0, 1] -> uint8 ``(F, H, W, 3)``."""
    return uint8_frames(frames.permute(0, 2, 3, 1))


def shrink(frames: np.ndarray, scale: int) -> np.ndarray:
    """The low-resolution input of a ground-truth clip: area averaged, as in training."""
    return _pixels(downsample(_tensor(frames), scale))


def bicubic(frames: np.ndarray, scale: int) -> np.ndarray:
    """The baseline: ``frames`` upsampled ``scale`` times bicubically."""
    height, width = frames.shape[1:3]
    return _pixels(upsample(_tensor(frames), (height * scale, width * scale)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 clips ``(F, H, W, 3)`` (Gaussian window, sigma 1.5, per frame
    and channel, the usual constants)."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    sigma = (0, 1.5, 1.5, 0)  # spatial axes only

    def blur(z):
        return gaussian_filter(z, sigma, mode="reflect")

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(index.mean())


def score_quality(case: Case, truth: np.ndarray, low: np.ndarray, output: np.ndarray, scale: int) -> dict:
    """PSNR/SSIM of the SSR ``output`` and of bicubic ``low`` against ``truth``, and what the
    scorer reads from ``output`` and from ``low``."""
    base = bicubic(low, scale)
    read_out, read_low = score_clip(output), score_clip(low)
    row = {"psnr": psnr(output, truth), "psnr_bicubic": psnr(base, truth),
           "ssim": ssim(output, truth), "ssim_bicubic": ssim(base, truth)}  # fmt: skip
    for name in ("colour", "shape", "motion"):
        row[name] = getattr(read_out, name) == getattr(case, name)
        row[f"{name}_low_res"] = getattr(read_low, name) == getattr(case, name)
    return row


def window_edges(num_frames: int, window_size: int, stride: int) -> set[int]:
    """The frames where one of the windows ``temporal_windows`` makes starts (after the
    first) or the first frame after one ends."""
    from ..pipelines.windows import temporal_windows

    edges = set()
    for window in temporal_windows(num_frames, window_size, stride):
        edges |= {window.start, window.stop}
    return edges - {0, num_frames}


def seam_scores(output: np.ndarray, truth: np.ndarray | None, edges: set[int]) -> dict:
    """Flicker and centroid acceleration at the ``edges`` frames and elsewhere: in excess of
    ``truth``'s, or as they are without one (a generated clip)."""
    change = np.diff(output.astype(float), axis=0)
    acceleration = np.diff(score_clip(output).center, 2, axis=0)
    if truth is not None:
        change -= np.diff(truth.astype(float), axis=0)
        acceleration -= np.diff(score_clip(truth).center, 2, axis=0)
    flicker = np.abs(change).mean(axis=(1, 2, 3))  # (F-1,): transition t -> t+1
    crossing = np.array([t + 1 in edges for t in range(len(flicker))])
    acceleration = np.linalg.norm(acceleration, axis=-1)  # (F-2,): at frame t+1
    near = np.array([t + 1 in edges or t + 2 in edges for t in range(len(acceleration))])
    return {
        "flicker_boundary": _finite_mean(flicker[crossing]), "flicker_interior": _finite_mean(flicker[~crossing]),
        "acceleration_boundary": _finite_mean(acceleration[near]),
        "acceleration_interior": _finite_mean(acceleration[~near]),
    }  # fmt: skip


def _finite_mean(values: np.ndarray) -> float:
    """The mean of the finite ``values`` (frames where the object was found); NaN if none."""
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def upscale(pipe: LumiereSuperResolutionPipeline, low: np.ndarray, case: Case, settings: dict, **windows) -> np.ndarray:
    frames = pipe(low, case.prompt, output_type="np", generator=torch.Generator().manual_seed(case.seed),
                  **settings, **windows).frames[0]  # fmt: skip
    return uint8_frames(frames)


def evaluate_quality(pipe, cases: Sequence[Case], num_frames: int, settings: dict) -> tuple[list[dict], float]:
    scale, size = pipe.config.super_resolution_scale, pipe.default_size(None, None)[0]
    rows, start = [], time.perf_counter()
    for number, case in enumerate(cases):
        print(f"[eval-ssr] quality {number + 1}/{len(cases)}: {case.prompt}", flush=True)
        truth = ground_truth(case, num_frames, size)
        low = shrink(truth, scale)
        rows.append(score_quality(case, truth, low, upscale(pipe, low, case, settings), scale))
    return rows, (time.perf_counter() - start) / len(cases)


def evaluate_seams(pipe, cases: Sequence[Case], num_frames: int, window_size: int, settings: dict) -> dict:
    scale, size = pipe.config.super_resolution_scale, pipe.default_size(None, None)[0]
    strides = {"averaged": window_size // 2, "non_overlapping": window_size, "one_pass": None}
    rows: dict[str, list[dict]] = {method: [] for method in METHODS}
    seconds = dict.fromkeys(METHODS, 0.0)
    for number, case in enumerate(cases):
        print(f"[eval-ssr] seams {number + 1}/{len(cases)}: {case.prompt}", flush=True)
        truth = ground_truth(case, num_frames, size)
        low = shrink(truth, scale)
        for method, stride in strides.items():
            windows = {} if stride is None else dict(window_size=window_size, window_stride=stride)
            start = time.perf_counter()
            output = upscale(pipe, low, case, settings, **windows)
            seconds[method] += time.perf_counter() - start
            edges = window_edges(num_frames, window_size, stride or window_size // 2)
            rows[method].append(seam_scores(output, truth, edges))
    return {"rows": rows, "seconds_per_clip": {m: s / len(cases) for m, s in seconds.items()}}


def markdown_table(results: dict) -> str:
    quality = results["quality"]["summary"]["ssr"]
    keys = [k for k in quality["unseen"] if not k.endswith("_n")]
    lines = ["| split | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for split in ("unseen", "seen"):
        lines.append(f"| {split} | " + " | ".join(f"{quality[split][k]:.3g}" for k in keys) + " |")
    if results["seams"] is None:
        return "\n".join(lines)
    seams = results["seams"]["summary"]
    names = ("flicker_boundary", "flicker_interior", "acceleration_boundary", "acceleration_interior")
    lines += ["", "| windows | " + " | ".join(names) + " | flicker ratio | acceleration ratio |",
              "|---|" + "---|" * (len(names) + 2)]  # fmt: skip
    for method in METHODS:
        m = seams[method]
        cells = [f"{m[k]:.3g}" for k in names]
        cells += [f"{m['flicker_boundary'] / m['flicker_interior']:.3g}",
                  f"{m['acceleration_boundary'] / m['acceleration_interior']:.3g}"]  # fmt: skip
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_rows(rows: list[dict]) -> dict:
    return {key: _finite_mean(np.array([row[key] for row in rows], dtype=float)) for key in rows[0]}


def main(argv: Sequence[str] | None = None) -> int:
    from ..assets import SSR_MODEL_DIR
    from ..recipes.shapes_ssr import SAMPLING

    parser = eval_parser(__doc__.splitlines()[0], "eval-ssr", SAMPLING)
    parser.add_argument("--model", type=Path, default=SSR_MODEL_DIR, help="super-resolution pipeline folder")
    parser.add_argument("--cases", type=int, default=16, help="half held-out triples, half seen")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--noise-level", type=int, default=None, help="default: the pipeline's")
    parser.add_argument("--seam-cases", type=int, default=16, help="0 skips the seam measurements")
    parser.add_argument("--seam-frames", type=int, default=32)
    parser.add_argument("--window-size", type=int, default=16)
    args = parser.parse_args(argv)
    if args.cases < 1 or args.seam_cases < 0:
        parser.error(f"--cases must be >= 1 and --seam-cases >= 0; got {args.cases} and {args.seam_cases}")
    pipe = LumiereSuperResolutionPipeline.from_pretrained(args.model, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    settings = dict(num_inference_steps=args.steps, guidance_scale=args.guidance)
    if args.noise_level is not None:
        settings["noise_level"] = args.noise_level
    cases = prompt_set(args.cases, args.seed)
    rows, seconds = evaluate_quality(pipe, cases, args.frames, settings)
    seams = None
    if args.seam_cases:
        seam_cases = prompt_set(args.seam_cases, args.seed + 1000)
        seams = evaluate_seams(pipe, seam_cases, args.seam_frames, args.window_size, settings)
        seams["summary"] = {m: _mean_rows(seams["rows"][m]) for m in METHODS}
    results = {
        "settings": {**vars(args), "model": str(args.model), "out": str(args.out)},
        "quality": {"summary": summarize({"ssr": rows}, [c.seen for c in cases]), "rows": rows,
                    "seconds_per_clip": seconds},
        "seams": seams,
    }  # fmt: skip
    write_results(args.out, "eval-ssr", results, markdown_table(results), args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
