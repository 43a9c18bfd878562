"""The checks the pipelines make on what they are given while they run: prompt embeddings,
what a step callback returns, and latents that turned NaN. (Argument checks that need no
pipeline state are in :mod:`lumiere.validation`.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

from ..models.space_time_unet import SpaceTimeUNet

Callback = Callable[[Any, int, torch.Tensor, dict], dict] | PipelineCallback | MultiPipelineCallbacks


def check_embeds(name: str, embeds: torch.Tensor, unet: SpaceTimeUNet) -> None:
    """Raise ValueError unless ``embeds`` is ``(B, L, D)`` with ``D`` the U-Net's text width."""
    width = unet.config.unet2d_config.get("cross_attention_dim")
    width = width[-1] if isinstance(width, (list, tuple)) else width
    if not isinstance(embeds, torch.Tensor) or embeds.ndim != 3 or embeds.shape[-1] != width:
        got = tuple(embeds.shape) if isinstance(embeds, torch.Tensor) else type(embeds).__name__
        raise ValueError(f"{name} must be a tensor (B, L, {width}) (the U-Net's cross_attention_dim); got {got}")


def check_finite_latents(latents: torch.Tensor, step: int, timestep: torch.Tensor, dtype: torch.dtype) -> None:
    """Stop at the step that produced NaN or infinity (the U-Net computing in ``dtype``),
    rather than return NaN frames."""
    if not torch.isfinite(latents).all():
        hint = ""
        if dtype in (torch.float16, torch.bfloat16):
            hint = f"; the U-Net ran in {dtype}: try autocast=False, or load the pipeline in float32"
        raise FloatingPointError(f"the latents became NaN or infinite at step {step} (timestep {int(timestep)}){hint}")


def check_callback_result(callback: Callback, updated: Any, given: dict[str, torch.Tensor | None]) -> None:
    """A step callback must return a dict of the pipeline's tensors, each with the shape and
    dtype of the tensor it replaces."""
    name = getattr(callback, "__qualname__", None) or type(callback).__name__
    if not isinstance(updated, dict):
        raise ValueError(
            f"callback_on_step_end {name} returned {type(updated).__name__}; it must return a dict "
            "(the callback_kwargs it was given, possibly changed)"
        )
    for key, value in updated.items():
        if key not in given or given[key] is None:
            continue  # the tensors a pipeline reads back are the ones it passed
        old = given[key]
        if not isinstance(value, torch.Tensor) or value.shape != old.shape or value.dtype != old.dtype:
            got = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(
                f"callback_on_step_end {name} returned {key} as {got}; it must keep {tuple(old.shape)} {old.dtype}"
            )


def callback_names(callback: Callback | None, names: list[str]) -> list[str]:
    """The tensors a step callback asks for: a diffusers ``PipelineCallback`` names its own."""
    if isinstance(callback, (PipelineCallback, MultiPipelineCallbacks)):
        return callback.tensor_inputs
    return names
