"""Models shipped inside the package (no download): ``shapes-tiny``, the embedded default,
and ``shapes-tiny-edit``, its conditional sibling (built by ``lumiere.recipes.shapes_tiny_edit``)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "shapes-tiny"
EDIT_MODEL_DIR = Path(__file__).resolve().parent / "shapes-tiny-edit"


def default_model_dir() -> Path:
    """The folder of the shipped default ``LumierePipeline``."""
    if not (DEFAULT_MODEL_DIR / "model_index.json").is_file():
        raise ValueError(
            f"the default model is not in {str(DEFAULT_MODEL_DIR)!r}; pass --model, or build it with make train-default"
        )
    return DEFAULT_MODEL_DIR
