"""Lumiere's one conditioning mechanism: the U-Net sees ``<J, C, M>`` on its channels, the
noisy clip J, a masked conditioning clip C and its mask M (1 = known), so image-to-video,
inpainting and cinemagraphs are one model given different masks.

* [`conditioning_input`]: ``<C, M>`` from a clip and its known-pixel mask, for training and
  for the pipelines alike;
* [`sample_known_masks`]: the masks a conditional model is fine-tuned on, drawn per clip
  from a mix of kinds (:data:`MASK_KINDS`) by a seeded generator;
* [`drift_known_noise`]: training noise whose known pixels also carry a shifted copy of
  the clip, so the model learns to redraw the known pixels from C, not from J.

Layouts: clips ``(B, C, F, H, W)`` in the model's space (pixels in [-1, 1], or latents),
masks ``(B, 1, F, H, W)`` with values in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .validation import check_finite

# What each kind of training mask knows (1) on a clip of F frames:
#   none          nothing (keeps the text-to-video ability);
#   first_frame   frame 0 (image-to-video);
#   first_frames  the first k frames, k drawn in [1, F / 2] (continuing a clip);
#   box           everything but a space-time box (video inpainting);
#   cinemagraph   all of frame 0, and on later frames everything but a region.
MASK_KINDS = ("none", "first_frame", "first_frames", "box", "cinemagraph")
DEFAULT_MASK_MIX = ("none:0.1", "first_frame:0.3", "first_frames:0.1", "box:0.25", "cinemagraph:0.25")
_BOX_SIDE = (0.25, 0.75)  # a box or region side, as a fraction of the frame side


def parse_mask_mix(mix: Sequence[str]) -> dict[str, float]:
    """``["kind:weight", ...]`` -> ``{kind: weight}``; weights are relative (need not sum
    to 1). ValueError for unknown kinds, bad or negative weights, or an all-zero mix."""
    weights: dict[str, float] = {}
    for entry in mix:
        kind, _, weight = str(entry).partition(":")
        if kind not in MASK_KINDS:
            raise ValueError(f"mask_mix entry {entry!r} names an unknown kind; kinds: {', '.join(MASK_KINDS)}")
        try:
            value = float(weight)
        except ValueError:
            raise ValueError(f"mask_mix entry {entry!r} must be KIND:WEIGHT with a number weight") from None
        check_finite(f"the weight of {kind} in mask_mix", value, low=0.0)
        weights[kind] = weights.get(kind, 0.0) + value
    if not sum(weights.values()) > 0:
        raise ValueError(f"mask_mix={list(mix)} has no positive weight; e.g. {list(DEFAULT_MASK_MIX)}")
    return weights


def _span(size: int, generator: torch.Generator) -> tuple[int, int]:
    """A random ``[start, stop)`` covering 25-75% of ``size`` (at least 1)."""
    low, high = (max(1, round(fraction * size)) for fraction in _BOX_SIDE)
    length = int(torch.randint(low, high + 1, (1,), generator=generator))
    start = int(torch.randint(0, size - length + 1, (1,), generator=generator))
    return start, start + length


def known_mask(kind: str, num_frames: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """One training mask ``(1, F, H, W)`` of ``kind`` (see :data:`MASK_KINDS`), 1 = known."""
    mask = torch.zeros(1, num_frames, height, width)
    if kind == "first_frame":
        mask[:, 0] = 1
    elif kind == "first_frames":
        known = int(torch.randint(1, max(1, num_frames // 2) + 1, (1,), generator=generator))
        mask[:, :known] = 1
    elif kind in ("box", "cinemagraph"):
        mask[:] = 1
        (top, bottom), (left, right) = _span(height, generator), _span(width, generator)
        first, last = (1, num_frames) if kind == "cinemagraph" else _span(num_frames, generator)
        mask[:, first:last, top:bottom, left:right] = 0
    elif kind != "none":
        raise ValueError(f"kind={kind!r} is not a mask kind; kinds: {', '.join(MASK_KINDS)}")
    return mask


def sample_known_masks(
    batch_size: int, num_frames: int, height: int, width: int, mix: dict[str, float], generator: torch.Generator
) -> tuple[torch.Tensor, list[str]]:
    """``batch_size`` training masks ``(B, 1, F, H, W)``, each of a kind drawn from ``mix``
    (``{kind: weight}``, see [`parse_mask_mix`]), and the kinds drawn."""
    kinds = list(mix)
    weights = torch.tensor([mix[kind] for kind in kinds], dtype=torch.float64)
    drawn = [kinds[i] for i in torch.multinomial(weights, batch_size, replacement=True, generator=generator)]
    masks = torch.stack([known_mask(kind, num_frames, height, width, generator) for kind in drawn])
    return masks, drawn


def conditioning_input(
    clip: torch.Tensor,
    known: torch.Tensor,
    noise: float | torch.Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``<C, M>`` ``(B, C + 1, F, H, W)``: the clip where known (zero elsewhere) and the mask.

    Args:
        clip: ``(B, C, F, H, W)``, the model's space (pixels in [-1, 1] or latents).
        known: ``(B, 1, F, H, W)`` (or broadcastable), 1 = known; soft values weigh the clip.
        noise: conditioning augmentation, the standard deviation of Gaussian noise added to
            the known values (a float, or one per clip ``(B,)``); 0 adds none.
        generator: for that noise.
    """
    known = known.to(device=clip.device, dtype=clip.dtype).expand(clip.shape[0], 1, *clip.shape[2:])
    masked = clip * known
    if torch.is_tensor(noise) or noise:
        sigma = torch.as_tensor(noise, dtype=clip.dtype).reshape(-1, *(1,) * (clip.ndim - 1)).to(clip.device)
        draw = torch.randn(clip.shape, generator=generator, dtype=torch.float32).to(clip)
        masked = masked + sigma * draw * known
    return torch.cat([masked, known], dim=1)


def first_frame_known(num_frames: int) -> torch.Tensor:
    """``(F, 1, 1)``: 1 on frame 0, 0 after (broadcasts over a frame's pixels)."""
    known = torch.zeros(num_frames, 1, 1)
    known[0] = 1
    return known


MAX_DRIFT_SHIFT = 2  # pixels (or latents) a drifted copy is shifted by, per axis


def drift_known_noise(
    clean: torch.Tensor, noise: torch.Tensor, known: torch.Tensor, share: float, generator: torch.Generator
) -> torch.Tensor:
    """``noise`` ``(B, C, F, H, W)`` where, on a ``share`` of the clips, the known pixels
    also carry ``s * (shifted - clean)``: the clip shifted by up to :data:`MAX_DRIFT_SHIFT`
    per axis (not both zero) minus itself, ``s`` drawn in [0, 1] per clip.

    Why: in training the noisy clip J always agrees with C where C is known, so a model
    learns to denoise the known pixels from J and ignore C. At sampling J's known pixels
    are whatever the trajectory drew, a little off (a shifted edge, another shade), and
    the model keeps that error. With this noise the sample ``sqrt(a) x + sqrt(1 - a) n``
    shows a clip drifted by ``sqrt((1 - a) / a) * s * (shifted - clean)`` where known,
    while the target (computed from the same noise) still denoises to the clean clip: the
    model must read the known pixels from C. ``known`` ``(B, 1, F, H, W)``, 1 = known;
    ``share`` 0 returns ``noise`` and draws nothing."""
    if not share:
        return noise
    batch = clean.shape[0]
    chosen = torch.rand(batch, generator=generator) < share
    scale = torch.rand(batch, generator=generator) * chosen
    span = 2 * MAX_DRIFT_SHIFT + 1
    still = MAX_DRIFT_SHIFT * span + MAX_DRIFT_SHIFT  # the offset that does not shift
    offsets = torch.randint(0, span * span - 1, (batch,), generator=generator)
    offsets = offsets + (offsets >= still).long()
    drift = torch.zeros_like(clean)
    for index in torch.nonzero(chosen).flatten().tolist():
        dy, dx = (int(v) - MAX_DRIFT_SHIFT for v in divmod(int(offsets[index]), span))
        shifted = torch.roll(clean[index], shifts=(dy, dx), dims=(-2, -1))
        drift[index] = float(scale[index]) * (shifted - clean[index])
    return noise + drift * known.to(drift)


def downsample_mask(known: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A pixel mask ``(B, 1, F, H, W)`` at latent ``size`` ``(h, w)``: a latent counts as
    known only where every pixel it covers is (a min-pool), so nothing unknown leaks in."""
    batch, _, frames, height, width = known.shape
    if (height, width) == tuple(size):
        return known
    factor = height // size[0]
    folded = known.reshape(batch * frames, 1, height, width)
    pooled = -torch.nn.functional.max_pool2d(-folded, factor)
    return pooled.reshape(batch, 1, frames, *pooled.shape[-2:])
