"""The editing scores, checked on the generator's own clips (what a perfect model makes)."""

import math

import numpy as np
import torch

from lumiere.eval.editing import (
    HIDDEN_FRAMES,
    NUM_FRAMES,
    cinemagraph_region,
    edit_case,
    inpainting_mask,
    psnr,
    replacement_callback,
    score_cinemagraph,
    score_image_to_video,
    score_inpainting,
    stillness,
)
from lumiere.eval.shapes import Case

MOVING = Case("red", "square", "moving right", seen=True, seed=5)


def test_the_true_clip_scores_perfectly_and_a_blank_one_does_not():
    case = edit_case(MOVING)
    assert case.clip.shape == (NUM_FRAMES, 32, 32, 3) and case.center.shape == (NUM_FRAMES, 2)
    i2v = score_image_to_video(case, case.clip)
    assert math.isinf(i2v["frame0_psnr"]) and i2v["colour"] and i2v["shape"] and i2v["motion"] and i2v["direction"]
    mask = inpainting_mask(case)
    assert mask[HIDDEN_FRAMES].any() and not mask[: HIDDEN_FRAMES.start].any()
    inpainting = score_inpainting(case, case.clip, mask)
    assert inpainting["centroid_within_2px"] == 1.0 and inpainting["centroid_error_px"] < 0.5
    hidden = case.clip.copy()
    hidden[mask > 0] = 0  # the object gone from the box
    assert score_inpainting(case, hidden, mask)["centroid_within_2px"] < 1.0
    assert psnr(hidden, case.clip) < 40


def test_cinemagraph_region_covers_the_path_and_stillness_reads_change_outside_it():
    case = edit_case(MOVING)
    region = cinemagraph_region(case)
    xs, ys = case.center.T.round().astype(int)
    assert region[ys.clip(0, 31), xs.clip(0, 31)].all()
    assert stillness(case.clip, region) == 0  # the object never leaves the region
    still = np.repeat(case.clip[:1], NUM_FRAMES, axis=0)
    scores = score_cinemagraph(case, case.clip, case.clip, region)
    assert scores["motion"] and scores["outside_change_pasted"] == 0
    noisy = still.copy()
    noisy[1::2] = np.clip(noisy[1::2].astype(int) + 10, 0, 255).astype(np.uint8)
    assert stillness(noisy, region) > 5
    assert math.isnan(stillness(still, np.ones_like(region)))


def test_replacement_callback_puts_the_known_pixels_back_at_the_last_step():
    case = edit_case(MOVING)
    known = np.zeros((NUM_FRAMES, 1, 1), dtype=np.float32)
    known[0] = 1
    callback = replacement_callback(case.clip, known, seed=0)

    class Pipe:
        class scheduler:
            timesteps = torch.tensor([900, 500, 100])

    latents = torch.zeros(1, 3, NUM_FRAMES, 32, 32)
    out = callback(Pipe, 2, torch.tensor(100), {"latents": latents})["latents"]
    expected = torch.from_numpy(case.clip[0]).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(out[0, :, 0], expected)
    assert out[0, :, 1:].abs().max() == 0
