import pytest
import torch

from lumiere.data.shapes import caption, render_clip, sample_specs, track
from lumiere.eval.direction_word import (
    OPPOSITE,
    DirectionWordRow,
    direction_word_probe,
    displacement,
    markdown_table,
    sideways,
)
from lumiere.testing import make_inflated_pipeline


def _as_tensor(frames):
    return torch.from_numpy(frames).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]  # (1, C, F, H, W)


def test_displacement_follows_the_rendered_track_and_its_sign():
    triples = [("red", "circle", motion) for motion in OPPOSITE]
    for spec in sample_specs(8, seed=1, include_only=triples):
        clip = _as_tensor(render_clip(spec, 8, 32))
        centre = track(spec, 8, 32).center  # (F, 2) x, y in pixels
        step = centre[-1] - centre[0]
        expected = {"moving right": step[0], "moving left": -step[0], "moving down": step[1], "moving up": -step[1]}
        moved = displacement(clip, [spec.motion]).item()
        assert moved > 5 and moved == pytest.approx(expected[spec.motion], abs=1.0)
        assert displacement(clip, [OPPOSITE[spec.motion]]).item() == pytest.approx(-moved)
        assert sideways(clip, [spec.motion]).item() < 0.5  # an axis-aligned move has no sideways part


def test_sideways_measures_the_drift_across_the_axis():
    spec = sample_specs(1, seed=3, include_only=[("red", "circle", "moving down-right")])[0]
    clip = _as_tensor(render_clip(spec, 8, 32))
    step = track(spec, 8, 32).center[-1] - track(spec, 8, 32).center[0]  # (dx, dy), both > 0
    # Asked to move right, the clip drifts down by dy; asked to move up, it drifts right by dx.
    assert sideways(clip, ["moving right"]).item() == pytest.approx(step[1], abs=1.0)
    assert sideways(clip, ["moving up"]).item() == pytest.approx(step[0], abs=1.0)
    assert displacement(clip, ["moving right"]).item() == pytest.approx(step[0], abs=1.0)


def test_probe_reports_each_timestep_and_a_text_blind_model_scores_no_effect(monkeypatch):
    import lumiere.eval.direction_word as probe
    from lumiere.testing import MAX_TOKENS, TEXT_DIM

    def encode_each_caption_apart(text_encoder, tokenizer, text, device):
        # The tiny test tokenizer has no word for "left" or "right": give every caption its own context.
        seeds = [sum(map(ord, line)) for line in text]
        return torch.stack(
            [torch.randn(MAX_TOKENS, TEXT_DIM, generator=torch.Generator().manual_seed(s)) for s in seeds]
        )

    monkeypatch.setattr(probe, "encode_text", encode_each_caption_apart)
    pipe = make_inflated_pipeline("pixel")
    rows = direction_word_probe(pipe, timesteps=(900, 500), num_clips=4, num_frames=4)
    assert [row.timestep for row in rows] == [900, 500]
    assert all(row.data > 2 for row in rows)  # the clean clips do move the stated way
    assert rows[0].true_word != rows[0].opposite_word  # the tiny model's cross-attention reads the text
    assert all(row.true_word_sideways >= 0 for row in rows)

    unet_forward = pipe.unet.forward
    pipe.unet.forward = lambda sample, t, encoder_hidden_states, **kw: unet_forward(
        sample, t, torch.zeros_like(encoder_hidden_states), **kw
    )
    blind = direction_word_probe(pipe, timesteps=(900,), num_clips=4, num_frames=4)
    assert blind[0].true_word == blind[0].opposite_word and blind[0].true_word_mse == blind[0].opposite_word_mse


def test_probe_refuses_latent_pipelines_and_empty_probes():
    with pytest.raises(ValueError, match="latent pipeline"):
        direction_word_probe(make_inflated_pipeline("latent"))
    pipe = make_inflated_pipeline("pixel")
    with pytest.raises(ValueError, match="num_clips must be >= 1, got 0"):
        direction_word_probe(pipe, num_clips=0)
    with pytest.raises(ValueError, match="num_frames must be >= 2"):
        direction_word_probe(pipe, num_frames=1)
    with pytest.raises(ValueError, match=r"timesteps must be .* \[0, 1000\), got \[1000\]"):
        direction_word_probe(pipe, timesteps=(1000,))


def test_opposite_captions_swap_only_the_direction():
    spec = sample_specs(1, seed=0, include_only=[("blue", "square", "moving up")])[0]
    assert caption(spec).replace(spec.motion, OPPOSITE[spec.motion]) == "a blue square moving down"


def test_table_marks_rows_saved_before_the_sideways_column():
    old = DirectionWordRow(950, 16.8, 12.0, 1.0, 0.03, 0.05)
    new = DirectionWordRow(950, 16.8, 12.0, 1.0, 0.03, 0.05, true_word_sideways=2.5)
    lines = markdown_table([old, new]).splitlines()
    assert lines[2].endswith("| n/a |") and lines[3].endswith("| 2.50 |")
