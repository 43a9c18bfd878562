"""Models shipped inside the package (no download): ``shapes-tiny``, the embedded default."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "shapes-tiny"


def default_model_dir() -> Path:
    """The folder of the shipped default ``LumierePipeline``."""
    if not (DEFAULT_MODEL_DIR / "model_index.json").is_file():
        raise ValueError(
            f"the default model is not in {str(DEFAULT_MODEL_DIR)!r}; pass --model, or build it with make train-default"
        )
    return DEFAULT_MODEL_DIR
