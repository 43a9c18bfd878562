"""The super-resolution scores (lumiere.eval.super_resolution) on clips whose answers are known."""

import numpy as np
import pytest

from lumiere.eval.shapes import prompt_set
from lumiere.eval.super_resolution import (
    bicubic,
    ground_truth,
    score_quality,
    seam_scores,
    shrink,
    ssim,
    window_edges,
)


def test_ssim_is_one_for_equal_clips_and_follows_its_formula_on_flat_ones():
    clip = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert ssim(clip, clip) == pytest.approx(1.0)
    # Flat frames: no variance, so SSIM is the luminance term (2*0*m + c1) / (0 + m^2 + c1).
    black, grey = np.zeros((1, 8, 8, 3), np.uint8), np.full((1, 8, 8, 3), 100, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(black, grey) == pytest.approx(c1 / (100**2 + c1))
    noisy = np.clip(clip + np.random.default_rng(1).normal(0, 40, clip.shape), 0, 255).astype(np.uint8)
    assert ssim(clip, noisy) < 0.9


def test_the_input_is_the_truth_shrunk_and_bicubic_is_a_fair_baseline():
    case = prompt_set(2)[0]
    truth = ground_truth(case, 16, 64)
    low = shrink(truth, 2)
    assert truth.shape == (16, 64, 64, 3) and low.shape == (16, 32, 32, 3)
    np.testing.assert_allclose(low[3, 5, 7], truth[3, 10:12, 14:16].reshape(4, 3).mean(0), atol=0.5)
    row = score_quality(case, truth, low, truth, 2)  # a perfect upscaler
    assert row["psnr"] == np.inf and row["ssim"] == pytest.approx(1.0)
    assert 28 < row["psnr_bicubic"] < 40 and 0.9 < row["ssim_bicubic"] < 1  # measured 31-35 dB, 0.98-0.99
    assert row["colour"] and row["shape"] and row["motion"]  # the scorer reads the 64 px truth
    assert row["colour_low_res"] and row["motion_low_res"]
    assert bicubic(low, 2).shape == truth.shape


def test_window_edges_are_where_windows_start_or_end():
    assert window_edges(48, 16, 8) == {8, 16, 24, 32, 40}
    assert window_edges(48, 16, 16) == {16, 32}
    assert window_edges(40, 16, 16) == {16, 24, 32}  # the last window is aligned to the end: [24, 40)


def test_a_jump_at_a_window_edge_is_a_seam_and_motion_is_not():
    truth = ground_truth(prompt_set(2)[0], 32, 32)
    assert seam_scores(truth, truth, {16}) == dict.fromkeys(
        ("flicker_boundary", "flicker_interior", "acceleration_boundary", "acceleration_interior"), 0.0
    )  # the true motion is no flicker
    jumped = truth.astype(int)
    jumped[16:] = np.clip(jumped[16:] + 20, 0, 255)  # every frame from 16 on brighter
    scores = seam_scores(jumped.astype(np.uint8), truth, {16})
    assert scores["flicker_boundary"] > 15 and scores["flicker_interior"] == 0


@pytest.mark.parametrize("index", [0, 3, 4])  # moving left, rotating, moving up-right (held out)
def test_a_long_ground_truth_clip_keeps_its_motion_across_windows_without_seams(index):
    from lumiere.eval.long_video import score_long

    case = prompt_set(16)[index]
    truth = ground_truth(case, 64, 32)
    scores = score_long(case, truth, 16, window_edges(64, 16, 8))
    assert scores["colour"] and scores["shape"] and scores["motion"]
    assert scores["heading_kept"] == (None if case.motion == "rotating" else 1.0)
    assert 0.7 < scores["flicker_boundary"] / scores["flicker_interior"] < 1.3  # measured 0.76-1.11
    if case.motion != "rotating":  # turned back half way: the last two segments go the wrong way
        turned = np.concatenate([truth[:32], truth[31::-1]])
        assert score_long(case, turned, 16, set())["heading_kept"] == 0.5


def test_the_long_video_evaluation_applies_its_window_options_to_the_averaged_run_only():
    from types import SimpleNamespace

    from lumiere.eval.long_video import evaluate

    case = prompt_set(2)[0]
    calls = []

    def pipe(prompt, **kwargs):
        calls.append(kwargs)
        return SimpleNamespace(frames=[ground_truth(case, kwargs["num_frames"], 32) / 255.0])

    run = evaluate(pipe, [case], 32, 16, {}, dict(window_weighting="pyramid", window_noise="shuffled"))
    assert [(c["window_stride"], c.get("window_weighting"), c.get("window_noise")) for c in calls] == [
        (8, "pyramid", "shuffled"), (16, None, None)
    ]  # fmt: skip
    assert run["rows"]["averaged"][0]["colour"] and run["rows"]["averaged"][0]["heading_kept"] == 1.0


def test_the_ssr_evaluation_runs_end_to_end_on_a_tiny_upscaler(tmp_path):
    """Quality rows and the three seam runs of :mod:`lumiere.eval.super_resolution` on a
    tiny 16 -> 32 px pipeline (untrained: the numbers are not the point, their layout is)."""
    from lumiere.eval.super_resolution import METHODS, evaluate_quality, evaluate_seams
    from lumiere.testing import make_super_resolution_pipeline

    pipe = make_super_resolution_pipeline(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    settings = dict(num_inference_steps=2, guidance_scale=1.0)
    rows, seconds = evaluate_quality(pipe, prompt_set(2), 4, settings)
    assert len(rows) == 2 and seconds > 0 and 0 < rows[0]["psnr"] < rows[0]["psnr_bicubic"]
    seams = evaluate_seams(pipe, prompt_set(2)[:1], 8, 4, settings)
    assert set(seams["rows"]) == set(METHODS) and all(len(r) == 1 for r in seams["rows"].values())
    # Non-overlapping windows share no frames: their clip differs from the averaged one's.
    flicker = {m: seams["rows"][m][0]["flicker_boundary"] for m in METHODS}
    assert flicker["averaged"] != flicker["non_overlapping"]


def test_the_ssr_evaluation_command_can_skip_the_seams_and_refuses_bad_counts(tmp_path, capsys):
    import json

    from lumiere.eval.super_resolution import main
    from lumiere.testing import make_super_resolution_pipeline

    make_super_resolution_pipeline(tmp_path).save_pretrained(tmp_path / "ssr")
    out = tmp_path / "eval"
    assert main(["--model", str(tmp_path / "ssr"), "--cases", "2", "--frames", "4", "--steps", "1",
                 "--seam-cases", "0", "--out", str(out)]) == 0  # fmt: skip
    results = json.loads((out / "eval-ssr.json").read_text())
    assert results["seams"] is None and len(results["quality"]["rows"]) == 2
    assert "flicker ratio" not in (out / "eval-ssr.md").read_text()
    for bad in (["--seam-cases", "-1"], ["--cases", "0"]):
        with pytest.raises(SystemExit) as stop:
            main(["--model", str(tmp_path / "ssr"), *bad])
        assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--seam-cases >= 0; got" in err and "usage:" not in err  # one line per error, as the CLI's
