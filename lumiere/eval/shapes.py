"""``lumiere eval``: generate shapes-world clips for a prompt set and score them from pixels.

The prompt set is split in two: *seen* (colour, shape, motion) triples, which occurred in
training, and *unseen* ones, the held-out triples of :data:`lumiere.data.shapes.HELD_OUT`
(every colour, shape and motion was trained, never in that combination). The same
prompts, seeds and sampler settings also run through a **per-frame baseline**: the
model's own text-to-image U-Net with no temporal layers, every frame denoised on its own.
For pixel-space models the results also hold the direction-word probe
(:mod:`lumiere.eval.direction_word`), which tells whether the U-Net reads the direction
word at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.shapes import COMBINATIONS, HELD_OUT, describe
from ..files import atomic_file, write_text
from ..models.space_time_unet import SpaceTimeUNet
from ..pipelines import LumierePipeline
from ..pipelines.schedulers import using_scheduler
from .direction_word import direction_word_probe
from .scoring import chance_levels, score_clip, summarize


@dataclass(frozen=True)
class Case:
    colour: str
    shape: str
    motion: str
    seen: bool
    seed: int

    @property
    def prompt(self) -> str:
        return describe(self.colour, self.shape, self.motion)


def prompt_set(num_prompts: int = 64, seed: int = 0) -> list[Case]:
    """Half unseen (the held-out triples in turn, with new seeds), half seen (distinct
    training triples drawn at random)."""
    unseen_count = num_prompts // 2
    unseen = [Case(*HELD_OUT[i % len(HELD_OUT)], seen=False, seed=seed + i) for i in range(unseen_count)]
    rng = np.random.default_rng(seed)
    training = [triple for triple in COMBINATIONS if triple not in set(HELD_OUT)]
    picks = rng.choice(len(training), size=num_prompts - unseen_count, replace=False)
    seen = [Case(*training[index], seen=True, seed=seed + unseen_count + n) for n, index in enumerate(picks)]
    return unseen + seen


def per_frame_baseline(pipeline: LumierePipeline) -> LumierePipeline:
    """The same text-to-image U-Net with no temporal layers or resampling: each frame is
    denoised independently, as a text-to-image model sampled frame by frame, from the
    same initial noise as ``pipeline`` (frame correlation included)."""
    unet = SpaceTimeUNet.from_unet2d(pipeline.unet.to_unet2d(), temporal_downsample=False)
    return LumierePipeline.from_pipe(pipeline, unet=unet)


@torch.no_grad()
def generate(
    pipeline: LumierePipeline,
    cases: Sequence[Case],
    num_frames: int,
    steps: int,
    guidance: float,
    batch_size: int = 8,
    autocast: bool = False,
    prompt_suffix: str = "",
) -> list[np.ndarray]:
    """One clip per case, uint8 ``(F, H, W, 3)``, prompted with its caption plus
    ``prompt_suffix`` (a style phrase). Each clip's noise comes from its own generator
    seeded by the case, so a clip does not depend on ``batch_size``."""
    pipeline.set_progress_bar_config(disable=True)
    clips = []
    for start in range(0, len(cases), batch_size):
        batch = cases[start : start + batch_size]
        frames = pipeline(
            [case.prompt + prompt_suffix for case in batch], num_frames=num_frames, num_inference_steps=steps,
            guidance_scale=guidance, generator=[torch.Generator().manual_seed(case.seed) for case in batch],
            output_type="np", autocast=autocast,
        ).frames  # fmt: skip
        clips.extend((np.clip(frames, 0, 1) * 255).round().astype(np.uint8))
    return clips


def score_cases(cases: Sequence[Case], clips: Sequence[np.ndarray]) -> dict:
    scores = [score_clip(clip) for clip in clips]
    report = {}
    for name, seen in (("seen", True), ("unseen", False)):
        chosen = [(case, score) for case, score in zip(cases, scores) if case.seen == seen]
        report[name] = summarize([(c.colour, c.shape, c.motion) for c, _ in chosen], [s for _, s in chosen])
    report["clips"] = [{**asdict(case), "prompt": case.prompt, "predicted": [s.colour, s.shape, s.motion]}
                       for case, s in zip(cases, scores)]  # fmt: skip
    return report


def evaluate(
    pipeline: LumierePipeline,
    num_prompts: int = 64,
    num_frames: int = 16,
    steps: int = 25,
    guidance: float = 3.0,
    baseline: bool = True,
    seed: int = 0,
    save_dir: str | Path | None = None,
    autocast: bool = False,
    overwrite: bool = False,
    scheduler: str | None = None,
) -> dict:
    """Scores of ``pipeline`` (and of its per-frame baseline) on :func:`prompt_set`, and
    for a pixel-space ``pipeline`` its direction-word probe rows (``"direction_word"``).
    With ``save_dir``, the clips (``NAME-clips.npz``) and ``eval.json`` are written there,
    replacing earlier ones only with ``overwrite``. ``scheduler`` names the sampler
    (:mod:`lumiere.pipelines.schedulers`; None: the model's own)."""
    cases = prompt_set(num_prompts, seed)
    settings = dict(num_prompts=num_prompts, num_frames=num_frames, steps=steps, guidance=guidance, seed=seed,
                    autocast=autocast, scheduler=scheduler)  # fmt: skip
    results = {"settings": settings, "chance": chance_levels()}
    models = {"lumiere": pipeline}
    if baseline:
        models["per_frame_baseline"] = per_frame_baseline(pipeline)
    for name, model in models.items():
        with using_scheduler(model, scheduler):
            clips = generate(model, cases, num_frames, steps, guidance, autocast=autocast)
        results[name] = score_cases(cases, clips)
        if save_dir is not None:
            with atomic_file(Path(save_dir) / f"{name}-clips.npz", overwrite) as path:
                np.savez_compressed(path, *clips)
    if pipeline.vae is None:
        rows = direction_word_probe(pipeline, num_frames=num_frames, seed=seed)
        results["direction_word"] = [asdict(row) for row in rows]
    if save_dir is not None:
        write_text(Path(save_dir) / "eval.json", json.dumps(results, indent=1), overwrite)
    return results


def markdown_table(results: dict) -> str:
    """The accuracies of :func:`evaluate`'s ``results``, one row per model and split, then
    the chance levels, as a Markdown table."""
    lines = [
        "| model | split | clips | colour | shape | motion | direction (clips) | colour drift | background flicker |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model in ("lumiere", "per_frame_baseline"):
        for split in ("seen", "unseen"):
            if model in results:
                row = results[model][split]
                lines.append(
                    f"| {model} | {split} | {row['num_clips']} | {row['colour']:.1%} | {row['shape']:.1%} | "
                    f"{row['motion']:.1%} | {row['motion_direction']:.1%} ({row['num_direction_clips']}) | "
                    f"{row['colour_drift']:.3f} | {row['background_flicker']:.4f} |"
                )
    chance = results["chance"]
    lines.append(f"| chance | | | {chance['colour']:.1%} | {chance['shape']:.1%} | {chance['motion']:.1%} | | | |")
    return "\n".join(lines)
