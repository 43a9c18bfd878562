"""Tests for lumiere.eval.scoring: the pixel scorer has to prove itself before it judges a model.

On the generator's own clips it must be right nearly always; on noise, and on motion once
the frames are shuffled, it must fall to chance; blur and noise must not throw it off.

``python tests/test_eval_scoring.py`` prints the accuracies on 256 clips of each family.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from lumiere.data.shapes import HELD_OUT, MOTIONS, SHAPES, ClipSpec, draw, render_clip, sample_specs, track
from lumiere.eval import ClipScore, chance_levels, score_clip, summarize

NUM_FRAMES, SIZE = 16, 32  # what the shapes-tiny model generates
AXES = ("colour", "shape", "motion")
MOVING = tuple(m for m in MOTIONS if m.startswith("moving")) + ("bouncing",)


def _clips(n: int, seed: int) -> tuple[list[tuple[str, str, str]], list[np.ndarray]]:
    """``n`` ground-truth clips over every triple, held-out ones included, and their triples."""
    specs = sample_specs(n, seed, exclude=())
    return [(s.colour, s.shape, s.motion) for s in specs], [render_clip(s, NUM_FRAMES, SIZE) for s in specs]


def _noise(clips: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, clip.shape, dtype=np.uint8) for clip in clips]


def _shuffled(clips: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [clip[rng.permutation(len(clip))] for clip in clips]


def _blurred(clips: list[np.ndarray], seed: int, noise: float = 5.0) -> list[np.ndarray]:
    """3x3 box blur (edges repeated) plus Gaussian noise of ``noise`` levels out of 255."""
    rng = np.random.default_rng(seed)
    out = []
    for clip in clips:
        height, width = clip.shape[1:3]
        padded = np.pad(clip.astype(float), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        blurred = sum(padded[:, i : i + height, j : j + width] for i in range(3) for j in range(3)) / 9
        out.append(np.clip(np.round(blurred + rng.normal(0.0, noise, blurred.shape)), 0, 255).astype(np.uint8))
    return out


def _accuracy(expected: list[tuple[str, str, str]], scores: list[ClipScore], only: tuple[str, ...]) -> dict:
    """:func:`summarize` of the clips whose expected motion is in ``only``."""
    pairs = [(e, s) for e, s in zip(expected, scores) if e[2] in only]
    return summarize([e for e, _ in pairs], [s for _, s in pairs])


@pytest.fixture(scope="module")
def truth():
    """200 ground-truth clips plus 16 of the held-out triples, with their scores."""
    expected, clips = _clips(200, seed=11)
    held_specs = sample_specs(16, seed=12, include_only=HELD_OUT)
    expected += [(s.colour, s.shape, s.motion) for s in held_specs]
    clips += [render_clip(s, NUM_FRAMES, SIZE) for s in held_specs]
    start = time.perf_counter()
    scores = [score_clip(clip) for clip in clips]
    seconds_per_clip = (time.perf_counter() - start) / len(clips)
    return expected, clips, scores, seconds_per_clip


# --- the scorer on the generator's own clips ---------------------------------------------


def test_ground_truth_clips_score_near_perfectly(truth):
    expected, _, scores, seconds_per_clip = truth
    assert sum(triple in HELD_OUT for triple in expected) >= 16
    summary = summarize(expected, scores)
    for axis in AXES:
        assert summary[axis] >= 0.98, summary
    assert summary["motion_direction"] >= 0.98 and summary["num_direction_clips"] > 50
    assert summary["num_no_object"] == 0 and summary["found_frames"] == 1.0
    # Light enough to score hundreds of generated clips, even on a busy CPU.
    assert seconds_per_clip < 0.5


def test_tracks_follow_the_ground_truth():
    spec = sample_specs(1, seed=3, include_only=[("cyan", "triangle", "moving down-left")])[0]
    score = score_clip(render_clip(spec, NUM_FRAMES, SIZE))
    path = track(spec, NUM_FRAMES, SIZE)
    np.testing.assert_allclose(score.center, path.center, atol=0.3)
    np.testing.assert_allclose(score.area, path.area, rtol=0.05)
    assert score.center.shape == (NUM_FRAMES, 2) and score.angle.shape == (NUM_FRAMES,)


@pytest.mark.parametrize("shape, spin", [("square", 90.0), ("square", -90.0), ("star", 144.0)])
def test_whole_symmetry_periods_of_turning_are_still_rotating(shape, spin):
    # Turned by whole symmetry periods, the object ends looking as it started: only the
    # frame-to-frame turns show the rotation.
    spec = ClipSpec(shape, "orange", "rotating", size=0.15, angle=10.0, spin=spin)
    frames = render_clip(spec, NUM_FRAMES, SIZE)
    assert np.abs(frames[0].astype(int) - frames[-1]).max() <= 1
    assert score_clip(frames).motion == "rotating"
    assert score_clip(frames[:1].repeat(NUM_FRAMES, axis=0)).motion == "still"


def test_templates_are_the_renderers_drawings():
    rng = np.random.default_rng(0)
    for shape in SHAPES * 5:
        center, radius, angles = rng.uniform(2, 30, 2), rng.uniform(1.5, 8), rng.uniform(0, 360, 4)
        # render_clip draws one angle at a time; the evaluator draws many at once.
        expected = np.stack([draw(shape, center, radius, [a], SIZE, SIZE)[0] for a in angles])
        np.testing.assert_array_equal(draw(shape, center, radius, angles, SIZE, SIZE), expected)


# --- families that must fool it: noise, shuffled frames, wrong prompts ------------------


def test_noise_clips_score_at_chance(truth):
    expected = truth[0][:96]
    scores = [score_clip(clip) for clip in _noise(truth[1][:96], seed=1)]
    summary = summarize(expected, scores)
    for axis, chance in chance_levels().items():
        assert summary[axis] <= chance + 0.15, summary
    # Noise is no object on a plain background: found nowhere, and all background flickers.
    assert summary["found_frames"] < 0.1
    assert summary["background_flicker"] > 0.25


def test_shuffled_frames_lose_the_motion_but_keep_colour_and_shape(truth):
    expected, clips, scores = truth[0][:96], truth[1][:96], truth[2][:96]
    shuffled = [score_clip(clip) for clip in _shuffled(clips, seed=2)]
    moving_truth = _accuracy(expected, scores, only=MOVING)
    moving_shuffled = _accuracy(expected, shuffled, only=MOVING)
    assert moving_shuffled["num_clips"] >= 50
    # Directions collapse (a shuffled path jumps back and forth: it reads as bouncing).
    assert moving_shuffled["motion"] <= 0.35 < moving_truth["motion"] - 0.5
    assert moving_shuffled["motion_direction"] <= 0.1
    # Colour and shape do not depend on the order of the frames.
    summary = summarize(expected, shuffled)
    assert summary["colour"] >= 0.98 and summary["shape"] >= 0.98


def test_right_clips_for_the_wrong_prompts_score_at_chance(truth):
    expected, _, scores, _ = truth
    wrong_prompts = expected[1:] + expected[:1]  # each clip judged against its neighbour's prompt
    summary = summarize(wrong_prompts, scores)
    for axis, chance in chance_levels().items():
        assert summary[axis] <= chance + 0.15, summary


# --- robustness: generated clips are blurrier than the renderer ------------------------


def test_blurred_noisy_clips_still_score_high(truth):
    expected, clips = truth[0][:96], truth[1][:96]
    summary = summarize(expected, [score_clip(clip) for clip in _blurred(clips, seed=3)])
    for axis in AXES:
        assert summary[axis] >= 0.9, summary
    assert summary["background_flicker"] < 0.03


def test_float_frames_score_like_uint8(truth):
    clip = truth[1][0]
    as_uint8, as_float = score_clip(clip), score_clip(clip.astype(np.float32) / 255)
    assert (as_uint8.colour, as_uint8.shape, as_uint8.motion) == (as_float.colour, as_float.shape, as_float.motion)
    np.testing.assert_allclose(as_uint8.center, as_float.center, atol=1e-4)


# --- temporal consistency ------------------------------------------------------------


def test_ground_truth_clips_are_temporally_consistent(truth):
    expected, _, scores, _ = truth
    assert max(s.background_flicker for s in scores) < 0.005
    assert max(s.colour_drift for s in scores) < 0.03
    steady = [s.size_drift for e, s in zip(expected, scores) if e[2] not in ("growing", "shrinking")]
    changing = [s.size_drift for e, s in zip(expected, scores) if e[2] in ("growing", "shrinking")]
    assert max(steady) < 0.05 < 0.2 < min(changing)


def test_flicker_and_colour_drift_are_measured():
    spec = ClipSpec("circle", "red", "moving right", size=0.15, start=(0.3, 0.5), displacement=(0.4, 0.0))
    frames = render_clip(spec, NUM_FRAMES, SIZE)
    # The background brightens and darkens every other frame; the object stays right.
    flickering = frames.copy()
    is_background = frames.max(axis=-1) == 0
    flickering[1::2][is_background[1::2]] = 40
    score = score_clip(flickering)
    assert (score.colour, score.shape, score.motion) == ("red", "circle", "moving right")
    assert score.background_flicker == pytest.approx(40 / 255, rel=0.05)
    # The object turns from red to purple half-way.
    purple = render_clip(dataclasses.replace(spec, colour="purple"), NUM_FRAMES, SIZE)
    recoloured = np.concatenate([frames[:8], purple[8:]])
    drifting = score_clip(recoloured)
    assert score.colour_drift < 0.02 and drifting.colour_drift > 0.2


def test_clips_without_an_object():
    black = np.zeros((NUM_FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    score = score_clip(black)
    assert (score.colour, score.shape, score.motion, score.found_frames) == (None, None, None, 0.0)
    assert np.isnan(score.center).all() and score.background_flicker == 0.0
    # One frame shows a colour and shape, but no motion.
    single = score_clip(render_clip(ClipSpec("star", "yellow", "still", angle=7.0), 1, SIZE))
    assert (single.colour, single.shape, single.motion) == ("yellow", "star", None)


# --- summaries -----------------------------------------------------------------------


def test_summary_is_plain_json(truth):
    expected, _, scores, _ = truth
    expected, scores = expected[:3], scores[:3]
    none = score_clip(np.zeros((4, SIZE, SIZE, 3), dtype=np.uint8))
    summary = summarize([*expected, ("red", "circle", "moving up")], [*scores, none])
    assert json.loads(json.dumps(summary)) == summary
    assert summary["num_clips"] == 4 and summary["num_no_object"] == 1
    assert summary["colour"] == pytest.approx(0.75)  # None counts as wrong
    with pytest.raises(ValueError, match="expected triples"):
        summarize(expected, scores[:2])
    empty = summarize([], [])
    assert empty["num_clips"] == 0 and np.isnan(empty["colour"])


def test_chance_levels():
    assert chance_levels() == {"colour": 1 / 8, "shape": 1 / 4, "motion": 1 / 13}


def main(n: int = 256) -> None:
    """Print accuracies and timing on ``n`` clips of each family."""
    expected, clips = _clips(n, seed=0)
    families = {
        "ground truth": clips,
        "noise": _noise(clips, seed=1),
        "shuffled frames": _shuffled(clips, seed=2),
        "blurred + noisy": _blurred(clips, seed=3),
    }
    print(f"chance: {chance_levels()}")
    for name, family in families.items():
        start = time.perf_counter()
        scores = [score_clip(clip) for clip in family]
        ms = 1000 * (time.perf_counter() - start) / n
        summary = summarize(expected, scores)
        moving = _accuracy(expected, scores, only=MOVING)["motion"]
        numbers = ", ".join(f"{key} {summary[key]:.3f}" for key in (*AXES, "motion_direction"))
        extra = f"moving/bouncing motion {moving:.3f}, flicker {summary['background_flicker']:.3f}"
        print(f"{name:16s} {numbers}, {extra}, {ms:.0f} ms/clip")


def test_evaluate_runs_a_model_and_its_per_frame_baseline(tmp_path):
    from lumiere.eval.shapes import evaluate, prompt_set
    from lumiere.testing import make_inflated_pipeline

    cases = prompt_set(8)
    assert sum(not case.seen for case in cases) == 4 and len({case.prompt for case in cases if case.seen}) == 4
    pipe = make_inflated_pipeline("pixel")
    results = evaluate(pipe, num_prompts=4, num_frames=4, steps=1, save_dir=tmp_path)
    for model in ("lumiere", "per_frame_baseline"):
        assert results[model]["seen"]["num_clips"] == 2 and results[model]["unseen"]["num_clips"] == 2
        assert len(results[model]["clips"]) == 4
    assert (tmp_path / "eval.json").is_file() and (tmp_path / "lumiere-clips.npz").is_file()
    assert [row["timestep"] for row in results["direction_word"]] == [950, 850, 700]
    # The saved clips are the ones scored: scoring them again gives the reported predictions.
    for model in ("lumiere", "per_frame_baseline"):
        with np.load(tmp_path / f"{model}-clips.npz") as saved:
            clips = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        assert len(clips) == 4 and all(clip.shape == (4, 16, 16, 3) and clip.dtype == np.uint8 for clip in clips)
        rescored = [[score.colour, score.shape, score.motion] for score in map(score_clip, clips)]
        assert rescored == [clip["predicted"] for clip in results[model]["clips"]]
    assert json.loads((tmp_path / "eval.json").read_text())["lumiere"]["clips"] == results["lumiere"]["clips"]


def test_generated_clips_do_not_depend_on_the_batch_size():
    from lumiere.eval.shapes import generate, prompt_set
    from lumiere.testing import make_inflated_pipeline

    pipe = make_inflated_pipeline("pixel")
    cases = prompt_set(3)
    one_by_one = generate(pipe, cases, num_frames=4, steps=2, guidance=3.0, batch_size=1)
    batched = generate(pipe, cases, num_frames=4, steps=2, guidance=3.0, batch_size=2)
    for a, b in zip(one_by_one, batched):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


if __name__ == "__main__":
    main()
