"""Scoring the conditional applications (image-to-video, inpainting, cinemagraphs) from
pixels, on shapes-world cases made by the generator, held-out triples reported apart.

    python -m lumiere.eval.editing [--model DIR] [--baseline DIR] [--cases 32] [--out DIR]

Each case is a clip rendered like the training clips (32 frames at 32x32, read every 2nd
frame: 16 frames) from the (colour, shape, motion) triple and seed of a
:func:`lumiere.eval.shapes.prompt_set` case, with its true object track:

* image-to-video: frame 0 of the clip, prompted with its caption; scored on frame 0's PSNR
  against the image (before paste-back), the colour and shape kept over the clip
  (:func:`score_clip` of the output), the prompted motion, and the direction subset;
* inpainting: the clip with a space-time box over the object's path on frames 4-11
  regenerated; scored on the PSNR outside the box (before paste-back) and the object's
  centroid inside it against its true track (share of masked frames within 2 px);
* cinemagraph: frame 0 and a region around the object's whole true path to animate;
  scored on the mean absolute frame-to-frame change outside the region (before and after
  paste-back, in 1/255 units) and the prompted motion read from the output.

The baseline beside each is the usual training-free "replacement" trick on the
unconditional text-to-video model: after every denoising step the known pixels are
replaced by the given clip noised to the next step (the clip itself after the last).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..data.shapes import DIRECTIONS, render_clip, sample_specs, track
from ..pipelines import (
    LumiereCinemagraphPipeline,
    LumiereImageToVideoPipeline,
    LumiereInpaintPipeline,
    LumierePipeline,
)
from .cli import eval_parser, write_results
from .scoring import score_clip
from .shapes import Case, prompt_set

APPLICATIONS = ("image_to_video", "inpainting", "cinemagraph")
RENDER_FRAMES, STRIDE, SIZE = 32, 2, 32  # the training clips, as the edit recipe reads them
NUM_FRAMES = RENDER_FRAMES // STRIDE
HIDDEN_FRAMES = slice(4, 12)  # the inpainting box's frames
CENTROID_TOLERANCE = 2.0  # pixels


@dataclass(frozen=True, eq=False)
class EditCase:
    """One shapes-world case: ``clip`` uint8 ``(F, H, W, 3)``, the true ``center`` ``(F, 2)``
    (x, y) and ``radius`` ``(F,)`` of its object, in pixels."""

    case: Case
    clip: np.ndarray
    center: np.ndarray
    radius: np.ndarray

    @property
    def prompt(self) -> str:
        return self.case.prompt


def edit_case(case: Case) -> EditCase:
    """The clip of ``case``'s triple and seed, rendered as the training clips are read."""
    spec = sample_specs(1, seed=case.seed, include_only=[(case.colour, case.shape, case.motion)])[0]
    path = track(spec, RENDER_FRAMES, SIZE)
    clip = render_clip(spec, RENDER_FRAMES, SIZE)[::STRIDE]
    return EditCase(case, clip, path.center[::STRIDE], np.sqrt(path.area[::STRIDE] / math.pi))


def _box(center: np.ndarray, radius: np.ndarray, margin: float = 1.5) -> np.ndarray:
    """A ``(H, W)`` 0/1 mask of the box around circles ``center`` ``(N, 2)`` of ``radius``
    ``(N,)`` (the shapes' reach, at most 1.3 radii for a triangle) plus ``margin`` px."""
    reach = 1.3 * radius + margin
    left, top = np.floor((center - reach[:, None]).min(axis=0)).clip(0).astype(int)
    right, bottom = np.ceil((center + reach[:, None]).max(axis=0)).clip(max=SIZE).astype(int)
    mask = np.zeros((SIZE, SIZE), dtype=np.float32)
    mask[top:bottom, left:right] = 1
    return mask


def inpainting_mask(case: EditCase) -> np.ndarray:
    """``(F, H, W)``, 1 = regenerate: a box over the object's path on :data:`HIDDEN_FRAMES`."""
    mask = np.zeros((NUM_FRAMES, SIZE, SIZE), dtype=np.float32)
    mask[HIDDEN_FRAMES] = _box(case.center[HIDDEN_FRAMES], case.radius[HIDDEN_FRAMES])
    return mask


def cinemagraph_region(case: EditCase) -> np.ndarray:
    """``(H, W)``, 1 = animate: a box around the object's whole true path."""
    return _box(case.center, case.radius)


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR in dB of uint8 (or [0, 1] float) images over the pixels ``where`` is true."""
    a, b = (np.asarray(x, dtype=np.float64) / (255.0 if x.dtype == np.uint8 else 1.0) for x in (a, b))
    error = (a - b) ** 2
    mse = error[where].mean() if where is not None else error.mean()
    return float("inf") if mse == 0 else float(10 * math.log10(1.0 / mse))


def uint8_frames(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """Frames in [0, 1] (clipped) as uint8, the layout kept: how every score reads a clip."""
    return (np.clip(np.asarray(frames), 0, 1) * 255).round().astype(np.uint8)


def replacement_callback(clip: np.ndarray, known: np.ndarray, seed: int) -> Callable:
    """The training-free baseline for a pixel-space text-to-video pipeline: after each step
    the latents where ``known`` (broadcastable ``(F, H, W)``, 1 = known) are replaced by
    ``clip`` (uint8 ``(F, H, W, 3)``) noised to the next timestep, the clip itself after the last."""
    clean = torch.from_numpy(clip).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    mask = torch.as_tensor(np.broadcast_to(known, clip.shape[:3]).copy())[None, None].float()
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))

    def callback(pipe, i, t, tensors):
        timesteps = pipe.scheduler.timesteps
        latents = tensors["latents"]
        target = clean if i + 1 == len(timesteps) else pipe.scheduler.add_noise(clean, noise, timesteps[i + 1 : i + 2])
        return {"latents": torch.lerp(latents, target.to(latents), mask.to(latents))}

    return callback


def _kept(score, case: EditCase) -> dict:
    return {"colour": score.colour == case.case.colour, "shape": score.shape == case.case.shape}


def score_image_to_video(case: EditCase, raw: np.ndarray) -> dict:
    """``raw``: the output before paste-back, uint8 ``(F, H, W, 3)``."""
    score = score_clip(raw)
    motion = case.case.motion
    return {
        "frame0_psnr": psnr(raw[0], case.clip[0]), **_kept(score, case), "motion": score.motion == motion,
        "direction": (score.motion == motion) if motion in DIRECTIONS else None,
    }  # fmt: skip


def score_inpainting(case: EditCase, raw: np.ndarray, mask: np.ndarray) -> dict:
    score = score_clip(raw)
    hidden = mask[HIDDEN_FRAMES].max(axis=(1, 2)) > 0
    error = np.linalg.norm(score.center[HIDDEN_FRAMES] - case.center[HIDDEN_FRAMES], axis=-1)[hidden]
    return {
        "outside_psnr": psnr(raw, case.clip, np.broadcast_to(mask[..., None] == 0, raw.shape)),
        "centroid_within_2px": float(np.mean(np.nan_to_num(error, nan=np.inf) <= CENTROID_TOLERANCE)),
        "centroid_error_px": float(np.nanmedian(error)) if np.isfinite(error).any() else float("nan"),
        **_kept(score, case),
    }  # fmt: skip


def stillness(frames: np.ndarray, region: np.ndarray) -> float:
    """Mean absolute frame-to-frame change outside ``region`` ``(H, W)``, in 1/255 units;
    NaN when the region covers the whole frame."""
    if not (region == 0).any():
        return float("nan")
    change = np.abs(np.diff(frames.astype(np.float64), axis=0)).mean(axis=-1)  # (F-1, H, W)
    return float(change[:, region == 0].mean())


def score_cinemagraph(case: EditCase, raw: np.ndarray, pasted: np.ndarray, region: np.ndarray) -> dict:
    score = score_clip(pasted)
    return {
        "outside_change_raw": stillness(raw, region), "outside_change_pasted": stillness(pasted, region),
        "motion": score.motion == case.case.motion, **_kept(score, case),
    }  # fmt: skip


def _run(pipe, seed: int, settings: dict, *args) -> np.ndarray:
    """The uint8 output of one call before paste-back ``(F, H, W, 3)``."""
    frames = pipe(*args, generator=torch.Generator().manual_seed(seed), paste_known=False, output_type="np",
                  **settings).frames[0]  # fmt: skip
    return uint8_frames(frames)


def evaluate_model(
    model: LumierePipeline, cases: Sequence[EditCase], settings: dict, conditioning_guidance: bool = False
) -> dict[str, list[dict]]:
    """Per-case scores of the conditional ``model`` on each application; ``settings`` are
    the sampling arguments shared with the baseline."""
    settings = dict(settings, conditioning_guidance=conditioning_guidance)
    pipes = {name: cls.from_pipe(model) for name, cls in zip(APPLICATIONS, (
        LumiereImageToVideoPipeline, LumiereInpaintPipeline, LumiereCinemagraphPipeline))}  # fmt: skip
    for pipe in pipes.values():
        pipe.set_progress_bar_config(disable=True)
    rows: dict[str, list[dict]] = {name: [] for name in APPLICATIONS}
    for number, case in enumerate(cases):
        print(f"[eval-edit] case {number + 1}/{len(cases)}: {case.prompt}", flush=True)
        seed = case.case.seed
        raw = _run(pipes["image_to_video"], seed, settings, case.clip[0], case.prompt, NUM_FRAMES)
        rows["image_to_video"].append(score_image_to_video(case, raw))
        mask = inpainting_mask(case)
        raw = _run(pipes["inpainting"], seed, settings, case.clip, mask, case.prompt)
        rows["inpainting"].append(score_inpainting(case, raw, mask))
        region = cinemagraph_region(case)
        raw = _run(pipes["cinemagraph"], seed, settings, case.clip[0], region, case.prompt, NUM_FRAMES)
        # What paste-back makes of it (binary masks): the image outside the region, and on frame 0.
        known = np.maximum(np.arange(NUM_FRAMES)[:, None, None] == 0, region[None] == 0)
        pasted = np.where(known[..., None], case.clip[:1], raw)
        rows["cinemagraph"].append(score_cinemagraph(case, raw, pasted, region))
    return rows


def evaluate_replacement(model: LumierePipeline, cases: Sequence[EditCase], settings: dict) -> dict[str, list[dict]]:
    """The same cases on the unconditional ``model`` with the replacement trick."""
    rows: dict[str, list[dict]] = {name: [] for name in APPLICATIONS}

    def run(case: EditCase, clip: np.ndarray, known: np.ndarray) -> np.ndarray:
        callback = replacement_callback(clip, known, case.case.seed + 1)
        frames = model(case.prompt, num_frames=NUM_FRAMES, generator=torch.Generator().manual_seed(case.case.seed),
                       callback_on_step_end=callback, output_type="np", **settings).frames[0]  # fmt: skip
        return uint8_frames(frames)

    for case in cases:
        first = np.zeros((NUM_FRAMES, 1, 1), dtype=np.float32)
        first[0] = 1
        still = np.repeat(case.clip[:1], NUM_FRAMES, axis=0)
        rows["image_to_video"].append(score_image_to_video(case, run(case, still, first)))
        mask = inpainting_mask(case)
        rows["inpainting"].append(score_inpainting(case, run(case, case.clip, 1 - mask), mask))
        region = cinemagraph_region(case)
        out = run(case, still, np.maximum(first, 1 - region))
        rows["cinemagraph"].append(score_cinemagraph(case, out, out, region))
    return rows


def summarize(rows: dict[str, list[dict]], seen: Sequence[bool]) -> dict:
    """Means of each score per entry of ``rows`` (an application, a strength), seen and
    unseen apart (``seen[i]``: case ``i`` is a training triple); None and NaN entries are
    skipped, and ``KEY_n`` counts what each mean covers."""
    summary: dict = {}
    for name, scores in rows.items():
        summary[name] = {}
        for split, flag in (("seen", True), ("unseen", False)):
            chosen = [row for row, case_seen in zip(scores, seen) if case_seen == flag]
            means = {}
            for key in chosen[0] if chosen else ():
                values = [float(row[key]) for row in chosen if row[key] is not None and np.isfinite(float(row[key]))]
                means[key] = float(np.mean(values)) if values else float("nan")
                means[f"{key}_n"] = len(values)
            summary[name][split] = means
    return summary


def markdown_table(results: dict) -> str:
    """One table per application: rows model x split, columns the scores."""
    lines = []
    for name in APPLICATIONS:
        models = [m for m in ("conditional", "replacement") if m in results]
        keys = [k for k in results[models[0]]["summary"][name]["seen"] if not k.endswith("_n")]
        lines += [f"**{name}**", "", "| model | split | " + " | ".join(keys) + " |",
                  "|---|---|" + "---|" * len(keys)]  # fmt: skip
        for model in models:
            for split in ("unseen", "seen"):
                means = results[model]["summary"][name][split]
                lines.append(f"| {model} | {split} | " + " | ".join(f"{means[k]:.3g}" for k in keys) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from ..assets import DEFAULT_MODEL_DIR, EDIT_MODEL_DIR

    parser = eval_parser(__doc__.splitlines()[0], "eval-edit")
    parser.add_argument("--model", type=Path, default=EDIT_MODEL_DIR, help="conditional pipeline folder")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_MODEL_DIR, help="text-to-video pipeline folder")
    parser.add_argument("--no-baseline", dest="run_baseline", action="store_false")
    parser.add_argument("--cases", type=int, default=32, help="half held-out triples, half seen")
    parser.add_argument(
        "--conditioning-guidance",
        action="store_true",
        help="guide the conditional model on the conditioning too (its pipelines' option)",
    )
    args = parser.parse_args(argv)
    cases = [edit_case(case) for case in prompt_set(args.cases, args.seed)]
    settings = dict(num_inference_steps=args.steps, guidance_scale=args.guidance)
    results: dict = {"settings": {**vars(args), "model": str(args.model), "baseline": str(args.baseline),
                                  "out": str(args.out)}}  # fmt: skip
    conditional = partial(evaluate_model, conditioning_guidance=args.conditioning_guidance)
    runs = [("conditional", args.model, conditional)]
    if args.run_baseline:
        runs.append(("replacement", args.baseline, evaluate_replacement))
    for name, folder, run in runs:
        model = LumierePipeline.from_pretrained(folder, dtype=torch.float32)
        model.set_progress_bar_config(disable=True)
        start = time.perf_counter()
        rows = run(model, cases, settings)
        seconds = time.perf_counter() - start
        results[name] = {"summary": summarize(rows, [case.case.seen for case in cases]), "rows": rows,
                         "seconds_per_clip": seconds / (len(cases) * len(APPLICATIONS))}  # fmt: skip
        print(f"[eval-edit] {name}: {seconds:.0f}s", flush=True)
    write_results(args.out, "eval-edit", results, markdown_table(results), args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
