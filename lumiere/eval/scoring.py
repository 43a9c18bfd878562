"""Scoring shapes-world clips from their pixels: which colour, shape and motion they show.

A generated clip is judged against its prompt's ``(colour, shape, motion)`` without the
ground truth of :mod:`lumiere.data.shapes`, only its vocabulary and renderer:

1. Per frame, the background is the median colour of the border pixels and the object
   is the largest connected blob of pixels far from it.
2. The colour is the nearest palette entry to the object's core pixels.
3. The shape is found by matching the blob against the renderer's own drawings of every
   shape at the blob's centre and size, over a grid of angles.
4. The motion is read from the tracks of the blob's centroid, area and best angle.

Temporal-consistency measurements (colour and size drift, background flicker) come
along, since a clip can name the right things and still flicker.

Made for the black background the model is trained on; plain grey and checker backgrounds
work too, the gradient does not (its border has no single colour).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# DIRECTIONS holds the screen signs of each "moving ..." motion; templates come from the
# renderer's own draw, so they are exactly what the data shows.
from ..data.shapes import COLOURS, DIRECTIONS, MOTIONS, PALETTE, SHAPES, draw

# Object mask: a pixel belongs to the object when its RGB distance from the background
# (0..1 units) exceeds half the frame's peak distance, so anti-aliased or blurred edges
# are split where the object is half covered (keeping its area), whatever its contrast.
# A frame whose peak stays under _MIN_PEAK shows no object; _MIN_THRESHOLD keeps noise
# on a flat background out of the mask. A frame whose border is mostly far from its
# median (pure noise, or a gradient) has no plain background to find an object on.
_MIN_PEAK = 0.25
_MIN_THRESHOLD = 0.1
_MIN_PIXELS = 3
# The blob must hold most of the far-from-background pixels: noise scatters them into
# many small blobs, a rendered or generated object puts nearly all of them in one.
_MIN_BLOB_SHARE = 0.5
# Core pixels, for the colour: the blob's pixels at least this fraction of its peak
# distance from the background, away from edges mixed with the background.
_CORE = 0.75

# Rotational symmetry period of each shape, degrees: angles are only defined modulo it.
_PERIOD = {"circle": 0.0, "square": 90.0, "triangle": 120.0, "star": 72.0}
_COARSE_STEP, _FINE_STEP = 15.0, 5.0
_SHAPE_FRAMES = 4  # frames voted on for the shape

# Motion thresholds, against what shapes._sample_spec draws (as fractions of the frame):
# a bounce reverses at least 0.26 of the frame along some axis, a move travels at least
# 0.32 along each moving axis, growth multiplies the area by 3.2-5.8 (shrinking divides
# it), and a turn is 90-180 degrees.
_BOUNCE_REVERSAL = 0.15
_MIN_TRAVEL = 0.2
_AREA_RATIO = 1.6
_MIN_TURN = 45.0

_PALETTE_RGB = np.array([PALETTE[name] for name in COLOURS], dtype=float) / 255.0  # (8, 3)
_NEIGHBOURS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]
# Heading of each direction, radians from +x towards +y (down), as atan2(dy, dx) gives it.
_HEADINGS = {name: math.atan2(dy, dx) for name, (dx, dy) in DIRECTIONS.items()}


# eq=False: the tracks are arrays, which the generated __eq__ could not compare.
@dataclass(frozen=True, eq=False)
class ClipScore:
    """What a clip shows, read from its pixels.

    Attributes:
        colour, shape, motion: predicted names from ``COLOURS``, ``SHAPES`` and
            ``MOTIONS``; None when no object was found (in too few frames, for motion).
        colour_drift: mean RGB distance (0..1 channels) of each frame's object colour from
            the clip's object colour; NaN without an object.
        size_drift: coefficient of variation of the object's area over the frames where
            it was found (large for growing and shrinking clips by design); NaN without
            an object.
        background_flicker: mean absolute frame-to-frame change of the pixels that are
            background in both frames, 0..1 (0 for a single frame).
        found_frames: fraction of frames in which an object was found.
        center: ``(F, 2)`` object centroid ``(x, y)`` in pixels (x right, y down), NaN
            where no object was found.
        area: ``(F,)`` object area in pixels, NaN where no object was found.
        angle: ``(F,)`` best-matching angle of the predicted shape, degrees clockwise
            modulo its symmetry period; NaN where not found, 0 for circles.
    """

    colour: str | None
    shape: str | None
    motion: str | None
    colour_drift: float
    size_drift: float
    background_flicker: float
    found_frames: float
    center: np.ndarray
    area: np.ndarray
    angle: np.ndarray


def _as_float_frames(frames: np.ndarray) -> np.ndarray:
    """``(F, H, W, 3)`` floats in [0, 1] from uint8 or float frames."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (F, H, W, 3); got {frames.shape}")
    if frames.dtype == np.uint8:
        return frames.astype(float) / 255.0
    return np.clip(frames.astype(float), 0.0, 1.0)


def _ring(image: np.ndarray) -> np.ndarray:
    """``(2H + 2W - 4, ...)`` the outermost pixels of an ``(H, W, ...)`` image."""
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def _shifted(images: np.ndarray, fill: float | int | bool) -> list[np.ndarray]:
    """The 8 neighbours' values of each pixel of ``(..., H, W)`` images, ``fill`` outside."""
    height, width = images.shape[-2:]
    padded = np.full((*images.shape[:-2], height + 2, width + 2), fill, dtype=images.dtype)
    padded[..., 1:-1, 1:-1] = images
    return [padded[..., 1 + di : 1 + di + height, 1 + dj : 1 + dj + width] for di, dj in _NEIGHBOURS]


def _label(mask: np.ndarray) -> np.ndarray:
    """``(F, H, W)`` 8-connected component labels of boolean masks ``(F, H, W)``, unique
    across frames, -1 off the mask.

    Each pixel repeatedly takes the smallest label among its neighbours until nothing
    changes: at most one pass per pixel of a component's longest path, and the frames
    are tiny.
    """
    big = mask.size
    labels = np.where(mask, np.arange(big).reshape(mask.shape), big)
    while True:
        smallest = np.minimum.reduce([labels, *_shifted(labels, big)])
        smallest = np.where(mask, smallest, big)
        if np.array_equal(smallest, labels):
            return np.where(mask, labels, -1)
        labels = smallest


def _dilate(mask: np.ndarray) -> np.ndarray:
    """``(..., H, W)`` masks grown by one pixel in all 8 directions."""
    return np.logical_or.reduce([mask, *_shifted(mask, False)])


def _object_masks(distance: np.ndarray) -> np.ndarray:
    """``(F, H, W)`` mask of the largest blob far from the background in each frame,
    all False in frames without a clear object.

    Args:
        distance: ``(F, H, W)`` RGB distance of each pixel from its frame's background.
    """
    peak = distance.max(axis=(1, 2))  # (F,)
    threshold = np.maximum(_MIN_THRESHOLD, 0.5 * peak)
    # The background must be plain: most border pixels close to their median colour.
    border = _ring(np.moveaxis(distance, 0, -1))  # (border pixels, F)
    plain = np.median(border, axis=0) <= 0.5 * threshold
    far = (distance > threshold[:, None, None]) & ((peak >= _MIN_PEAK) & plain)[:, None, None]
    labels = _label(far)
    masks = np.zeros_like(far)
    for f in np.flatnonzero(far.any(axis=(1, 2))):
        blobs, counts = np.unique(labels[f][far[f]], return_counts=True)
        if counts.max() >= max(_MIN_PIXELS, _MIN_BLOB_SHARE * far[f].sum()):
            masks[f] = labels[f] == blobs[counts.argmax()]
    return masks


def _nearest_colour(rgb: np.ndarray, background: np.ndarray) -> str:
    """The palette entry whose blends over ``background`` best explain ``rgb`` (0..1).

    Blurred or small objects never reach their full colour: their core is a mix of it and
    the background (a dark yellow, not orange). So each palette colour ``P`` is compared
    through the segment ``background + c (P - background)``, ``c`` in [0.5, 1], which is
    plain Euclidean distance for fully covered pixels.
    """
    offsets = _PALETTE_RGB - background  # (8, 3)
    target = rgb - background
    mix = np.clip((offsets @ target) / np.maximum((offsets**2).sum(axis=1), 1e-9), 0.5, 1.0)  # (8,)
    residual = np.linalg.norm(target - mix[:, None] * offsets, axis=1)
    return COLOURS[int(residual.argmin())]


def _box_blur(images: np.ndarray) -> np.ndarray:
    """``(..., H, W)`` images averaged over each pixel's 3x3 neighbourhood (zeros outside)."""
    return (images + sum(_shifted(images, 0.0))) / 9


def _soft_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(...)`` IoU of coverage maps ``(..., H, W)`` in [0, 1] (the usual IoU on 0/1 maps)."""
    union = np.maximum(a, b).sum(axis=(-2, -1))
    return np.minimum(a, b).sum(axis=(-2, -1)) / np.maximum(union, 1e-9)


def _matches(weight: np.ndarray, shape: str, center: np.ndarray, radius: float, angles: np.ndarray) -> np.ndarray:
    """``(A,)`` how well the renderer's drawing of ``shape`` at each of ``angles`` explains
    the object's coverage.

    Soft coverage, not a thresholded mask: on a blurred object the star's points are faint
    but still there. The drawing is also tried softened by a 3x3 box blur, as generated
    clips are blurrier than the renderer; the better of the two counts.

    Args:
        weight: ``(H, W)`` the object's share of each pixel, 0..1.
    """
    drawn = draw(shape, center, radius, angles, *weight.shape)
    return np.maximum(_soft_iou(weight, drawn), _soft_iou(weight, _box_blur(drawn)))


def _best_angle(weight: np.ndarray, shape: str, center: np.ndarray, radius: float) -> tuple[float, float]:
    """``(angle, match)`` of the best fit of ``shape`` to the coverage ``weight`` ``(H, W)``:
    a coarse grid over the symmetry period, then finer steps around the best coarse angle."""
    period = _PERIOD[shape]
    if not period:
        return 0.0, float(_matches(weight, shape, center, radius, np.zeros(1))[0])
    coarse = np.arange(0.0, period, _COARSE_STEP)
    scores = _matches(weight, shape, center, radius, coarse)
    steps = np.arange(_FINE_STEP, _COARSE_STEP, _FINE_STEP)
    fine = (coarse[scores.argmax()] + np.concatenate([-steps, steps])) % period
    angles = np.concatenate([coarse, fine])
    scores = np.concatenate([scores, _matches(weight, shape, center, radius, fine)])
    return float(angles[scores.argmax()]), float(scores.max())


def _spread(count: int, k: int) -> np.ndarray:
    """Up to ``k`` evenly spaced indices into ``range(count)``."""
    return np.unique(np.round(np.linspace(0, count - 1, min(k, count))).astype(int))


def _max_rise(values: np.ndarray) -> float:
    """Largest increase ``values[t] - values[s]`` over ``s <= t``."""
    return float((values - np.minimum.accumulate(values)).max())


def _motion(center: np.ndarray, area: np.ndarray, angle: np.ndarray, shape: str, height: int, width: int) -> str:
    """Name the motion of a track of found frames.

    Args:
        center: ``(N, 2)`` centroids ``(x, y)`` in pixels, in frame order.
        area: ``(N,)`` areas in pixels.
        angle: ``(N,)`` angles of ``shape``, degrees modulo its symmetry period.
        shape: the predicted shape.
        height, width: frame size.
    """
    # Fractions of the frame, as shapes.py draws displacements: diagonals are at 45 degrees.
    position = center / np.array([width, height], dtype=float)
    # A bounce goes both ways along an axis; a straight move only one way.
    for axis in range(2):
        if min(_max_rise(position[:, axis]), _max_rise(-position[:, axis])) > _BOUNCE_REVERSAL:
            return "bouncing"
    dx, dy = position[-1] - position[0]
    if math.hypot(dx, dy) > _MIN_TRAVEL:
        # The nearest of the 8 headings (y points down, so "up" is negative dy).
        heading = math.atan2(dy, dx)
        return max(_HEADINGS, key=lambda name: math.cos(heading - _HEADINGS[name]))
    # Median of the ends: one bad frame does not flip growing and shrinking.
    ends = max(1, len(area) // 4)
    ratio = np.median(area[-ends:]) / np.median(area[:ends])
    if ratio > _AREA_RATIO:
        return "growing"
    if ratio < 1 / _AREA_RATIO:
        return "shrinking"
    period = _PERIOD[shape]
    if period:
        # Frame-to-frame turns, each wrapped into half a period and summed: first against last
        # would miss a square turned by a whole 90 degrees. Turns per frame stay well under half
        # a period in the data (at most 12 degrees at 16 frames).
        steps = (np.diff(angle) + period / 2) % period - period / 2
        if abs(steps.sum()) > _MIN_TURN:
            return "rotating"
    return "still"


def _shape_and_angles(weight: np.ndarray, center: np.ndarray, area: np.ndarray) -> tuple[str, np.ndarray]:
    """The best-matching shape, and its best angle per frame.

    Args:
        weight: ``(N, H, W)`` the object's share of each pixel, in the frames where it was found.
        center: ``(N, 2)`` centroids ``(x, y)``, pixels.
        area: ``(N,)`` areas, pixels.

    Returns:
        The shape, and ``(N,)`` its angles (degrees modulo its symmetry period).
    """
    radius = np.sqrt(area / np.pi)  # objects of every shape have the area of this circle
    # A few of the largest views vote, as they show the most detail (a growing object starts
    # at a few pixels); each votes for the shape that fits it best at its best angle.
    large = np.flatnonzero(area >= 0.7 * area.max())
    votes: Counter[str] = Counter()
    voter_angles: dict[int, dict[str, float]] = {}
    for n in large[_spread(len(large), _SHAPE_FRAMES)]:
        fits = {s: _best_angle(weight[n], s, center[n], radius[n]) for s in SHAPES}
        voter_angles[n] = {s: angle for s, (angle, _) in fits.items()}
        votes[max(SHAPES, key=lambda s: fits[s][1])] += 1
    # A tie goes to the shape listed first in SHAPES, so the result is deterministic.
    shape = max(SHAPES, key=lambda s: votes[s])
    angles = np.array(
        [
            voter_angles[n][shape] if n in voter_angles else _best_angle(weight[n], shape, center[n], radius[n])[0]
            for n in range(len(area))
        ]
    )
    return shape, angles


def _from_background(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's background colour ``(F, 3)`` (the median of its border) and every
    pixel's RGB distance from it ``(F, H, W)``."""
    background = np.stack([np.median(_ring(frame), axis=0) for frame in frames])
    return background, np.linalg.norm(frames - background[:, None, None], axis=-1)


def background_colours(frames: np.ndarray) -> np.ndarray:
    """``(F, 3)`` each frame's background colour as :func:`score_clip` reads it (the median
    of its border), RGB in 0..1; ``frames`` as there."""
    return _from_background(_as_float_frames(frames))[0]


def object_masks(frames: np.ndarray) -> np.ndarray:
    """``(F, H, W)`` the object's pixels in each frame as :func:`score_clip` finds them (all
    False in frames without a clear object); ``frames`` as there."""
    return _object_masks(_from_background(_as_float_frames(frames))[1])


def score_clip(frames: np.ndarray) -> ClipScore:
    """Read colour, shape and motion off a clip of one object on a plain background.

    Args:
        frames: ``(F, H, W, 3)`` uint8, or floats in [0, 1] (a CPU torch tensor works too).

    Frames without a clear object (no pixel far from the background, a noisy background,
    or far pixels scattered over many blobs) are left out of the tracks; with none left
    the labels are None, with one left the motion is.
    """
    frames = _as_float_frames(frames)
    num_frames, height, width, _ = frames.shape
    background, distance = _from_background(frames)
    masks = _object_masks(distance)
    found = masks.any(axis=(1, 2))  # (F,)
    # The object's pixels plus a one-pixel rim, so blurred edges count in the area too.
    region = _dilate(masks)

    # Background flicker, over pixels that are background in both frames of a pair.
    still_background = ~(region[1:] | region[:-1])  # (F-1, H, W)
    change = np.abs(np.diff(frames, axis=0)).mean(axis=-1)
    background_flicker = float(change[still_background].mean()) if still_background.any() else 0.0

    center = np.full((num_frames, 2), np.nan)
    area = np.full(num_frames, np.nan)
    angle = np.full(num_frames, np.nan)
    if not found.any():
        return ClipScore(None, None, None, math.nan, math.nan, background_flicker, 0.0, center, area, angle)

    # Colour of the core pixels pooled over the clip; per frame, for the drift.
    core = masks & (distance >= _CORE * np.where(masks, distance, 0).max(axis=(1, 2), keepdims=True))
    colour_rgb = frames[core].mean(axis=0)  # (3,)
    frame_colour = np.stack([frames[f][core[f]].mean(axis=0) for f in np.flatnonzero(found)])  # (N, 3)
    clip_background = np.median(background[found], axis=0)
    colour = _nearest_colour(colour_rgb, clip_background)

    # Soft coverage: each pixel's share of the contrast of the named palette colour, as the
    # renderer would draw it. Blur moves mass around without changing it, so soft area and
    # centroid survive blurring; the contrast of the measured core colour would not do: a
    # blurred small object never reaches its colour, even at its centre.
    contrast = np.linalg.norm(_PALETTE_RGB[COLOURS.index(colour)] - clip_background)
    weight = np.where(region, np.clip(distance / max(contrast, 1e-6), 0.0, 1.0), 0.0)[found]  # (N, H, W)
    ys, xs = np.indices((height, width)) + 0.5  # pixel centres
    area[found] = weight.sum(axis=(1, 2))
    center[found] = np.stack([(weight * xs).sum(axis=(1, 2)), (weight * ys).sum(axis=(1, 2))], axis=1)
    center[found] /= area[found, None]

    shape, angle[found] = _shape_and_angles(weight, center[found], area[found])
    motion = _motion(center[found], area[found], angle[found], shape, height, width) if found.sum() >= 2 else None

    return ClipScore(
        colour=colour,
        shape=shape,
        motion=motion,
        colour_drift=float(np.linalg.norm(frame_colour - colour_rgb, axis=1).mean()),
        size_drift=float(area[found].std() / area[found].mean()),
        background_flicker=background_flicker,
        found_frames=float(found.mean()),
        center=center,
        area=area,
        angle=angle,
    )


def chance_levels() -> dict[str, float]:
    """Accuracy of uniform guessing on each axis."""
    return {"colour": 1 / len(COLOURS), "shape": 1 / len(SHAPES), "motion": 1 / len(MOTIONS)}


def summarize(expected: Sequence[tuple[str, str, str]], scores: Sequence[ClipScore]) -> dict:
    """Accuracies and mean temporal measurements, as a JSON-serialisable dict.

    Args:
        expected: the prompts' ``(colour, shape, motion)`` triples.
        scores: :func:`score_clip` of each clip, in the same order.

    Returns:
        ``colour``, ``shape``, ``motion`` accuracies (a None prediction is wrong),
        ``motion_direction`` (motion accuracy over the clips meant to move in one of the 8
        directions, NaN if none), the means of each temporal measurement over the clips
        where it is defined, and counts: ``num_clips``, ``num_direction_clips``,
        ``num_no_object`` (clips where no object was found at all). With no clips, every
        mean is NaN (``json.dumps`` writes it as ``NaN``).
    """
    if len(expected) != len(scores):
        raise ValueError(f"got {len(expected)} expected triples for {len(scores)} scores")

    def accuracy(pairs: list[tuple[str, str | None]]) -> float:
        return float(np.mean([truth == guess for truth, guess in pairs])) if pairs else float("nan")

    def mean(values: list[float]) -> float:
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else float("nan")

    directional = [(m, s.motion) for (_, _, m), s in zip(expected, scores) if m in DIRECTIONS]
    return {
        "colour": accuracy([(c, s.colour) for (c, _, _), s in zip(expected, scores)]),
        "shape": accuracy([(h, s.shape) for (_, h, _), s in zip(expected, scores)]),
        "motion": accuracy([(m, s.motion) for (_, _, m), s in zip(expected, scores)]),
        "motion_direction": accuracy(directional),
        "colour_drift": mean([s.colour_drift for s in scores]),
        "size_drift": mean([s.size_drift for s in scores]),
        "background_flicker": mean([s.background_flicker for s in scores]),
        "found_frames": mean([s.found_frames for s in scores]),
        "num_clips": len(scores),
        "num_direction_clips": len(directional),
        "num_no_object": sum(s.found_frames == 0 for s in scores),
    }


__all__ = ["ClipScore", "chance_levels", "score_clip", "summarize"]
