"""The shapes-tiny recipe: its starting folder and its stage configurations."""

from pathlib import Path

import torch

from lumiere import LumierePipeline
from lumiere.codec import encode_text
from lumiere.recipes import shapes_tiny
from lumiere.training import checkpoints


def test_template_is_a_pixel_t2i_folder_with_the_frozen_minilm(tmp_path):
    shapes_tiny.make_template(tmp_path / "template")
    pipe = LumierePipeline.from_text_to_image(tmp_path / "template")
    assert pipe.vae is None and pipe.scheduler.config.prediction_type == "v_prediction"
    longest, opposite = "a purple triangle moving down-right", "a purple triangle moving up-left"
    captions = [longest, opposite, longest]
    context = encode_text(pipe.text_encoder, pipe.tokenizer, captions, torch.device("cpu"))
    assert context.shape == (3, shapes_tiny.MAX_TOKENS, 384)
    # The frozen encoder is deterministic and hears the direction words.
    torch.testing.assert_close(context[2], context[0])
    assert (context[1] - context[0]).abs().max() > 0.1
    # The longest caption fits without truncation: [CLS] + words + [SEP] leaves padding.
    ids = pipe.tokenizer(longest)["input_ids"]
    assert len(ids) < shapes_tiny.MAX_TOKENS


def test_stage_configs_chain(tmp_path):
    pretrain = shapes_tiny.pretrain_config(tmp_path)
    video = shapes_tiny.video_config(tmp_path)
    assert pretrain.mode == "image" and pretrain.from_scratch and pretrain.resume == "latest"
    assert video.pretrained == pretrain.output_dir and not video.train_spatial and video.num_frames >= 16
    refine = shapes_tiny.refine_config(tmp_path)
    assert Path(refine.pretrained) == tmp_path / "refine-start" and not refine.train_spatial
    assert refine.num_frames == video.num_frames and refine.train_batch_size > video.train_batch_size
    axis = shapes_tiny.axis_config(tmp_path)
    assert axis.pretrained == refine.pretrained and axis.max_train_steps > refine.max_train_steps
    assert axis.train_data.split(",") == [video.train_data, str(tmp_path / "axis-clips")]
    assert Path(axis.resume) == Path(refine.output_dir) / f"checkpoint-{refine.max_train_steps}"
    # A relaunch continues its own run, not the refine checkpoint again.
    (Path(axis.output_dir) / "checkpoint-5250").mkdir(parents=True)
    (Path(axis.output_dir) / "checkpoint-5250" / checkpoints.STATE_FILE).write_text("{}")
    assert shapes_tiny.axis_config(tmp_path).resume == "latest"


def test_refine_start_keeps_eight_coarse_frames_and_every_temporal_weight(tmp_path):
    from lumiere.testing import make_inflated_pipeline

    video = make_inflated_pipeline("pixel", temporal_seed=1)  # every temporal weight off its initial value
    video.save_pretrained(tmp_path / "video")
    shapes_tiny.refine_start(tmp_path / "video", tmp_path / "start")
    unet = LumierePipeline.from_pretrained(tmp_path / "start").unet
    assert unet.config.temporal_attention_spatial_positions and unet.config.temporal_downsample[-1] is False
    assert unet.temporal_factor == video.unet.temporal_factor // 2
    refined = unet.state_dict()
    kept = {name: weight for name, weight in video.unet.state_dict().items() if name in refined}
    assert all(torch.equal(refined[name], weight) for name, weight in kept.items())
    dropped = set(video.unet.state_dict()) - set(kept)
    assert dropped and all(".resample." in name for name in dropped)


def test_gallery_pairs_each_clip_with_its_baseline(tmp_path):
    import json

    import numpy as np
    import PIL.Image

    cases = [{"prompt": f"a red circle moving {d}", "seen": seen} for d, seen in (("left", False), ("right", True))]
    (tmp_path / "eval.json").write_text(json.dumps({"lumiere": {"clips": cases}}))
    rng = np.random.default_rng(0)
    for name in ("lumiere", "per_frame_baseline"):
        np.savez_compressed(tmp_path / f"{name}-clips.npz", *rng.integers(0, 255, (2, 4, 8, 8, 3), dtype=np.uint8))
    prompts = shapes_tiny.write_gallery(tmp_path, tmp_path / "gallery", scale=2)
    assert prompts == ["a red circle moving left", "a red circle moving right"]
    with PIL.Image.open(tmp_path / "gallery" / "unseen-a-red-circle-moving-left.gif") as gif:
        assert gif.n_frames == 4 and gif.size == (2 * (8 + 2 + 8), 2 * 8)
    with PIL.Image.open(tmp_path / "gallery" / "sheet.png") as sheet:
        assert sheet.size == (4 * 16 + 5 * 2, 2 * 16 + 3 * 2)


def test_ssr_stages_chain_on_the_64_px_data_of_the_same_specs(tmp_path):
    from lumiere.recipes import shapes_ssr

    pretrain = shapes_ssr.pretrain_config(tmp_path)
    video = shapes_ssr.video_config(tmp_path)
    assert pretrain.mode == "image" and pretrain.from_scratch and pretrain.resume == "latest"
    assert video.pretrained == pretrain.output_dir and video.mode == "video"
    assert video.temporal_downsample is False  # the inflated model starts as the per-frame 2D one
    for config in (pretrain, video):
        assert config.resolution == shapes_ssr.RESOLUTION == 2 * shapes_tiny.RESOLUTION
        assert config.super_resolution_scale == shapes_ssr.SCALE == 2
        assert config.super_resolution_residual  # the inflated model samples what the 2D one learned
    # The same clips and stills as shapes-tiny's (held-out triples excluded), only larger.
    assert shapes_ssr.SSR_DATASETS == {"stills-64": shapes_tiny.DATASETS["stills"],
                                       "clips-64": shapes_tiny.DATASETS["clips"]}  # fmt: skip
    unet = shapes_ssr.UNET
    assert unet["in_channels"] == 2 * unet["out_channels"] and unet["class_embed_type"] == "timestep"


def test_fast_stages_halve_the_teachers_steps_each_round(tmp_path):
    from lumiere.assets import DEFAULT_MODEL_DIR
    from lumiere.recipes import shapes_fast

    first, second = shapes_fast.first_config(tmp_path), shapes_fast.second_config(tmp_path)
    assert first.distill_teacher == first.pretrained == str(DEFAULT_MODEL_DIR)  # the shipped model, guided
    assert second.distill_teacher == second.pretrained == first.output_dir  # the first student teaches
    assert second.distill_teacher_steps == first.distill_teacher_steps // 2
    # The shipped student samples on the grid it learned: its stage's teacher's every other step.
    students = {config.distill_teacher_steps // 2: Path(config.output_dir).name for config in (first, second)}
    assert students[shapes_fast.SAMPLING["steps"]] == f"fast-{shapes_fast.SAMPLING['steps']}"
    for config in (first, second):
        assert config.train_spatial and config.resume == "latest"
        assert config.validation_num_inference_steps == config.distill_teacher_steps // 2
        assert config.distill_guidance_scale_max >= shapes_fast.SAMPLING["guidance"] == shapes_tiny.SAMPLING["guidance"]
        assert config.train_data == f"{tmp_path / 'clips'},{tmp_path / 'axis-clips'}"
