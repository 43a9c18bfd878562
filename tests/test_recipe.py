"""The shapes-tiny recipe: its starting folder and its stage configurations."""

import torch

from lumiere import LumierePipeline
from lumiere.pipelines.text_to_video import encode_text
from lumiere.recipes import shapes_tiny


def test_template_is_a_pixel_t2i_folder_with_the_frozen_minilm(tmp_path):
    shapes_tiny.make_template(tmp_path / "template")
    pipe = LumierePipeline.from_text_to_image(tmp_path / "template")
    assert pipe.vae is None and pipe.scheduler.config.prediction_type == "v_prediction"
    context = encode_text(pipe.text_encoder, pipe.tokenizer, ["a purple triangle moving down-right"], torch.device("cpu"))
    assert context.shape == (1, shapes_tiny.MAX_TOKENS, 384)
    # The longest caption fits without truncation: [CLS] + words + [SEP] leaves padding.
    ids = pipe.tokenizer("a purple triangle moving down-right")["input_ids"]
    assert len(ids) < shapes_tiny.MAX_TOKENS


def test_stage_configs_chain(tmp_path):
    pretrain = shapes_tiny.pretrain_config(tmp_path)
    video = shapes_tiny.video_config(tmp_path)
    assert pretrain.mode == "image" and pretrain.from_scratch and pretrain.resume == "latest"
    assert video.pretrained == pretrain.output_dir and not video.train_spatial and video.num_frames >= 16
