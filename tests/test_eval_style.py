"""The outline style's score on clips drawn filled and drawn in the style."""

import numpy as np

from lumiere.eval.shapes import prompt_set
from lumiere.eval.style import fill_ratio, ground_truth, outlined


def test_filled_clips_are_not_outlined_and_the_style_drawn_clips_are():
    cases = prompt_set(16, seed=0)
    filled = ground_truth(cases, 16, 32, outline=None)
    hollow = ground_truth(cases, 16, 32, outline=1.5)
    assert not any(outlined(clip) for clip in filled)
    assert np.mean([outlined(clip) for clip in hollow]) >= 0.9
    ratios = fill_ratio(filled[0])
    assert ratios.shape == (16,) and np.allclose(ratios[np.isfinite(ratios)], 1.0)


def test_a_blank_clip_has_no_object_and_no_style():
    blank = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    assert np.isnan(fill_ratio(blank)).all() and not outlined(blank)
