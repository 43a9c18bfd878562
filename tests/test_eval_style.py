"""Each shipped style's score on clips drawn plain and drawn in the style."""

import numpy as np
import pytest

from lumiere.eval.shapes import prompt_set
from lumiere.eval.style import STYLE_TESTS, fill_ratio, ground_truth, in_night, outlined
from lumiere.recipes.shapes_style import STYLES


def test_every_shipped_style_has_a_test_and_a_recipe():
    from lumiere.assets import STYLE_DIRS

    assert set(STYLE_TESTS) == set(STYLES) == set(STYLE_DIRS)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_plain_clips_are_not_in_the_style_and_the_style_drawn_clips_are(style):
    cases = prompt_set(16, seed=0)
    test = STYLE_TESTS[style]
    assert not any(test(clip) for clip in ground_truth(cases, 16, 32, None))
    assert np.mean([test(clip) for clip in ground_truth(cases, 16, 32, style)]) >= 0.9


def test_fill_ratio_is_one_for_filled_shapes():
    ratios = fill_ratio(ground_truth(prompt_set(2, seed=0), 16, 32, None)[0])
    assert ratios.shape == (16,) and np.allclose(ratios[np.isfinite(ratios)], 1.0)


def test_night_reads_the_background_half_way_to_the_night_blue():
    from lumiere.data.shapes import NIGHT

    frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    assert not in_night(frames)
    frames[:] = np.round(0.55 * np.array(NIGHT))  # nearer the blue than black
    assert in_night(frames)
    frames[:] = np.round(0.45 * np.array(NIGHT))
    assert not in_night(frames)


def test_a_blank_clip_has_no_object_and_no_outline():
    blank = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    assert np.isnan(fill_ratio(blank)).all() and not outlined(blank)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_style_references_are_drawn_in_the_style_and_captioned_with_its_phrase(style, tmp_path):
    import json

    import PIL.Image

    from lumiere.recipes.shapes_style import REFERENCES, write_references

    write_references(tmp_path / "refs", style)
    rows = [json.loads(line) for line in (tmp_path / "refs" / "metadata.jsonl").read_text().splitlines()]
    assert [row["text"] for row in rows] == [f"a {c} {s}, {STYLES[style].phrase}" for c, s in REFERENCES]
    stills = np.stack([np.array(PIL.Image.open(tmp_path / "refs" / row["file_name"])) for row in rows])
    assert all(STYLE_TESTS[style](still[None]) for still in stills)
