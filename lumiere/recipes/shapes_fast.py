"""The recipe of ``shapes-tiny-fast``: ``shapes-tiny`` distilled to few-step sampling
(progressive distillation with a guidance-conditioned student, :mod:`lumiere.distillation`).
Every stage resumable.

    python -m lumiere.recipes.shapes_fast [STAGE ...] [--workdir runs/shapes-tiny]

Stages, in order (each skips work already done, so rerunning continues a killed run):

1. ``data``: the clips of the ``shapes-tiny`` recipe (``clips`` and ``axis-clips``, the
   held-out triples left out), shared with it under the same workdir.
2. ``distill-8``: the shipped ``shapes-tiny`` given a guidance-scale input (zero at first)
   and fine-tuned, every weight, to do in one DDIM step what ``shapes-tiny`` does in two
   with classifier-free guidance on its 16-step grid: 8 steps, one pass each.
3. ``distill-4``: the same again with the ``distill-8`` student as the teacher: 4 steps.
4. ``export``: the EMA weights of the student that ships (``SAMPLING["steps"]``: ``fast-8`` or
   ``fast-4``) in fp16, into ``lumiere/assets/shapes-tiny-fast``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ..assets import DEFAULT_MODEL_DIR, FAST_MODEL_DIR
from ..files import update_folder
from ..models.minilm import MiniLMTextEncoder
from ..training import TrainConfig, train
from . import run_stages
from .shapes_tiny import RESOLUTION, VALIDATION
from .shapes_tiny_edit import run as run_edit_recipe

STAGES = ("data", "distill-8", "distill-4", "export")
TEACHER_STEPS = 16  # the first teacher's grid; each stage halves it
DISTILL_STEPS = 1000
# shapes-tiny is evaluated at guidance 3 (lumiere.recipes.shapes_tiny.SAMPLING); the
# student learns every scale up to this one.
GUIDANCE_SCALE_MAX = 5.0
# The shipped student (the stage that made it) samples with this many DDIM steps, at this guidance.
SAMPLING = dict(steps=TEACHER_STEPS // 2, guidance=3.0)


def distill_config(workdir: Path, teacher: Path, teacher_steps: int, output: str, **overrides) -> TrainConfig:
    values = dict(
        pretrained=str(teacher), distill_teacher=str(teacher), distill_teacher_steps=teacher_steps,
        distill_guidance_scale_max=GUIDANCE_SCALE_MAX, train_spatial=True,
        train_data=f"{workdir / 'clips'},{workdir / 'axis-clips'}", output_dir=str(workdir / output),
        num_frames=16, frame_stride=2, resolution=RESOLUTION, train_batch_size=4, max_train_steps=DISTILL_STEPS,
        # Every weight trains, from a model that already samples well: a fine-tuning rate.
        learning_rate=5e-5, lr_warmup_steps=50, use_ema=True, ema_decay=0.998,
        checkpointing_steps=100, checkpoints_total_limit=2, resume="latest",
        validation_prompts=VALIDATION, validation_steps=DISTILL_STEPS,
        validation_num_inference_steps=teacher_steps // 2, validation_guidance_scale=SAMPLING["guidance"],
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def first_config(workdir: Path, **overrides) -> TrainConfig:
    return distill_config(workdir, DEFAULT_MODEL_DIR, TEACHER_STEPS, "fast-8", **overrides)


def second_config(workdir: Path, **overrides) -> TrainConfig:
    return distill_config(workdir, workdir / "fast-8", TEACHER_STEPS // 2, "fast-4", **overrides)


def _done(folder: Path) -> bool:
    return (folder / "model_index.json").is_file()


def run(stage: str, workdir: Path) -> None:
    if stage == "data":
        run_edit_recipe("data", workdir)  # the same clips
    elif stage == "distill-8" and not _done(workdir / "fast-8"):
        train(first_config(workdir))
    elif stage == "distill-4" and not _done(workdir / "fast-4"):
        train(second_config(workdir))
    elif stage == "export":
        from ..pipelines import LumierePipeline

        encoder = MiniLMTextEncoder.from_pretrained()
        pipeline = LumierePipeline.from_pretrained(workdir / f"fast-{SAMPLING['steps']}", text_encoder=encoder)
        update_folder(FAST_MODEL_DIR, pipeline.to(torch.float16).save_pretrained)


def main(argv: Sequence[str] | None = None) -> int:
    return run_stages("shapes-tiny-fast", __doc__.splitlines()[0], STAGES, run, argv)


if __name__ == "__main__":
    sys.exit(main())
