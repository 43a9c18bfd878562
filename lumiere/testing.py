"""Tiny diffusers components built in code, with no download: U-Nets, text encoders and
tokenizers, a VAE, a scheduler, and a Stable-Diffusion-layout pipeline.

For tests, examples and smoke runs: the weights are random, so what they generate is noise.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, IFPipeline, StableDiffusionPipeline, UNet2DConditionModel
from transformers import BertConfig, BertModel, BertTokenizer, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

TEXT_DIM = 32
MAX_TOKENS = 16

# Stable Diffusion style: latent (4 channels), Transformer2D cross-attention.
SD_UNET = dict(
    block_out_channels=(16, 32, 32),
    layers_per_block=1,
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=TEXT_DIM,
    attention_head_dim=8,
    norm_num_groups=8,
)
# Same layout in pixel space (3 channels), like Lumiere / Imagen.
PIXEL_UNET = {**SD_UNET, "in_channels": 3, "out_channels": 3, "sample_size": 16}
# DeepFloyd IF style: resnet resamplers, added-KV cross-attention, a text projection and
# a text addition embedding, learned variance (twice the output channels).
IF_UNET = dict(
    block_out_channels=(16, 32),
    layers_per_block=1,
    sample_size=16,
    in_channels=3,
    out_channels=6,
    down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
    up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
    mid_block_type="UNetMidBlock2DSimpleCrossAttn",
    cross_attention_dim=32,
    encoder_hid_dim=TEXT_DIM,
    encoder_hid_dim_type="text_proj",
    addition_embed_type="text",
    addition_embed_type_num_heads=2,
    resnet_time_scale_shift="scale_shift",
    attention_head_dim=8,
    norm_num_groups=8,
)
# A super-resolution U-Net (IF stage II style): the noisy image and the upsampled input on
# channels, the input's augmentation level through a timestep-style class embedding.
SR_UNET = {**PIXEL_UNET, "in_channels": 6, "class_embed_type": "timestep", "sample_size": 32}
UNET_CONFIGS = {"latent": SD_UNET, "pixel": PIXEL_UNET, "if": IF_UNET, "sr": SR_UNET}


def make_unet2d(kind: str = "latent", seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**UNET_CONFIGS[kind])
    # Norm biases start at zero; randomize them too so every weight carries signal.
    with torch.no_grad():
        for parameter in unet.parameters():
            if parameter.abs().sum() == 0:
                parameter.normal_(0, 0.02)
    return unet.eval()


def make_clip(seed: int = 0) -> tuple[CLIPTextModel, CLIPTokenizer]:
    torch.manual_seed(seed)
    encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=TEXT_DIM, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=100,
            max_position_embeddings=MAX_TOKENS, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        )
    )  # fmt: skip
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits:
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    return encoder.eval(), CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TOKENS)


def make_bert(vocab_dir: str | os.PathLike, seed: int = 0) -> tuple[BertModel, BertTokenizer]:
    torch.manual_seed(seed)
    encoder = BertModel(
        BertConfig(
            hidden_size=TEXT_DIM, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=64,
            max_position_embeddings=MAX_TOKENS,
        ),
        add_pooling_layer=False,
    )  # fmt: skip
    vocab_file = Path(vocab_dir) / "vocab.txt"
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "a",
        "red",
        "blue",
        "circle",
        "square",
        "moving",
        "left",
        "right",
    ]
    vocab_file.write_text("\n".join(words) + "\n")
    return encoder.eval(), BertTokenizer(str(vocab_file), model_max_length=MAX_TOKENS)


def make_vae(seed: int = 0) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    ).eval()  # fmt: skip


def make_scheduler(prediction_type: str = "epsilon") -> DDIMScheduler:
    return DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
        prediction_type=prediction_type, set_alpha_to_one=False, steps_offset=1,
    )  # fmt: skip


def make_sd_pipeline() -> StableDiffusionPipeline:
    """A tiny Stable-Diffusion-layout text-to-image pipeline."""
    encoder, tokenizer = make_clip()
    return StableDiffusionPipeline(
        unet=make_unet2d("latent"), vae=make_vae(), text_encoder=encoder, tokenizer=tokenizer,
        scheduler=make_scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip


def make_pixel_t2i_pipeline(kind: str = "pixel") -> IFPipeline:
    """A tiny pixel-space text-to-image pipeline in the DeepFloyd IF layout (the diffusers
    pixel-space T2I class; its safety components are optional): the starting point that
    ``LumierePipeline.from_text_to_image`` and the trainer accept like an SD folder.
    ``kind="sr"``: its U-Net is a super-resolution one (:data:`SR_UNET`)."""
    encoder, tokenizer = make_clip()
    return IFPipeline(
        unet=make_unet2d(kind), text_encoder=encoder, tokenizer=tokenizer, scheduler=make_scheduler(),
        safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False,
    )  # fmt: skip


def perturb_temporal(unet, seed: int = 1):
    """Give the zero-initialized temporal layers of a ``SpaceTimeUNet`` some weight, as
    after training, so that tests see them act; returns ``unet``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in unet.temporal_parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    return unet


def make_pixel_lumiere_pipeline(vocab_dir: str | os.PathLike):
    """A tiny pixel-space ``LumierePipeline`` (BERT text encoder, v-prediction DDIM) whose
    temporal layers act (:func:`perturb_temporal`); ``vocab_dir`` receives the vocabulary."""
    from .models import SpaceTimeUNet
    from .pipelines import LumierePipeline

    encoder, tokenizer = make_bert(vocab_dir)
    unet = perturb_temporal(SpaceTimeUNet.from_unet2d(make_unet2d("pixel")))
    return LumierePipeline(
        unet=unet, scheduler=make_scheduler("v_prediction"), text_encoder=encoder, tokenizer=tokenizer
    )


def make_super_resolution_pipeline(vocab_dir: str | os.PathLike, scale: int = 2):
    """A tiny pixel-space ``LumiereSuperResolutionPipeline`` (16 -> 32 px at ``scale`` 2)
    whose temporal layers act; ``vocab_dir`` receives the vocabulary."""
    from .models import SpaceTimeUNet
    from .pipelines import LumiereSuperResolutionPipeline

    encoder, tokenizer = make_bert(vocab_dir)
    unet = perturb_temporal(SpaceTimeUNet.from_unet2d(make_unet2d("sr")))
    return LumiereSuperResolutionPipeline(
        unet=unet, scheduler=make_scheduler("v_prediction"), text_encoder=encoder, tokenizer=tokenizer,
        super_resolution_scale=scale,
    )  # fmt: skip


def make_inflated_pipeline(kind: str = "pixel", temporal_seed: int | None = None):
    """``LumierePipeline.from_text_to_image`` of :func:`make_pixel_t2i_pipeline` (``kind='pixel'``)
    or of :func:`make_sd_pipeline` (``'latent'``), with the progress bar off; with
    ``temporal_seed``, its temporal layers get weight (:func:`perturb_temporal`)."""
    from .pipelines import LumierePipeline

    makers = {"pixel": make_pixel_t2i_pipeline, "latent": make_sd_pipeline}
    if kind not in makers:
        raise ValueError(f"kind={kind!r} is invalid; choose one of {', '.join(makers)}")
    pipe = LumierePipeline.from_text_to_image(makers[kind]())
    if temporal_seed is not None:
        perturb_temporal(pipe.unet, temporal_seed)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def subprocess_env(**extra: str) -> dict[str, str]:
    """``os.environ`` for a child Python process that imports this checkout's ``lumiere``
    (its root first on ``PYTHONPATH``), updated with ``extra``."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def read_metadata(folder: str | os.PathLike) -> list[dict]:
    """The records of a dataset folder's ``metadata.jsonl``, one dict per line."""
    import json

    lines = (Path(folder) / "metadata.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]
