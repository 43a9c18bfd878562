"""Tests for lumiere.data.shapes: motions, colours and held-out triples checked from pixels."""

from __future__ import annotations

import math

import decord
import numpy as np
import PIL.Image
import pytest

from lumiere.data import shapes
from lumiere.data.shapes import (
    BACKGROUNDS,
    COLOURS,
    COMBINATIONS,
    HELD_OUT,
    MOTIONS,
    NIGHT,
    PALETTE,
    SHAPES,
    ClipSpec,
    caption,
    render_clip,
    sample_specs,
    track,
    triples_with_motions,
    write_dataset,
)
from lumiere.files import OutputExistsError
from lumiere.testing import read_metadata
from lumiere.video import export_to_mp4

SIZE = 64
# Rotational symmetry: the n-th angular moment of a shape turns n times as fast as it.
SYMMETRY = {"square": 4, "triangle": 3, "star": 5}


def _spec(shape: str, motion: str, seed: int = 0, colour: str = "white") -> ClipSpec:
    return sample_specs(1, seed, include_only=[(colour, shape, motion)])[0]


def _measure(frames: np.ndarray, shape: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame, from a white-on-black clip: centroid ``(F, 2)``, area ``(F,)`` and the
    angle (degrees, modulo the shape's symmetry) from its n-fold angular moment."""
    weight = frames.mean(axis=-1) / PALETTE["white"][0]
    ys, xs = np.indices(weight.shape[1:]) + 0.5
    area = weight.sum(axis=(1, 2))
    center = np.stack([(weight * xs).sum(axis=(1, 2)), (weight * ys).sum(axis=(1, 2))], axis=1) / area[:, None]
    n = SYMMETRY.get(shape, 1)
    offsets = (xs - center[:, 0, None, None]) + 1j * (ys - center[:, 1, None, None])
    angle = np.degrees(np.angle((weight * offsets**n).sum(axis=(1, 2)))) / n
    return center, area, angle


def _wrapped(degrees: np.ndarray, period: float) -> np.ndarray:
    return (degrees + period / 2) % period - period / 2


# --- specs and captions ----------------------------------------------------


def test_sampling_and_rendering_are_deterministic_for_a_seed():
    specs = sample_specs(6, seed=3, backgrounds=BACKGROUNDS)
    assert specs == sample_specs(6, seed=3, backgrounds=BACKGROUNDS)
    assert specs != sample_specs(6, seed=4, backgrounds=BACKGROUNDS)
    np.testing.assert_array_equal(render_clip(specs[0], 8, 32), render_clip(specs[0], 8, 32))
    other = sample_specs(1, seed=4, backgrounds=BACKGROUNDS)[0]
    assert not np.array_equal(render_clip(specs[0], 8, 32), render_clip(other, 8, 32))


def test_captions_name_colour_shape_and_motion():
    spec = ClipSpec("circle", "red", "moving right", displacement=(0.3, 0.0))
    assert caption(spec) == "a red circle moving right"
    assert caption(spec, still=True) == "a red circle"
    assert caption(ClipSpec("square", "orange", "bouncing", displacement=(1.0, 1.0))) == "an orange square bouncing"
    for spec in sample_specs(50, seed=0):
        assert caption(spec) == f"{'an' if spec.colour == 'orange' else 'a'} {spec.colour} {spec.shape} {spec.motion}"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"shape": "hexagon"}, "shape must be one of"),
        ({"shape": "circle", "motion": "rotating", "spin": 90.0}, "needs a shape other than 'circle'"),
        ({"displacement": (-0.3, 0.0)}, "displacement=(-0.3, 0.0) does not fit motion 'moving right'"),
        ({"growth": 2.0}, "growth=2.0 does not fit motion 'moving right': expected 1"),
        ({"motion": "still", "displacement": (0.0, 0.0), "spin": 10.0}, "spin=10.0 does not fit motion 'still'"),
    ],
)
def test_inconsistent_specs_are_refused(changes, message):
    fields = {"shape": "square", "colour": "red", "motion": "moving right", "displacement": (0.3, 0.0), **changes}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ClipSpec(**fields)


def test_a_motion_spans_the_clip_whatever_its_length():
    spec = _spec("triangle", "moving down-left")
    short, long = track(spec, 16, SIZE), track(spec, 32, SIZE)
    np.testing.assert_allclose(short.center[[0, -1]], long.center[[0, -1]])
    path_length = [np.linalg.norm(np.diff(t.center, axis=0), axis=1).sum() for t in (short, long)]
    assert path_length[0] == pytest.approx(path_length[1]) and path_length[0] > 0.25 * SIZE


def test_non_square_frames():
    spec = _spec("star", "bouncing")
    frames = render_clip(spec, 4, (32, 48))
    assert frames.shape == (4, 32, 48, 3) and frames.dtype == np.uint8
    # Drawn where the track puts it in a 32-high, 48-wide frame (x along the width).
    center, area, _ = _measure(frames, "star")
    truth = track(spec, 4, (32, 48))
    np.testing.assert_allclose(center, truth.center, atol=0.3)
    np.testing.assert_allclose(area, truth.area, rtol=0.05)
    assert not np.allclose(truth.center, track(spec, 4, (48, 32)).center, atol=1.0)


# --- motions, measured from the rendered pixels ---------------------------


@pytest.mark.parametrize("motion", MOTIONS)
def test_each_motion_moves_the_object_as_captioned(motion):
    shape = "triangle"
    spec = _spec(shape, motion)
    frames = render_clip(spec, 16, SIZE)
    center, area, angle = _measure(frames, shape)
    truth = track(spec, 16, SIZE)
    # The object stays whole in frame: pixels agree with the ground truth throughout.
    np.testing.assert_allclose(center, truth.center, atol=0.3)
    np.testing.assert_allclose(area, truth.area, rtol=0.03)

    steps = np.diff(center, axis=0)
    if motion.startswith("moving"):
        expected = np.array(
            [("right" in motion) - ("left" in motion), ("down" in motion) - ("up" in motion)]
        )  # fmt: skip
        for axis in range(2):
            if expected[axis]:
                assert (steps[:, axis] * expected[axis] > 0.4).all(), f"axis {axis}: {steps[:, axis]}"
                assert abs(center[-1, axis] - center[0, axis]) > 0.25 * SIZE
            else:
                np.testing.assert_allclose(steps[:, axis], 0, atol=0.05)
    elif motion == "bouncing":
        # A bounce reverses the direction of travel along some axis.
        assert any((np.sign(steps[:, axis]) != np.sign(steps[0, axis])).any() for axis in range(2))
    else:
        np.testing.assert_allclose(center - center[0], 0, atol=0.1)

    if motion in ("growing", "shrinking"):
        growth = np.diff(area) if motion == "growing" else -np.diff(area)
        assert (growth > 0).all() and max(area[0], area[-1]) > 2.5 * min(area[0], area[-1])
    else:
        np.testing.assert_allclose(area / area[0], 1, atol=0.03)

    turned = _wrapped(angle - angle[0], 120)
    if motion == "rotating":
        assert np.abs(turned).max() > 20
    else:
        np.testing.assert_allclose(turned, 0, atol=1.0)
    if motion == "still":
        assert (frames == frames[0]).all()


@pytest.mark.parametrize("shape", sorted(SYMMETRY))
def test_rotation_matches_the_ground_truth_angle(shape):
    spec = _spec(shape, "rotating", seed=1)
    frames = render_clip(spec, 16, SIZE)
    _, _, angle = _measure(frames, shape)
    period = 360 / SYMMETRY[shape]
    expected = track(spec, 16, SIZE).angle
    assert abs(spec.spin) >= 90
    np.testing.assert_allclose(_wrapped(np.diff(angle) - np.diff(expected), period), 0, atol=2.0)


# --- colours ---------------------------------------------------------------


def test_palette_colours_are_far_apart_and_from_the_backgrounds():
    colours = np.array(list(PALETTE.values()), dtype=float)
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    assert distances[~np.eye(len(colours), dtype=bool)].min() > 90
    backgrounds = np.array([[level] * 3 for level in (0, 24, 56, 96)] + [NIGHT], dtype=float)
    assert np.linalg.norm(colours[:, None] - backgrounds[None], axis=-1).min() > 120


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_object_colour_survives_mp4_and_names_the_palette_entry(background, tmp_path):
    """One clip per background, frame k showing a still square of colour k."""
    frames = np.concatenate(
        [render_clip(ClipSpec("square", colour, "still", background, size=0.25), 1, 32) for colour in COLOURS]
    )
    decoded = decord.VideoReader(export_to_mp4(frames, tmp_path / "colours.mp4"))
    decoded = decoded.get_batch(list(range(len(COLOURS)))).asnumpy().astype(float)
    palette = np.array(list(PALETTE.values()), dtype=float)
    for k, colour in enumerate(COLOURS):
        interior = decoded[k, 12:20, 12:20].reshape(-1, 3)  # well inside the square
        nearest = np.linalg.norm(interior[:, None] - palette[None], axis=-1).argmin(axis=1)
        assert (nearest == k).all(), colour
        assert np.abs(interior.mean(axis=0) - PALETTE[colour]).max() < 25, colour


# --- held-out triples --------------------------------------------------------


def test_held_out_triples_are_never_sampled_but_their_words_all_are():
    assert set(HELD_OUT) <= set(COMBINATIONS)
    seen = {(spec.colour, spec.shape, spec.motion) for spec in sample_specs(3000, seed=0, exclude=HELD_OUT)}
    assert not seen & set(HELD_OUT)
    for position, vocabulary in enumerate((COLOURS, SHAPES, MOTIONS)):
        assert {triple[position] for triple in seen} == set(vocabulary)
    # The property holds for the held-out set itself, not just for this sample.
    training = set(COMBINATIONS) - set(HELD_OUT)
    for position, vocabulary in enumerate((COLOURS, SHAPES, MOTIONS)):
        assert {triple[position] for triple in training} == set(vocabulary)


def test_include_only_draws_just_those_triples():
    specs = sample_specs(40, seed=0, include_only=HELD_OUT)
    assert {(spec.colour, spec.shape, spec.motion) for spec in specs} <= set(HELD_OUT)
    with pytest.raises(ValueError, match="no .* triple is left"):
        sample_specs(1, include_only=HELD_OUT[:1], exclude=HELD_OUT)
    with pytest.raises(ValueError, match=r"exclude must hold .* got \('red', 'circle', 'rotating'\)"):
        sample_specs(1, exclude=[("red", "circle", "rotating")])


def test_triples_with_motions_are_every_colour_and_shape_with_those_motions():
    axis = triples_with_motions(["moving left", "rotating"])
    # Every colour and shape moves left; a rotating circle is not a triple.
    assert len(axis) == len(COLOURS) * len(SHAPES) + len(COLOURS) * (len(SHAPES) - 1)
    assert {motion for _, _, motion in axis} == {"moving left", "rotating"} and set(axis) <= set(COMBINATIONS)
    with pytest.raises(ValueError, match=r"motions must be names from MOTIONS .* got \['jumping'\]"):
        triples_with_motions(["jumping"])


# --- dataset folders ---------------------------------------------------------


def test_write_dataset_clips(tmp_path):
    out = write_dataset(tmp_path / "clips", 3, num_frames=8, size=32, seed=5)
    records = read_metadata(out)
    assert [record["file_name"] for record in records] == ["00000.mp4", "00001.mp4", "00002.mp4"]
    specs = sample_specs(3, seed=5, exclude=HELD_OUT)
    for record, spec in zip(records, specs):
        assert record["text"] == caption(spec) and record["motion"] == spec.motion
        np.testing.assert_allclose(record["center"], track(spec, 8, 32).center, atol=1e-3)
        assert len(decord.VideoReader(str(out / record["file_name"]))) == 8
    with pytest.raises(OutputExistsError, match="is not empty"):
        write_dataset(out, 1)


def test_write_dataset_replaces_a_non_empty_folder_only_with_overwrite(tmp_path):
    out = tmp_path / "clips"
    write_dataset(out, 2, num_frames=2, size=32, seed=1)
    (out / "notes.txt").write_text("old")
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    with pytest.raises(OutputExistsError, match=f"output folder {str(out)!r} is not empty"):
        write_dataset(out, 1, num_frames=2, size=32)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert write_dataset(out, 1, num_frames=2, size=32, overwrite=True) == out
    assert sorted(path.name for path in out.iterdir()) == ["00000.mp4", "metadata.jsonl"]
    assert len(read_metadata(out)) == 1 and [path.name for path in tmp_path.iterdir()] == ["clips"]
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        write_dataset(tmp_path / "file", 1, overwrite=True)


@pytest.mark.parametrize("failing", ["render_clip", "export_to_mp4"])
@pytest.mark.parametrize("existing", [False, True])
def test_an_interrupted_write_dataset_leaves_no_half_folder(failing, existing, tmp_path, monkeypatch):
    out = tmp_path / "clips"
    if existing:
        write_dataset(out, 1, num_frames=2, size=32, seed=1)
    before = {path.name: path.read_bytes() for path in out.glob("*")}
    calls, real = [], getattr(shapes, failing)

    def fails_on_the_second_clip(*args, **kwargs):
        calls.append(None)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return real(*args, **kwargs)

    monkeypatch.setattr(shapes, failing, fails_on_the_second_clip)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_dataset(out, 3, num_frames=2, size=32, overwrite=True)
    # The old dataset, or nothing, and no hidden .clips.*.tmp folder beside it.
    assert [path.name for path in tmp_path.iterdir()] == (["clips"] if existing else [])
    assert {path.name: path.read_bytes() for path in out.glob("*")} == before


def test_write_dataset_images_have_still_captions(tmp_path):
    out = write_dataset(tmp_path / "stills", 12, size=32, seed=1, images=True)
    records = read_metadata(out)
    assert len(records) == 12 and sorted(path.name for path in out.glob("*.png")) == [r["file_name"] for r in records]
    for record in records:
        assert record["text"] == f"{'an' if record['colour'] == 'orange' else 'a'} {record['colour']} {record['shape']}"
        assert "motion" not in record and len(record["center"]) == 2
        image = PIL.Image.open(out / record["file_name"])
        assert image.size == (32, 32) and image.mode == "RGB"
    motion_words = {word for motion in MOTIONS for word in motion.replace("-", " ").split()}
    assert not motion_words & {word for record in records for word in record["text"].split()}
    first = sample_specs(1, seed=1, exclude=HELD_OUT)[0]
    assert math.isclose(records[0]["area"], float(track(first, 1, 32).area[0]), rel_tol=1e-4)
