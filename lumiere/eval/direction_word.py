"""Does a model read the direction word of its prompt? A one-step probe on ground-truth clips.

Generated clips (:func:`lumiere.eval.shapes.evaluate`) show whether objects move the
prompted way; this probe tells a conditioning failure from a sampling one, in seconds.
Ground-truth clips of an object moving along an axis are noised to a timestep, and the
U-Net's one-step estimate of the clean clip is taken twice: prompted with the clip's own
caption, and with the opposite direction ("moving left" for "moving right"). A model that
reads the word moves the estimate's object further along the prompted way; a model that
ignores it gives the same estimate for both prompts. How far the true-word estimate drifts
across the axis is reported too: a model can get the direction roughly right and still
turn "moving left" into "moving up-left". At high noise the clip itself says
little, so that is where the word has to do the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..codec import encode_text, pixels_from_frames
from ..data.shapes import COMBINATIONS, DIRECTIONS, caption, render_clip, sample_specs
from ..pipelines import LumierePipeline
from ..pipelines.sampling import predicted_original

OPPOSITE = {
    "moving left": "moving right",
    "moving right": "moving left",
    "moving up": "moving down",
    "moving down": "moving up",
}


@dataclass(frozen=True)
class DirectionWordRow:
    """Mean over the probe clips at one timestep. Displacements are in pixels, first to last
    frame, along each clip's true direction (positive: the way the clip moves)."""

    timestep: int
    data: float  # of the clean clips
    true_word: float  # of the estimate prompted with the clip's caption
    opposite_word: float  # of the estimate prompted with the opposite direction
    true_word_mse: float
    opposite_word_mse: float
    # Mean |displacement| across the axis, true-word estimate (the clean clips: 0). None in
    # results written before it was measured.
    true_word_sideways: float | None = None


def _centroid_steps(clips: torch.Tensor) -> torch.Tensor:
    """``(B, 2)``: the brightness centroid's ``(x, y)`` move, first to last frame, in pixels
    (y down). ``clips`` ``(B, 3, F, H, W)`` in [-1, 1] on a black background."""
    weight = (clips.clamp(-1, 1) + 1).sum(dim=1)  # (B, F, H, W); the background adds nothing
    weight = weight / weight.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-6)
    rows = torch.arange(clips.shape[-2], dtype=clips.dtype, device=clips.device)
    cols = torch.arange(clips.shape[-1], dtype=clips.dtype, device=clips.device)
    x = (weight.sum(dim=-2) * cols).sum(dim=-1)  # (B, F)
    y = (weight.sum(dim=-1) * rows).sum(dim=-1)
    return torch.stack([x[:, -1] - x[:, 0], y[:, -1] - y[:, 0]], dim=-1)


def _unit(motions: Sequence[str], like: torch.Tensor) -> torch.Tensor:
    """``(B, 2)`` unit ``(x, y)`` vectors of the axis-aligned ``motions``."""
    return torch.tensor([DIRECTIONS[motion] for motion in motions], dtype=like.dtype, device=like.device)


def displacement(clips: torch.Tensor, motions: Sequence[str]) -> torch.Tensor:
    """Per clip ``(B,)``: how far the brightness centroid moves, first to last frame, along
    its motion (``"moving right"`` counts +x). ``clips`` ``(B, 3, F, H, W)`` in [-1, 1] on a
    black background."""
    return (_centroid_steps(clips) * _unit(motions, clips)).sum(dim=-1)


def sideways(clips: torch.Tensor, motions: Sequence[str]) -> torch.Tensor:
    """Per clip ``(B,)``: how far the centroid moves across its motion's axis, first to last
    frame, unsigned (an axis-aligned move drifting towards a diagonal). Same inputs as
    :func:`displacement`."""
    unit = _unit(motions, clips)
    return (_centroid_steps(clips) * unit.flip(-1)).sum(dim=-1).abs()


@torch.no_grad()
def direction_word_probe(
    pipeline: LumierePipeline,
    timesteps: Sequence[int] = (950, 850, 700),
    num_clips: int = 16,
    num_frames: int = 16,
    seed: int = 0,
) -> list[DirectionWordRow]:
    """One :class:`DirectionWordRow` per timestep, from ``num_clips`` ground-truth clips of
    the four axis-aligned moves (all colours and shapes, black background) at the U-Net's
    sample size. Pixel-space pipelines only: the centroid is read from the pixels."""
    if pipeline.vae is not None:
        raise ValueError("direction_word_probe reads pixels; got a latent pipeline (pipeline.vae is set)")
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2 (a displacement needs a first and a last frame), got {num_frames}")
    limit = pipeline.scheduler.config.num_train_timesteps
    if not timesteps or any(not 0 <= int(t) < limit for t in timesteps):
        raise ValueError(f"timesteps must be a non-empty list of values in [0, {limit}), got {list(timesteps)}")
    unet, device = pipeline.unet, pipeline._execution_device
    size = unet.config.unet2d_config["sample_size"]
    triples = [(colour, shape, motion) for colour, shape, motion in COMBINATIONS if motion in OPPOSITE]
    specs = sample_specs(num_clips, seed, include_only=triples)
    clean = pixels_from_frames(np.stack([render_clip(spec, num_frames, size) for spec in specs])).to(device)
    motions = [spec.motion for spec in specs]
    captions = {
        "true": [caption(spec) for spec in specs],
        "opposite": [caption(spec).replace(spec.motion, OPPOSITE[spec.motion]) for spec in specs],
    }
    contexts = {
        name: encode_text(pipeline.text_encoder, pipeline.tokenizer, text, device) for name, text in captions.items()
    }
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    data = displacement(clean, motions).mean().item()
    rows = []
    for timestep in timesteps:
        t = torch.full((len(specs),), int(timestep), device=device)
        noisy = pipeline.scheduler.add_noise(clean, noise, t)
        moved, error = {}, {}
        for name, context in contexts.items():
            output = unet(noisy.to(unet.dtype), t, encoder_hidden_states=context.to(unet.dtype)).sample.float()
            estimate = predicted_original(pipeline.scheduler, noisy, output, t).clamp(-1, 1)
            moved[name] = displacement(estimate, motions).mean().item()
            error[name] = (estimate - clean).square().mean().item()
            if name == "true":
                drift = sideways(estimate, motions).mean().item()
        rows.append(
            DirectionWordRow(
                int(timestep), data, moved["true"], moved["opposite"], error["true"], error["opposite"], drift
            )
        )
    return rows


def markdown_table(rows: Sequence[DirectionWordRow]) -> str:
    """The probe's rows as a Markdown table."""
    lines = [
        "| timestep | clean clips (px) | estimate, true word (px) | estimate, opposite word (px) | MSE true / opposite "
        "| sideways, true word (px) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        drift = "n/a" if row.true_word_sideways is None else f"{row.true_word_sideways:.2f}"
        lines.append(
            f"| {row.timestep} | {row.data:+.1f} | {row.true_word:+.2f} | {row.opposite_word:+.2f} | "
            f"{row.true_word_mse:.4f} / {row.opposite_word_mse:.4f} | {drift} |"
        )
    return "\n".join(lines)
