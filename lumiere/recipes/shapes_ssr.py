"""The recipe of ``shapes-ssr``, the spatial super-resolution (SSR) model of the shapes world:
32 px clips of shapes-tiny to 64 px. Every stage resumable.

    python -m lumiere.recipes.shapes_ssr [STAGE ...] [--workdir runs/shapes-tiny]

Stages, in order (each skips work already done, so rerunning continues a killed run):

1. ``template``: the starting text-to-image SR folder (IF layout, pixel space): a small
   U-Net reading the noisy 64 px image and the upsampled 32 px input on 6 channels, the
   input's augmentation level through a timestep-style class embedding (as IF stage II),
   with shapes-tiny's frozen MiniLM text encoder and scheduler.
2. ``data``: the stills and clips of the shapes-tiny recipe (same specs and seeds, so the
   held-out triples stay out), rendered at 64 px.
3. ``pretrain``: the 2D SR U-Net trained from scratch on the stills, each shrunk to 32 px
   and augmented to a level drawn in ``[0, 250]``; it diffuses the residual over the
   input's bicubic upsample (``super_resolution_residual``).
4. ``video``: inflated without temporal downsampling (:meth:`SpaceTimeUNet.from_unet2d`,
   ``temporal_downsample=False``, so it starts as exactly the per-frame 2D model), then
   its temporal layers trained on the clips the same way.
5. ``export``: the EMA weights in fp16 into ``lumiere/assets/shapes-ssr``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel

from ..assets import SSR_MODEL_DIR
from ..data.shapes import write_dataset
from ..files import update_folder
from ..models.minilm import MiniLMTextEncoder
from ..training import TrainConfig, train
from . import run_stages
from .shapes_tiny import DATASETS, make_template

STAGES = ("template", "data", "pretrain", "video", "export")
SCALE = 2
RESOLUTION = 64  # the output; the input is RESOLUTION // SCALE, shapes-tiny's 32
# Attention only at the coarsest level (16x16 tokens): at 64 px the finer levels would pay
# for 4,096-token attention to sharpen edges that convolutions sharpen.
UNET = dict(
    sample_size=RESOLUTION, in_channels=6, out_channels=3, layers_per_block=1, block_out_channels=(32, 64, 96),
    down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    cross_attention_dim=384, attention_head_dim=8, norm_num_groups=16, class_embed_type="timestep",
)  # fmt: skip
# The folders under the workdir: shapes-tiny's datasets (specs, seeds) at 64 px.
SSR_DATASETS = {"stills-64": DATASETS["stills"], "clips-64": DATASETS["clips"]}
# What the evaluation, the model card and the command line's defaults use. No guidance:
# on the 2D SR model (3 clips) guidance 3 gave the same PSNR as 1 (29.74 vs 29.75 dB) in
# twice the time; the low-resolution clip says nearly all the text would.
SAMPLING = dict(steps=25, guidance=1.0)
# Both stages diffuse the residual over the bicubic upsample: with the same steps, the
# plain 2D model gave grainy shapes at 27.4 dB per frame (bicubic 34.7), see the model card.
RESIDUAL = True
# Every level sees every frame: with Lumiere's temporal downsampling the inflated model
# starts below the per-frame 2D one, and 800 steps left it 3.5 dB below (model card).
TEMPORAL_DOWNSAMPLE = False
PRETRAIN_STEPS = 1600
VIDEO_STEPS = 800


def pretrain_config(workdir: Path, **overrides) -> TrainConfig:
    values = dict(
        mode="image", from_scratch=True, pretrained=str(workdir / "ssr-template"),
        train_data=str(workdir / "stills-64"), output_dir=str(workdir / "ssr-2d"), resolution=RESOLUTION,
        super_resolution_scale=SCALE, super_resolution_noise_level=250, super_resolution_residual=RESIDUAL,
        train_batch_size=16, max_train_steps=PRETRAIN_STEPS, learning_rate=5e-4, lr_warmup_steps=100, snr_gamma=5.0,
        use_ema=True, ema_decay=0.999, checkpointing_steps=100, checkpoints_total_limit=2, resume="latest",
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def video_config(workdir: Path, **overrides) -> TrainConfig:
    values = dict(
        pretrained=str(workdir / "ssr-2d"), train_data=str(workdir / "clips-64"), output_dir=str(workdir / "ssr"),
        num_frames=16, frame_stride=2, resolution=RESOLUTION, super_resolution_scale=SCALE,
        temporal_downsample=TEMPORAL_DOWNSAMPLE,
        super_resolution_noise_level=250, super_resolution_residual=RESIDUAL, train_batch_size=2,
        max_train_steps=VIDEO_STEPS, learning_rate=5e-4, lr_warmup_steps=50, snr_gamma=None, use_ema=True,
        ema_decay=0.998, checkpointing_steps=100, checkpoints_total_limit=2, resume="latest",
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def _done(folder: Path) -> bool:
    return (folder / "model_index.json").is_file()


def run(stage: str, workdir: Path) -> None:
    if stage == "template" and not _done(workdir / "ssr-template"):
        torch.manual_seed(0)
        make_template(workdir / "ssr-template", unet=UNet2DConditionModel(**UNET))
    elif stage == "data":
        for name, options in SSR_DATASETS.items():
            if not (workdir / name / "metadata.jsonl").is_file():
                write_dataset(workdir / name, size=RESOLUTION, overwrite=True, **options)
    elif stage == "pretrain" and not _done(workdir / "ssr-2d"):
        train(pretrain_config(workdir))
    elif stage == "video" and not _done(workdir / "ssr"):
        train(video_config(workdir))
    elif stage == "export":
        from ..pipelines import LumiereSuperResolutionPipeline

        pipeline = LumiereSuperResolutionPipeline.from_pretrained(
            workdir / "ssr", text_encoder=MiniLMTextEncoder.from_pretrained()
        )
        update_folder(SSR_MODEL_DIR, pipeline.to(torch.float16).save_pretrained)


def main(argv: Sequence[str] | None = None) -> int:
    return run_stages("shapes-ssr", __doc__.splitlines()[0], STAGES, run, argv)


if __name__ == "__main__":
    sys.exit(main())
