"""The recipe of ``shapes-tiny-edit``, the conditional (``<J, C, M>``) shapes model behind
image-to-video, inpainting and cinemagraphs: every stage, resumable.

    python -m lumiere.recipes.shapes_tiny_edit [STAGE ...] [--workdir runs/shapes-tiny]

Stages, in order (each skips work already done, so rerunning continues a killed run):

1. ``data``: the clips of the ``shapes-tiny`` recipe (its ``clips`` and ``axis-clips``
   folders, the held-out triples left out), shared with it under the same workdir.
2. ``edit``: ``shapes-tiny`` given the conditioning input (zero at first, so it starts as
   the text-to-video model) and fine-tuned, every weight, on masked copies of the clips:
   masks drawn per clip from :data:`lumiere.conditioning.DEFAULT_MASK_MIX`, a tenth of
   them knowing nothing so that text-to-video stays.
3. ``known``: the ``edit`` model fine-tuned further with the loss on known pixels weighted
   up (``known_loss_weight``), so that it redraws what it is given more faithfully.
4. ``drift``: the ``known`` model fine-tuned further with half the clips' noise drifted
   on known pixels (``known_drift``), so that it redraws them from the conditioning input
   rather than from its own noisy sample.
5. ``decoder``: the ``drift`` model given the conditioning's decoder input (zero at first,
   ``conditioning_decoder_input``) and fine-tuned further as ``drift`` was, so that the
   known pixels reach the output through a path of their own.
6. ``faithful``: the ``decoder`` model fine-tuned further with the conditioning inputs'
   learning rate ten times the rest (``conditioning_learning_rate``): the decoder input,
   still near zero after ``decoder``, grows into a path that copies the known pixels.
7. ``export``: the EMA weights of ``faithful`` in fp16, into ``lumiere/assets/shapes-tiny-edit``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ..assets import DEFAULT_MODEL_DIR, EDIT_MODEL_DIR
from ..data.shapes import write_dataset
from ..files import update_folder
from ..models.minilm import MiniLMTextEncoder
from ..training import TrainConfig, train
from . import run_stages
from .shapes_tiny import DATASETS, RESOLUTION, VALIDATION

STAGES = ("data", "edit", "known", "drift", "decoder", "faithful", "export")
EDIT_STEPS = 2500
KNOWN_STEPS = 1000
KNOWN_LOSS_WEIGHT = 4.0
DRIFT_STEPS = 2500
KNOWN_DRIFT = 0.5
DECODER_STEPS = 1500
FAITHFUL_STEPS = 1500
FAITHFUL_CONDITIONING_LR = 1e-3


def edit_config(workdir: Path, **overrides) -> TrainConfig:
    values = dict(
        pretrained=str(DEFAULT_MODEL_DIR), conditioning=True, conditioning_init="copy", train_spatial=True,
        train_data=f"{workdir / 'clips'},{workdir / 'axis-clips'}", output_dir=str(workdir / "edit"),
        num_frames=16, frame_stride=2, resolution=RESOLUTION, train_batch_size=4, max_train_steps=EDIT_STEPS,
        # Lower than the temporal stages' 5e-4: the 2D weights train too, and text-to-video
        # must survive the fine-tuning.
        learning_rate=2e-4, lr_warmup_steps=50, snr_gamma=None, use_ema=True, ema_decay=0.998,
        checkpointing_steps=250, checkpoints_total_limit=None, resume="latest",
        validation_prompts=VALIDATION, validation_steps=EDIT_STEPS,
        validation_num_inference_steps=25, validation_guidance_scale=3.0,
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def _continued(workdir: Path, source: str, output: str, steps: int, **overrides) -> TrainConfig:
    """A stage that fine-tunes ``source``'s result further into ``output``, with the known
    pixels' loss weighted up, at half the ``edit`` learning rate."""
    return edit_config(
        workdir, pretrained=str(workdir / source), output_dir=str(workdir / output),
        known_loss_weight=KNOWN_LOSS_WEIGHT, max_train_steps=steps, validation_steps=steps,
        learning_rate=1e-4, lr_warmup_steps=20, **overrides,
    )  # fmt: skip


def known_config(workdir: Path) -> TrainConfig:
    return _continued(workdir, "edit", "edit-known", KNOWN_STEPS)


def drift_config(workdir: Path) -> TrainConfig:
    return _continued(workdir, "edit-known", "edit-drift", DRIFT_STEPS, known_drift=KNOWN_DRIFT)


def decoder_config(workdir: Path) -> TrainConfig:
    return _continued(
        workdir, "edit-drift", "edit-decoder", DECODER_STEPS, known_drift=KNOWN_DRIFT, conditioning_decoder_input=True
    )


def faithful_config(workdir: Path) -> TrainConfig:
    return _continued(
        workdir, "edit-decoder", "edit-faithful", FAITHFUL_STEPS, known_drift=KNOWN_DRIFT,
        conditioning_learning_rate=FAITHFUL_CONDITIONING_LR,
    )  # fmt: skip


def _done(folder: Path) -> bool:
    return (folder / "model_index.json").is_file()


def run(stage: str, workdir: Path) -> None:
    if stage == "data":
        for name in ("clips", "axis-clips"):
            if not (workdir / name / "metadata.jsonl").is_file():
                write_dataset(workdir / name, size=RESOLUTION, overwrite=True, **DATASETS[name])
    elif stage == "edit" and not _done(workdir / "edit"):
        train(edit_config(workdir))
    elif stage == "known" and not _done(workdir / "edit-known"):
        train(known_config(workdir))
    elif stage == "drift" and not _done(workdir / "edit-drift"):
        train(drift_config(workdir))
    elif stage == "decoder" and not _done(workdir / "edit-decoder"):
        train(decoder_config(workdir))
    elif stage == "faithful" and not _done(workdir / "edit-faithful"):
        train(faithful_config(workdir))
    elif stage == "export":
        from ..pipelines import LumierePipeline

        encoder = MiniLMTextEncoder.from_pretrained()
        pipeline = LumierePipeline.from_pretrained(workdir / "edit-faithful", text_encoder=encoder)
        update_folder(EDIT_MODEL_DIR, pipeline.to(torch.float16).save_pretrained)


def main(argv: Sequence[str] | None = None) -> int:
    return run_stages("shapes-tiny-edit", __doc__.splitlines()[0], STAGES, run, argv)


if __name__ == "__main__":
    sys.exit(main())
