"""Loading saved pipeline folders with an error that says what is wrong with the folder.

diffusers' loaders fail deep inside on a broken folder (a KeyError on an empty
``model_index.json``, a safetensors header error, a text-to-image folder loaded as a video
pipeline half-working). These checks run first, and whatever the loader still raises on a
local folder comes back as one ValueError naming the folder and the first line of the cause.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from safetensors import SafetensorError

INDEX_FILE = "model_index.json"
_VIDEO_UNET = "SpaceTimeUNet"

T = TypeVar("T")


def read_model_index(path: str | os.PathLike, argument: str = "pretrained_model_name_or_path") -> dict[str, Any]:
    """The parsed ``model_index.json`` of a local pipeline folder; ValueError (naming
    ``argument``) when the folder is missing, empty, or its index is absent or not a JSON
    object."""
    folder = Path(path)
    if not folder.is_dir():
        what = "a file" if folder.exists() else "not found"
        raise ValueError(f"{argument}={str(path)!r} is {what}; give a saved pipeline folder")
    if not any(folder.iterdir()):
        raise ValueError(f"{argument}={str(path)!r} is an empty folder, not a saved pipeline")
    index = folder / INDEX_FILE
    if not index.is_file():
        raise ValueError(f"{argument}={str(path)!r} is not a saved diffusers pipeline (it has no {INDEX_FILE})")
    try:
        content = json.loads(index.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(index)!r} is not valid JSON ({error}); the folder is damaged") from None
    if not isinstance(content, dict) or not isinstance(content.get("_class_name"), str):
        raise ValueError(f"{str(index)!r} must be a JSON object with a '_class_name'; the folder is damaged")
    return content


def is_video_pipeline(index: dict[str, Any]) -> bool:
    """Whether a model index describes a Lumiere pipeline (its U-Net is a SpaceTimeUNet)."""
    unet = index.get("unet")
    return isinstance(unet, list) and len(unet) == 2 and unet[1] == _VIDEO_UNET


def check_video_pipeline(path: str | os.PathLike, argument: str = "pretrained_model_name_or_path") -> None:
    """ValueError unless ``path`` is a saved Lumiere pipeline folder; a text-to-image folder
    gets the command that inflates it."""
    index = read_model_index(path, argument)
    if is_video_pipeline(index):
        return
    unet = index.get("unet")
    if isinstance(unet, list) and len(unet) == 2 and unet[1] == "UNet2DConditionModel":
        raise ValueError(
            f"{argument}={str(path)!r} is a text-to-image pipeline ({index['_class_name']}); inflate it first: "
            f"lumiere inflate {path} OUT_DIR (or LumierePipeline.from_text_to_image)"
        )
    raise ValueError(
        f"{argument}={str(path)!r} holds a {index['_class_name']}, not a Lumiere pipeline (no SpaceTimeUNet unet)"
    )


def load_local(path: str | os.PathLike, loader: Callable[[], T]) -> T:
    """``loader()``, with the errors a damaged local folder causes (truncated or missing
    weights, bad configs) turned into one ValueError that names the folder."""
    try:
        return loader()
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError, json.JSONDecodeError) as error:
        lines = str(error).strip().splitlines()
        cause = lines[0][:300] if lines else type(error).__name__
        raise ValueError(f"could not load the pipeline in {str(path)!r}: {type(error).__name__}: {cause}") from error
