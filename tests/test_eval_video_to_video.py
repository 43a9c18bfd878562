"""The SDEdit scores on clips whose answers are known: the generator's own."""

import numpy as np

from lumiere.eval.editing import edit_case, summarize
from lumiere.eval.shapes import Case
from lumiere.eval.video_to_video import score_edit, source_case, track_correlation


def test_the_source_differs_from_the_target_in_colour_only():
    target = Case("blue", "circle", "moving right", seen=True, seed=4)
    source = source_case(target)
    assert source.colour != target.colour
    assert (source.shape, source.motion, source.seen, source.seed) == (target.shape, target.motion, True, 4)


def test_a_perfect_edit_scores_perfectly_and_the_unedited_source_does_not():
    target = Case("blue", "circle", "moving right", seen=False, seed=2)
    source, perfect = edit_case(source_case(target)), edit_case(target)  # same track, target colour
    scores = score_edit(target, source.center, perfect.clip)
    assert scores["colour"] and scores["shape"] and scores["motion"] and scores["direction"]
    assert scores["track_error_px"] < 0.5 and scores["track_correlation"] > 0.99
    unedited = score_edit(target, source.center, source.clip)
    assert not unedited["colour"] and unedited["direction"]
    reversed_clip = score_edit(target, source.center, perfect.clip[::-1].copy())
    assert not reversed_clip["direction"] and reversed_clip["track_correlation"] < -0.9


def test_track_correlation_is_undefined_for_a_still_track_and_summaries_skip_it():
    still = np.full((8, 2), 5.0)
    assert np.isnan(track_correlation(still, still + 1))
    cases = [Case("red", "square", "still", seen=s, seed=0) for s in (False, True)]
    row = {"colour": True, "shape": False, "motion": True, "direction": None, "track_error_px": 1.0,
           "track_correlation": float("nan")}  # fmt: skip
    summary = summarize({"0.5": [row, row]}, [case.seen for case in cases])
    assert summary["0.5"]["unseen"]["colour"] == 1 and summary["0.5"]["seen"]["shape"] == 0
    assert summary["0.5"]["seen"]["direction_n"] == 0 and summary["0.5"]["seen"]["track_correlation_n"] == 0
