"""The shapes world: captioned clips of one coloured shape moving on a plain background.

Clips are procedural and deterministic, and keep their ground truth (per-frame centre, area
and angle), so a small model can be trained on them and later judged from its pixels. The
vocabulary is chosen for that: saturated colours far apart in RGB, shapes with different
outlines, and motions spelled out over the whole clip, so a 16-frame and a 32-frame clip of
one spec show the same motion at different frame rates.

Conventions: pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, so its centre is
``(j + 0.5, i + 0.5)``; ``x`` points right and ``y`` down; angles are degrees, clockwise on
screen. A spec's positions are fractions of the frame width and height, its sizes fractions
of the shorter side; a track's are pixels.

A spec is the triple ``(colour, shape, motion)`` that its caption names, plus a background
and continuous parameters. :data:`HELD_OUT` lists triples that :func:`write_dataset` leaves
out by default, so an evaluation can ask for combinations the model never saw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image

from ..files import atomic_dir
from ..validation import check_fps, check_int, frame_size
from ..video import export_to_mp4

SHAPES = ("circle", "square", "triangle", "star")

# Saturated and far apart in RGB (and in hue), so the nearest palette entry of an
# object's pixels names its colour even after lossy video compression.
PALETTE = {
    "red": (230, 30, 30),
    "green": (30, 200, 40),
    "blue": (40, 70, 255),
    "yellow": (245, 225, 30),
    "purple": (170, 50, 230),
    "cyan": (30, 215, 225),
    "orange": (255, 135, 0),
    "white": (245, 245, 245),
}
COLOURS = tuple(PALETTE)

# Screen directions, as the signs of the x and y displacement (y points down).
DIRECTIONS = {
    "moving left": (-1, 0),
    "moving right": (1, 0),
    "moving up": (0, -1),
    "moving down": (0, 1),
    "moving up-left": (-1, -1),
    "moving up-right": (1, -1),
    "moving down-left": (-1, 1),
    "moving down-right": (1, 1),
}
MOTIONS = (*DIRECTIONS, "bouncing", "growing", "shrinking", "rotating", "still")

BACKGROUNDS = ("black", "gray", "gradient", "checker", "night")
# The plain dark blue of the ``night`` background (the ``night`` style's), far from every
# palette colour as the greys are.
NIGHT = (20, 40, 120)

# Every (colour, shape, motion) triple that can be rendered. A rotating circle would
# look still, so it is not one of them.
COMBINATIONS = tuple(
    (colour, shape, motion)
    for colour in COLOURS
    for shape in SHAPES
    for motion in MOTIONS
    if not (shape == "circle" and motion == "rotating")
)

# One triple per colour, with every shape and eight different motions, so each colour,
# shape and motion is still seen in training, only never in these combinations.
HELD_OUT = (
    ("red", "square", "moving left"),
    ("green", "triangle", "bouncing"),
    ("blue", "circle", "growing"),
    ("yellow", "star", "rotating"),
    ("purple", "circle", "moving up-right"),
    ("cyan", "triangle", "shrinking"),
    ("orange", "star", "moving down"),
    ("white", "square", "still"),
)

_SUPERSAMPLE = 4  # samples per pixel along each axis, for anti-aliased edges
_STAR_INNER = 0.5  # inner/outer radius of the star: deep enough to read as a star at 32 px


def _ring(count: int, phase: float, radius: float = 1.0) -> np.ndarray:
    """``(count, 2)`` points evenly spaced on a circle, the first at ``phase`` degrees."""
    angles = np.radians(phase) + 2 * np.pi * np.arange(count) / count
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


# Outlines with circumradius 1, pointing up (-y) where that means anything.
_POLYGONS = {
    "square": _ring(4, 45.0),
    "triangle": _ring(3, -90.0),
    "star": np.stack([_ring(5, -90.0), _ring(5, -54.0, _STAR_INNER)], axis=1).reshape(10, 2),
}


def _polygon_area(vertices: np.ndarray) -> float:
    x, y = vertices.T
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


# Shapes of one size have one area (that of a circle of radius ``size``), so growth shows
# as area whatever the shape. This is each shape's circumradius per unit of ``size``.
_REACH = {"circle": 1.0, **{name: math.sqrt(math.pi / _polygon_area(v)) for name, v in _POLYGONS.items()}}


@dataclass(frozen=True)
class ClipSpec:
    """One clip of the shapes world.

    Args:
        shape, colour, motion, background: names from :data:`SHAPES`, :data:`COLOURS`,
            :data:`MOTIONS` and :data:`BACKGROUNDS`.
        start: centre ``(x, y)`` at the first frame, as fractions of the width and height.
        size: at the first frame, the radius of the circle with the object's area, as a
            fraction of the shorter frame side.
        angle: orientation at the first frame, degrees clockwise.
        displacement: ``(dx, dy)`` travelled over the whole clip, as fractions of the width
            and height. Its signs must match a ``moving ...`` motion; ``bouncing`` needs it
            non-zero (it is the unfolded path: the object reflects off the walls); every
            other motion needs ``(0, 0)``.
        growth: size at the last frame over size at the first: above 1 for ``growing``,
            below 1 for ``shrinking``, 1 otherwise.
        spin: degrees turned over the whole clip: non-zero for ``rotating``, 0 otherwise.

    Only bouncing objects reflect off the walls; :func:`sample_specs` picks the other
    motions so the object stays in frame, a hand-made spec may leave it.
    """

    shape: str
    colour: str
    motion: str
    background: str = "black"
    start: tuple[float, float] = (0.5, 0.5)
    size: float = 0.15
    angle: float = 0.0
    displacement: tuple[float, float] = (0.0, 0.0)
    growth: float = 1.0
    spin: float = 0.0

    def __post_init__(self) -> None:
        for name, allowed in (
            ("shape", SHAPES), ("colour", COLOURS), ("motion", MOTIONS), ("background", BACKGROUNDS),
        ):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        if self.shape == "circle" and self.motion == "rotating":
            raise ValueError("motion 'rotating' needs a shape other than 'circle': a turning circle looks still")
        if not (self.size > 0 and self.growth > 0):
            raise ValueError(f"size and growth must be positive; got size={self.size!r}, growth={self.growth!r}")
        self._check_motion_parameters()

    def _check_motion_parameters(self) -> None:
        dx, dy = self.displacement
        if self.motion in DIRECTIONS:
            signs = DIRECTIONS[self.motion]
            moves_right_way = (np.sign(dx), np.sign(dy)) == signs
            expected = f"x and y signs {signs}"
        elif self.motion == "bouncing":
            moves_right_way, expected = (dx, dy) != (0, 0), "a non-zero displacement"
        else:
            moves_right_way, expected = (dx, dy) == (0, 0), "(0, 0)"
        if not moves_right_way:
            raise ValueError(
                f"displacement={self.displacement} does not fit motion {self.motion!r}: expected {expected}"
            )

        growth_rule = {"growing": (self.growth > 1, "above 1"), "shrinking": (self.growth < 1, "below 1")}
        fits, expected = growth_rule.get(self.motion, (self.growth == 1, "1"))
        if not fits:
            raise ValueError(f"growth={self.growth!r} does not fit motion {self.motion!r}: expected {expected}")
        if (self.spin != 0) != (self.motion == "rotating"):
            expected = "non-zero" if self.motion == "rotating" else "0"
            raise ValueError(f"spin={self.spin!r} does not fit motion {self.motion!r}: expected {expected}")


def caption(spec: ClipSpec, *, still: bool = False) -> str:
    """``"a red circle moving right"``; with ``still=True`` just ``"a red circle"``, for
    single images, which cannot show motion."""
    return describe(spec.colour, spec.shape, None if still else spec.motion)


def describe(colour: str, shape: str, motion: str | None = None) -> str:
    """The caption of a (colour, shape[, motion]) combination: ``"an orange star growing"``."""
    article = "an" if colour[0] in "aeiou" else "a"
    words = f"{article} {colour} {shape}"
    return words if motion is None else f"{words} {motion}"


@dataclass(frozen=True)
class ClipTrack:
    """Ground truth of a rendered clip, in pixels.

    Attributes:
        center: ``(F, 2)`` object centre ``(x, y)`` per frame (the centroid of its area).
        area: ``(F,)`` object area per frame, pixels squared.
        angle: ``(F,)`` orientation per frame, degrees clockwise.
    """

    center: np.ndarray
    area: np.ndarray
    angle: np.ndarray


def _clip_times(num_frames: int) -> np.ndarray:
    """``(F,)`` times from 0 (first frame) to 1 (last), so a motion spans the whole clip."""
    check_int("num_frames", num_frames, 1)
    return np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)


def _reflect(offset: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Fold free motion ``offset`` into ``[0, span]``, as a ball bouncing between walls."""
    phase = np.mod(offset, 2 * span)
    return np.where(phase > span, 2 * span - phase, phase)


def track(spec: ClipSpec, num_frames: int, size: int | tuple[int, int]) -> ClipTrack:
    """Where the object of ``spec`` is in each of ``num_frames`` frames of ``size`` (an int
    for square frames, or ``(H, W)``); :func:`render_clip` draws exactly this."""
    height, width = frame_size(size)
    times = _clip_times(num_frames)
    radius = spec.size * min(height, width) * spec.growth**times  # (F,)
    frame = np.array([width, height], dtype=float)
    center = (np.array(spec.start) + times[:, None] * np.array(spec.displacement)) * frame
    if spec.motion == "bouncing":
        reach = spec.size * min(height, width) * _REACH[spec.shape]
        span = frame - 2 * reach
        if (span <= 0).any():
            raise ValueError(f"size={spec.size} is too large to bounce in a {height}x{width} frame")
        center = reach + _reflect(center - reach, span)
    return ClipTrack(center=center, area=np.pi * radius**2, angle=spec.angle + spec.spin * times)


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points ``(u, v)``, in the shape's own frame (circumradius 1), are inside."""
    if shape == "circle":
        return u**2 + v**2 <= 1.0
    # Even-odd rule: count the edges a ray towards +u crosses; works for the concave star.
    inside = np.zeros(u.shape, dtype=bool)
    vertices = _POLYGONS[shape]
    for (u1, v1), (u2, v2) in zip(vertices, np.roll(vertices, -1, axis=0)):
        straddles = (v1 > v) != (v2 > v)
        with np.errstate(divide="ignore", invalid="ignore"):  # horizontal edges never straddle
            crossing_u = u1 + (v - v1) * (u2 - u1) / (v2 - v1)
        inside ^= straddles & (u < crossing_u)
    return inside


def draw(shape: str, center: np.ndarray, radius: float, angles: Sequence[float], height: int, width: int) -> np.ndarray:
    """``(A, H, W)`` fraction of each pixel covered by ``shape`` turned to each of
    ``angles`` (degrees), by supersampling; one pass for all angles (the evaluator matches
    many)."""
    angles = np.asarray(angles, dtype=float)
    coverage = np.zeros((len(angles), height, width))
    reach = radius * _REACH[shape]
    x0, y0 = np.maximum(np.floor(center - reach).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(center + reach).astype(int), (width, height))
    if x0 >= x1 or y0 >= y1:
        return coverage
    # Only the object's bounding box is sampled: the rest of the frame is uncovered.
    offsets = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE
    xs = (np.arange(x0, x1)[:, None] + offsets).ravel() - center[0]
    ys = (np.arange(y0, y1)[:, None] + offsets).ravel() - center[1]
    gx, gy = np.meshgrid(xs, ys)
    # Turn the samples back by the object's angle instead of turning the object.
    cos = np.cos(np.radians(angles))[:, None, None]
    sin = np.sin(np.radians(angles))[:, None, None]
    inside = _inside(shape, (cos * gx + sin * gy) / reach, (cos * gy - sin * gx) / reach)
    blocks = (len(angles), y1 - y0, _SUPERSAMPLE, x1 - x0, _SUPERSAMPLE)
    coverage[:, y0:y1, x0:x1] = inside.reshape(blocks).mean(axis=(2, 4))
    return coverage


def _background(name: str, height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` float background; all are dark-to-mid greys or the dark blue
    :data:`NIGHT`, so no object colour blends into them."""
    if name == "night":
        return np.broadcast_to(np.array(NIGHT, dtype=float), (height, width, 3)).copy()
    if name == "black":
        grey = np.zeros((height, width))
    elif name == "gray":
        grey = np.full((height, width), 96.0)
    elif name == "gradient":
        grey = np.broadcast_to(np.linspace(0.0, 96.0, height)[:, None], (height, width))
    else:  # checker: eight cells along the shorter side
        cell = max(min(height, width) // 8, 1)
        rows, cols = np.indices((height, width)) // cell
        grey = np.where((rows + cols) % 2 == 0, 24.0, 56.0)
    return np.repeat(grey[..., None], 3, axis=-1)


def render_clip(
    spec: ClipSpec, num_frames: int, size: int | tuple[int, int], outline: float | None = None
) -> np.ndarray:
    """Draw ``spec`` as a uint8 clip ``(F, H, W, 3)``, anti-aliased, following
    :func:`track` (an int ``size`` gives square frames, else ``(H, W)``). With ``outline``
    (pixels), the shapes are hollow: only a band of about that width inside their edge is
    drawn (the style of :mod:`lumiere.recipes.shapes_style`)."""
    height, width = frame_size(size)
    path = track(spec, num_frames, (height, width))
    background = _background(spec.background, height, width)
    colour = np.array(PALETTE[spec.colour], dtype=float)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for f in range(num_frames):
        radius = math.sqrt(path.area[f] / math.pi)
        coverage = draw(spec.shape, path.center[f], radius, [path.angle[f]], height, width)[0]
        if outline is not None and radius > outline:
            inner = draw(spec.shape, path.center[f], radius - outline, [path.angle[f]], height, width)[0]
            coverage = coverage - inner
        frames[f] = np.round(background + coverage[..., None] * (colour - background))
    return frames


def _check_triples(name: str, triples: Collection[Sequence[str]]) -> set[tuple[str, str, str]]:
    """``triples`` as a set, each a renderable ``(colour, shape, motion)``."""
    checked = {tuple(triple) for triple in triples}
    for triple in checked:
        if triple not in COMBINATIONS:
            raise ValueError(
                f"{name} must hold (colour, shape, motion) triples from COLOURS, SHAPES and MOTIONS "
                f"(not a rotating circle); got {triple!r}"
            )
    return checked


def triples_with_motions(motions: Collection[str]) -> list[tuple[str, str, str]]:
    """Every renderable triple whose motion is one of ``motions``, e.g. for
    ``include_only`` of :func:`write_dataset`."""
    unknown = sorted(set(motions) - set(MOTIONS))
    if unknown:
        raise ValueError(f"motions must be names from MOTIONS {MOTIONS}; got {unknown}")
    return [triple for triple in COMBINATIONS if triple[2] in motions]


def _sample_spec(colour: str, shape: str, motion: str, background: str, rng: np.random.Generator) -> ClipSpec:
    """Random continuous parameters for one triple, keeping all but a bouncing object in
    frame (by a margin of its circumradius) and making each motion large enough to see."""
    size, growth, spin, angle = rng.uniform(0.1, 0.16), 1.0, 0.0, rng.uniform(0.0, 360.0)
    if motion == "growing":
        growth = rng.uniform(1.8, 2.4)
        size = rng.uniform(0.07, 0.1)
    elif motion == "shrinking":
        growth = 1 / rng.uniform(1.8, 2.4)
        size = rng.uniform(0.16, 0.22)
    elif motion == "rotating":
        # Under half a turn per second at 16 frames, and never a symmetry period (72
        # degrees for the star) between frames, so the turning direction stays visible.
        spin = rng.choice((-1, 1)) * rng.uniform(90.0, 180.0)
    # Margins as fractions of the shorter side are at least as wide as fractions of
    # either side, so this keeps the object in any frame shape.
    reach = size * max(growth, 1.0) * _REACH[shape]
    free = 1 - 2 * reach
    if motion in DIRECTIONS:
        displacement = np.array(DIRECTIONS[motion]) * rng.uniform(0.6, 1.0) * free
    elif motion == "bouncing":
        # A path of 1.5-2.5 frames at 20-70 degrees off an axis reaches a wall along at
        # least one axis, so every bouncing clip bounces at least once.
        heading = math.radians(rng.uniform(20.0, 70.0) + 90.0 * rng.integers(4))
        displacement = rng.uniform(1.5, 2.5) * np.array([math.cos(heading), math.sin(heading)])
    else:
        displacement = np.zeros(2)
    # The start leaves room for the whole travel, except when bouncing folds it back.
    travel = np.zeros(2) if motion == "bouncing" else displacement
    start = rng.uniform(reach + np.maximum(-travel, 0), 1 - reach - np.maximum(travel, 0))
    return ClipSpec(
        shape=shape,
        colour=colour,
        motion=motion,
        background=background,
        start=(float(start[0]), float(start[1])),
        size=float(size),
        angle=float(angle),
        displacement=(float(displacement[0]), float(displacement[1])),
        growth=float(growth),
        spin=float(spin),
    )


def sample_specs(
    n: int,
    seed: int = 0,
    *,
    exclude: Collection[Sequence[str]] = (),
    include_only: Collection[Sequence[str]] | None = None,
    backgrounds: Sequence[str] = ("black",),
) -> list[ClipSpec]:
    """``n`` random specs, the same for the same arguments.

    Args:
        n: number of specs.
        seed: seed of the random draws.
        exclude: ``(colour, shape, motion)`` triples never produced, e.g. :data:`HELD_OUT`.
        include_only: if given, the only triples produced (minus ``exclude``), e.g.
            ``HELD_OUT`` for an evaluation set; by default all of :data:`COMBINATIONS`.
        backgrounds: names from :data:`BACKGROUNDS`, drawn uniformly per clip.

    Triples are drawn uniformly from those allowed, then each gets random parameters.
    """
    check_int("n", n, 0)
    check_int("seed", seed, 0)
    excluded = _check_triples("exclude", exclude)
    included = _check_triples("include_only", include_only) if include_only is not None else set(COMBINATIONS)
    # Filtering the fixed tuple, not the sets, keeps the order (and so the draws) stable.
    allowed = [triple for triple in COMBINATIONS if triple in included and triple not in excluded]
    if not allowed:
        raise ValueError("no (colour, shape, motion) triple is left once exclude is removed from include_only")
    backgrounds = tuple(backgrounds)
    if not backgrounds or not set(backgrounds) <= set(BACKGROUNDS):
        raise ValueError(f"backgrounds must be a non-empty selection from {BACKGROUNDS}; got {backgrounds!r}")

    rng = np.random.default_rng(seed)
    specs = []
    for _ in range(n):
        colour, shape, motion = allowed[rng.integers(len(allowed))]
        background = backgrounds[rng.integers(len(backgrounds))]
        specs.append(_sample_spec(colour, shape, motion, background, rng))
    return specs


def _record(file_name: str, spec: ClipSpec, path: ClipTrack, still: bool) -> dict:
    """One ``metadata.jsonl`` line: file, caption and ground truth (per frame for clips)."""
    truth = {
        "center": np.round(path.center, 3).tolist(),
        "area": np.round(path.area, 3).tolist(),
        "angle": np.round(path.angle, 3).tolist(),
    }
    if still:
        truth = {key: values[0] for key, values in truth.items()}
    motion = {} if still else {"motion": spec.motion}
    return {
        "file_name": file_name,
        "text": caption(spec, still=still),
        "colour": spec.colour,
        "shape": spec.shape,
        **motion,
        "background": spec.background,
        **truth,
    }


def write_dataset(
    out_dir: str | Path,
    num_clips: int,
    *,
    num_frames: int = 16,
    size: int | tuple[int, int] = 32,
    seed: int = 0,
    images: bool = False,
    fps: float = 8,
    exclude: Collection[Sequence[str]] = HELD_OUT,
    include_only: Collection[Sequence[str]] | None = None,
    backgrounds: Sequence[str] = ("black",),
    overwrite: bool = False,
) -> Path:
    """Write a Hugging Face-style folder of shapes-world clips or images.

    ``out_dir/metadata.jsonl`` gets one JSON object per file: ``file_name`` (``00000.mp4``
    ...), ``text`` (the caption), ``colour``, ``shape``, ``motion``, ``background``, and
    the ground truth of :func:`track` in pixels: ``center`` ``[[x, y], ...]``, ``area``
    and ``angle`` per frame.

    With ``images=True`` each spec gives one PNG of its first frame instead, captioned by
    colour and shape only (``"a red circle"``), for text-to-image pretraining; its record
    has no ``motion`` and one ``center``, ``area`` and ``angle``. ``num_frames`` and ``fps``
    are then unused.

    The folder is written whole or not at all: everything goes into a temporary folder
    beside it, renamed to ``out_dir`` once the last file is written (see
    :func:`lumiere.files.atomic_dir`), so an interrupted run leaves no half dataset.

    Args:
        out_dir: new or empty folder, or any folder with ``overwrite``.
        num_clips: number of clips (or images).
        num_frames: frames per clip; the motion spans the clip whatever its length.
        size: frame size, an int for square frames or ``(H, W)``. decord 0.6 mis-decodes
            MP4s a few widths wide (2-8, 12, 16, 24, 48 and 72 px; 32 and 64 work), which
            :class:`~lumiere.data.VideoFolderDataset` then reads with PyAV.
        seed: seed of :func:`sample_specs`.
        images: write still PNGs instead of MP4 clips.
        fps: frame rate stored in the MP4s.
        exclude: triples left out; :data:`HELD_OUT` by default, ``()`` for every triple.
        include_only: if given, the only triples written (minus ``exclude``).
        backgrounds: backgrounds drawn per clip, from :data:`BACKGROUNDS`.
        overwrite: replace an existing non-empty ``out_dir`` whole (its old files go).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        OutputExistsError: ``out_dir`` is a non-empty folder and ``overwrite`` is false.
        ValueError: ``out_dir`` is a file, or an argument is out of range.
    """
    check_int("num_clips", num_clips, 1)
    check_int("num_frames", num_frames, 1)
    check_fps(fps)
    height_width = frame_size(size)
    specs = sample_specs(num_clips, seed, exclude=exclude, include_only=include_only, backgrounds=backgrounds)
    frames_per_file = 1 if images else num_frames
    digits = max(5, len(str(num_clips - 1)))

    with atomic_dir(out_dir, overwrite) as folder, open(folder / "metadata.jsonl", "w", encoding="utf-8") as metadata:
        for index, spec in enumerate(specs):
            frames = render_clip(spec, frames_per_file, height_width)
            if images:
                file_name = f"{index:0{digits}d}.png"
                PIL.Image.fromarray(frames[0]).save(folder / file_name)
            else:
                file_name = f"{index:0{digits}d}.mp4"
                export_to_mp4(frames, folder / file_name, fps=fps)
            record = _record(file_name, spec, track(spec, frames_per_file, height_width), still=images)
            metadata.write(json.dumps(record) + "\n")
    return Path(out_dir)
