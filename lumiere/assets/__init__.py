"""Models shipped inside the package (no download): ``shapes-tiny``, the embedded default,
``shapes-tiny-edit``, its conditional sibling (built by ``lumiere.recipes.shapes_tiny_edit``),
and the styles of :data:`STYLE_DIRS` (``lumiere.recipes.shapes_style``)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "shapes-tiny"
EDIT_MODEL_DIR = Path(__file__).resolve().parent / "shapes-tiny-edit"
# Styles for lumiere.stylize, by the name `--style` takes: LoRAs of shapes-tiny's 2D U-Net.
STYLE_DIRS = {"outline": Path(__file__).resolve().parent / "styles" / "outline"}


def default_model_dir(edit: bool = False) -> Path:
    """The folder of the shipped default ``LumierePipeline`` (with ``edit``, of the
    conditional ``shapes-tiny-edit``)."""
    folder, build = (EDIT_MODEL_DIR, "python -m lumiere.recipes.shapes_tiny_edit") if edit else (
        DEFAULT_MODEL_DIR, "make train-default")  # fmt: skip
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"the default model is not in {str(folder)!r}; pass --model, or build it with {build}")
    return folder
