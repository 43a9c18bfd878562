"""The recipe of the shipped styles, LoRAs of shapes-tiny's text-to-image U-Net trained
StyleDrop-like on a few reference stills each, for stylized generation by spatial-weight
interpolation (:mod:`lumiere.stylize`):

* ``outline``: the shapes drawn hollow, a band about :data:`OUTLINE_PX` wide inside their edge;
* ``night``: the shapes as they are, on the plain dark blue ``night`` background instead of black.

    python -m lumiere.recipes.shapes_style [STAGE ...] [--workdir runs/shapes-tiny]

Stages, in order (each skips work already done; each stage does every style):

1. ``t2i``: the text-to-image pipeline whose U-Net is shapes-tiny's spatial layers (they
   stayed frozen through its video training), in the IF layout the trainer takes.
2. ``stills``: the style references, :data:`REFERENCES`: one still of each shape drawn in
   the style (:func:`lumiere.data.shapes.render_clip`), captioned with the style phrase,
   ``"a red circle, in outline style"``.
3. ``style``: ``lumiere train --mode image`` with :data:`LORA` on them; only the LoRA trains.
4. ``export``: each LoRA in fp16 into ``lumiere/assets/styles/NAME`` (its model card stays).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from ..assets import DEFAULT_MODEL_DIR, STYLE_DIRS
from ..data.shapes import ClipSpec, caption, render_clip, sample_specs
from ..files import atomic_dir, update_folder
from ..stylize import LORA_FILE
from ..training import TrainConfig, train
from . import run_stages
from .shapes_tiny import RESOLUTION, make_template

STAGES = ("t2i", "stills", "style", "export")
OUTLINE_PX = 1.5


@dataclass(frozen=True)
class Style:
    """How a style's reference stills are drawn and captioned, and where its run lives
    under the workdir."""

    phrase: str
    stills: str
    run: str
    outline: float | None = None  # hollow shapes, this many pixels wide
    background: str = "black"


STYLES = {
    "outline": Style("in outline style", "style-stills", "style", outline=OUTLINE_PX),
    "night": Style("in night style", "style-night-stills", "style-night", background="night"),
}
# A few seen (colour, shape) pairs, one per shape; every other colour is left to the style
# to generalize to.
REFERENCES = (("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "star"))
STYLE_STEPS = 600
# A hollow shape differs from a filled one at the finest level, where shapes-tiny's U-Net
# has convolutions and no attention: a LoRA on the attention projections alone left every
# clip filled at style_scale 1 (fill ratio 0.90-0.97 on 8 prompts), so the resnets'
# convolutions get one too.
LORA = dict(lora_rank=8, lora_alpha=8.0, lora_target_modules=["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"])


def styled(prompt: str, style: str = "outline") -> str:
    """``prompt`` with ``style``'s phrase, as its references are captioned."""
    return f"{prompt}, {STYLES[style].phrase}"


def render_in_style(spec: ClipSpec, num_frames: int, size: int, style: str | None) -> np.ndarray:
    """``spec`` drawn in ``style`` ``(F, H, W, 3)`` uint8: its outline and background
    (None: as the training clips are drawn)."""
    if style is None:
        return render_clip(spec, num_frames, size)
    recipe = STYLES[style]
    return render_clip(replace(spec, background=recipe.background), num_frames, size, outline=recipe.outline)


def write_references(out: Path, style: str) -> None:
    """``style``'s reference stills and their ``metadata.jsonl``, written whole or not at all."""
    with atomic_dir(out, overwrite=True) as folder, open(folder / "metadata.jsonl", "w", encoding="utf-8") as meta:
        for index, (colour, shape) in enumerate(REFERENCES):
            spec = sample_specs(1, seed=index, include_only=[(colour, shape, "still")])[0]
            image = render_in_style(spec, 1, RESOLUTION, style)[0]
            name = f"{index:05d}.png"
            PIL.Image.fromarray(image).save(folder / name)
            meta.write(json.dumps({"file_name": name, "text": styled(caption(spec, still=True), style)}) + "\n")


def style_config(workdir: Path, style: str = "outline", **overrides) -> TrainConfig:
    recipe = STYLES[style]
    values = dict(
        mode="image", pretrained=str(workdir / "style-t2i"), train_data=str(workdir / recipe.stills),
        output_dir=str(workdir / recipe.run), resolution=RESOLUTION, train_batch_size=4, max_train_steps=STYLE_STEPS,
        **LORA, learning_rate=1e-3, lr_warmup_steps=20, snr_gamma=5.0,
        checkpointing_steps=100, checkpoints_total_limit=2, resume="latest",
        validation_prompts=[styled(p, style) for p in ("a red circle", "a purple square", "a cyan star")],
        validation_steps=STYLE_STEPS, validation_num_inference_steps=25, validation_guidance_scale=3.0,
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def run(stage: str, workdir: Path) -> None:
    if stage == "t2i":
        if not (workdir / "style-t2i" / "model_index.json").is_file():
            from ..pipelines import LumierePipeline

            unet = LumierePipeline.from_pretrained(DEFAULT_MODEL_DIR).unet.to_unet2d()
            make_template(workdir / "style-t2i", unet=unet)
        return
    for name, recipe in STYLES.items():
        if stage == "stills" and not (workdir / recipe.stills / "metadata.jsonl").is_file():
            write_references(workdir / recipe.stills, name)
        elif stage == "style" and not (workdir / recipe.run / LORA_FILE).is_file():
            train(style_config(workdir, name))
        elif stage == "export":
            _export(workdir / recipe.run / LORA_FILE, STYLE_DIRS[name])


def _export(source: Path, folder: Path) -> None:
    from safetensors.torch import load_file, safe_open, save_file

    with safe_open(source, "pt") as file:
        metadata = file.metadata()
    weights = {name: value.to(torch.float16) for name, value in load_file(source).items()}
    update_folder(folder, lambda out: save_file(weights, Path(out) / LORA_FILE, metadata))


def main(argv: Sequence[str] | None = None) -> int:
    return run_stages("shapes-style", __doc__.splitlines()[0], STAGES, run, argv)


if __name__ == "__main__":
    sys.exit(main())
