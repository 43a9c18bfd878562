"""The recipe of the shipped ``outline`` style: a LoRA of shapes-tiny's text-to-image U-Net
trained StyleDrop-like on a few reference stills of hollow shapes, for stylized
generation by spatial-weight interpolation (:mod:`lumiere.stylize`).

    python -m lumiere.recipes.shapes_style [STAGE ...] [--workdir runs/shapes-tiny]

Stages, in order (each skips work already done):

1. ``t2i``: the text-to-image pipeline whose U-Net is shapes-tiny's spatial layers (they
   stayed frozen through its video training), in the IF layout the trainer takes.
2. ``stills``: the style references, :data:`REFERENCES`: one still of each shape, drawn
   as an outline (:func:`lumiere.data.shapes.render_clip` with ``outline``), captioned with
   the style phrase, ``"a red circle, in outline style"``.
3. ``style``: ``lumiere train --mode image --lora-rank 4`` on them; only the LoRA trains.
4. ``export``: the LoRA in fp16 into ``lumiere/assets/styles/outline`` (its model card
   stays).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import PIL.Image
import torch

from ..assets import DEFAULT_MODEL_DIR, STYLE_DIRS
from ..data.shapes import caption, render_clip, sample_specs
from ..files import atomic_dir, update_folder
from ..stylize import LORA_FILE
from ..training import TrainConfig, train
from . import run_stages
from .shapes_tiny import RESOLUTION, make_template

STAGES = ("t2i", "stills", "style", "export")
STYLE_PHRASE = "in outline style"
OUTLINE_PX = 1.5
# A few seen (colour, shape) pairs, one per shape; every other colour is left to the style
# to generalize to.
REFERENCES = (("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "star"))
STYLE_STEPS = 600
# A hollow shape differs from a filled one at the finest level, where shapes-tiny's U-Net
# has convolutions and no attention: a LoRA on the attention projections alone left every
# clip filled at style_scale 1 (fill ratio 0.90-0.97 on 8 prompts), so the resnets'
# convolutions get one too.
LORA = dict(lora_rank=8, lora_alpha=8.0, lora_target_modules=["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"])


def styled(prompt: str) -> str:
    """``prompt`` with the style phrase, as the references are captioned."""
    return f"{prompt}, {STYLE_PHRASE}"


def write_references(out: Path) -> None:
    """The reference stills and their ``metadata.jsonl``, written whole or not at all."""
    with atomic_dir(out, overwrite=True) as folder, open(folder / "metadata.jsonl", "w", encoding="utf-8") as meta:
        for index, (colour, shape) in enumerate(REFERENCES):
            spec = sample_specs(1, seed=index, include_only=[(colour, shape, "still")])[0]
            image = render_clip(spec, 1, RESOLUTION, outline=OUTLINE_PX)[0]
            name = f"{index:05d}.png"
            PIL.Image.fromarray(image).save(folder / name)
            meta.write(json.dumps({"file_name": name, "text": styled(caption(spec, still=True))}) + "\n")


def style_config(workdir: Path, **overrides) -> TrainConfig:
    values = dict(
        mode="image", pretrained=str(workdir / "style-t2i"), train_data=str(workdir / "style-stills"),
        output_dir=str(workdir / "style"), resolution=RESOLUTION, train_batch_size=4, max_train_steps=STYLE_STEPS,
        **LORA, learning_rate=1e-3, lr_warmup_steps=20, snr_gamma=5.0,
        checkpointing_steps=100, checkpoints_total_limit=2, resume="latest",
        validation_prompts=[styled(p) for p in ("a red circle", "a purple square", "a cyan star")],
        validation_steps=STYLE_STEPS, validation_num_inference_steps=25, validation_guidance_scale=3.0,
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def run(stage: str, workdir: Path) -> None:
    if stage == "t2i" and not (workdir / "style-t2i" / "model_index.json").is_file():
        from ..pipelines import LumierePipeline

        make_template(workdir / "style-t2i", unet=LumierePipeline.from_pretrained(DEFAULT_MODEL_DIR).unet.to_unet2d())
    elif stage == "stills" and not (workdir / "style-stills" / "metadata.jsonl").is_file():
        write_references(workdir / "style-stills")
    elif stage == "style" and not (workdir / "style" / LORA_FILE).is_file():
        train(style_config(workdir))
    elif stage == "export":
        from safetensors.torch import load_file, safe_open, save_file

        source = workdir / "style" / LORA_FILE
        with safe_open(source, "pt") as file:
            metadata = file.metadata()
        weights = {name: value.to(torch.float16) for name, value in load_file(source).items()}
        update_folder(STYLE_DIRS["outline"], lambda folder: save_file(weights, Path(folder) / LORA_FILE, metadata))


def main(argv: Sequence[str] | None = None) -> int:
    return run_stages("shapes-style", __doc__.splitlines()[0], STAGES, run, argv)


if __name__ == "__main__":
    sys.exit(main())
