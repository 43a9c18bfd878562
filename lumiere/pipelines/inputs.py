"""How every pipeline reads its image, video and mask inputs, one rule for all:

* images: a PIL image, an ``(H, W, 3)`` array (uint8, or floats in [0, 1]) or a ``(3, H,
  W)`` tensor in [0, 1]; videos: a path to a video file (read with
  :func:`lumiere.video.read_video`), a list of PIL images, an ``(F, H, W, 3)`` array or an
  ``(F, 3, H, W)`` tensor, values as for images;
* masks: a PIL image (converted to grey), an ``(H, W)`` or ``(F, H, W)`` array or tensor in
  [0, 1] (uint8 0-255 and bool too), of the image's or video's own size; **white / 1 marks
  what to regenerate** (diffusers' rule), black / 0 what to keep;
* everything is scaled (bilinear, antialiased) until it covers the output size, then
  centre-cropped to it, masks alike; masks are then binarized at 0.5 unless
  ``binarize_mask=False``, which keeps soft values (a known-ness weight per pixel).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import PIL.Image
import torch

from ..data.video_folder import resize_crop
from ..video import read_video, to_uint8_frames

__all__ = ["image_pixels", "mask_pixels", "video_pixels"]


def _as_frames(value: Any, name: str, single: bool) -> np.ndarray:
    """An image (``single``) or a video as ``(F, H, W, 3)`` values in [0, 255]: uint8 as
    given, floats kept unrounded (so that pasted-back pixels are exactly the input)."""
    if isinstance(value, PIL.Image.Image):
        value = [value]
    elif isinstance(value, (np.ndarray, torch.Tensor)):
        ndim = 3 if single else 4
        if value.ndim != ndim:
            layouts = "(H, W, 3) array or (3, H, W) tensor" if single else "(F, H, W, 3) array or (F, 3, H, W) tensor"
            raise ValueError(f"{name} must be a {layouts}; got shape {tuple(value.shape)}")
        if torch.is_tensor(value):
            value = value.detach().cpu().permute(*range(value.ndim - 3), -2, -1, -3)  # channels last
            value = value.float().numpy() if value.is_floating_point() else value.numpy()
        value = value[None] if single else value
        if np.issubdtype(value.dtype, np.floating):
            if not np.isfinite(value).all() or value.min() < 0 or value.max() > 1:
                raise ValueError(f"{name} values must be floats in [0, 1] or uint8; got {value.min()}..{value.max()}")
    elif not (isinstance(value, (list, tuple)) and value and all(isinstance(v, PIL.Image.Image) for v in value)):
        kinds = "a PIL image, an array or a tensor" if single else "a list of PIL images, an array or a tensor"
        raise ValueError(f"{name} must be {kinds}; got {type(value).__name__}")
    else:
        value = [image.convert("RGB") for image in value]
    try:
        frames = to_uint8_frames(value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return np.repeat(value, 3 // value.shape[-1], axis=-1).astype(np.float32) * 255
    return frames


def _as_mask(mask: Any) -> np.ndarray:
    """A mask as float ``(F or 1, H, W)`` in [0, 1] (1 = regenerate)."""
    if isinstance(mask, PIL.Image.Image):
        mask = np.asarray(mask.convert("L"))
    if torch.is_tensor(mask):
        mask = mask.detach().cpu().float().numpy() if mask.dtype != torch.bool else mask.cpu().numpy()
    if not isinstance(mask, np.ndarray):
        raise ValueError(f"mask must be a PIL image, an array or a tensor; got {type(mask).__name__}")
    if mask.ndim not in (2, 3) or min(mask.shape) == 0:
        raise ValueError(f"mask must be (H, W) or (F, H, W); got shape {mask.shape}")
    if mask.dtype == np.uint8:
        mask = mask / 255.0
    mask = mask.astype(np.float32)
    if not np.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
        raise ValueError("mask values must be in [0, 1] (or uint8 0-255, or bool)")
    return mask[None] if mask.ndim == 2 else mask


def image_pixels(image: Any, size: tuple[int, int], name: str = "image") -> tuple[torch.Tensor, tuple[int, int]]:
    """An image as ``(3, H, W)`` in [-1, 1] at ``size``, and its source size."""
    frames = _as_frames(image, name, single=True)
    return resize_crop(frames, size)[0], frames.shape[1:3]


def video_pixels(video: Any, size: tuple[int, int], name: str = "video") -> tuple[torch.Tensor, tuple[int, int]]:
    """A video (or the path of a video file) as ``(3, F, H, W)`` in [-1, 1] at ``size``, and
    its source size."""
    if isinstance(video, (str, os.PathLike)):
        video = read_video(video, name)
    frames = _as_frames(video, name, single=False)
    return resize_crop(frames, size).permute(1, 0, 2, 3), frames.shape[1:3]


def mask_pixels(
    mask: Any, source_size: tuple[int, int], size: tuple[int, int], num_frames: int, binarize: bool
) -> torch.Tensor:
    """A regenerate-mask as ``(F_m, H, W)`` in [0, 1] at ``size``, ``F_m`` 1 or
    ``num_frames``; it must have the image's or video's own size ``source_size``."""
    values = _as_mask(mask)
    if tuple(values.shape[1:]) != tuple(source_size):
        raise ValueError(
            f"mask is {values.shape[1]}x{values.shape[2]} (HxW) but the input it masks is "
            f"{source_size[0]}x{source_size[1]}; give a mask of the same size"
        )
    if values.shape[0] not in (1, num_frames):
        raise ValueError(f"mask has {values.shape[0]} frames; give one mask for all frames or {num_frames}")
    grey = np.round(values[..., None] * 255).astype(np.uint8)
    resized = (resize_crop(grey, size)[:, 0] + 1) / 2
    return (resized >= 0.5).float() if binarize else resized.clamp(0, 1)
