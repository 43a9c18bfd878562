"""Stylized generation as Lumiere does it: the spatial (text-to-image) weights interpolated
towards a style-fine-tuned copy, ``W = a * W_style + (1 - a) * W_orig`` (``a`` is
``style_scale``), while the
temporal layers stay as trained, so the learned motion survives (swapping in the style
weights whole, ``a = 1``, is what the paper says distorts it).

A style is any of:

* the name of a shipped style, a key of :data:`lumiere.assets.STYLE_DIRS` (``"outline"``);
* a fine-tuned ``UNet2DConditionModel``, or its folder (a diffusers model folder, or a
  pipeline folder with ``unet/``), or its state dict (a dict, or a ``.safetensors`` /
  ``.bin`` file) with the 2D names;
* a diffusers LoRA of that U-Net (a ``.safetensors`` file of ``lora_A`` / ``lora_B`` or
  ``lora.down`` / ``lora.up`` weights, a folder holding ``pytorch_lora_weights.safetensors``
  as ``lumiere train --lora-rank`` writes it, or such a state dict, whose alpha is then taken
  to be its rank); interpolating towards ``W + dW`` is the LoRA merged at scale ``a``.

[`stylize`] changes the U-Net's weights in place and returns a [`Stylization`] that puts
them back exactly (``restore()``, or leaving its ``with`` block); ``save_pretrained`` of a
stylized pipeline writes the interpolated weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline, UNet2DConditionModel

from .assets import STYLE_DIRS
from .models.space_time_unet import ADDED_PREFIXES, SpaceTimeUNet
from .validation import check_finite

__all__ = ["Stylization", "stylize", "style_weights"]

LORA_FILE = "pytorch_lora_weights.safetensors"
_LORA_MARKERS = ("lora_A", "lora_B", "lora.down", "lora.up", "lora_down", "lora_up", "lora_linear_layer")


def _load_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_style(style: Any) -> UNet2DConditionModel | dict[str, torch.Tensor] | Path:
    """A style as a 2D U-Net, a state dict (full or LoRA), or the path of a LoRA file
    (read by diffusers, which takes its alpha from the file's metadata)."""
    if isinstance(style, (UNet2DConditionModel, dict)):
        return style
    if not isinstance(style, (str, os.PathLike)):
        raise ValueError(
            f"style must be a UNet2DConditionModel, a state dict, or the path of a model folder, a weights file or "
            f"a LoRA; got {type(style).__name__}"
        )
    path = Path(style)
    if isinstance(style, str) and style in STYLE_DIRS and not path.exists():
        path = STYLE_DIRS[style]
    if path.is_dir() and (path / LORA_FILE).is_file():
        return path / LORA_FILE
    if path.is_file():
        try:
            weights = _load_file(path)
        except Exception as error:  # a damaged or foreign file: say which
            raise ValueError(f"style={str(path)!r} cannot be read as weights: {error}") from None
        return path if _is_lora(weights) and path.suffix == ".safetensors" else weights
    if not path.is_dir():
        raise ValueError(f"style={str(path)!r} does not exist")
    for folder in (path, path / "unet"):
        if (folder / "config.json").is_file():
            try:
                return UNet2DConditionModel.from_pretrained(folder)
            except Exception as error:  # a damaged or foreign folder: one clear error, not a traceback
                raise ValueError(f"style={str(path)!r} cannot be loaded as a UNet2DConditionModel: {error}") from None
    raise ValueError(f"style={str(path)!r} holds no U-Net (config.json, unet/config.json) and no LoRA ({LORA_FILE})")


def _read_lora(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """A LoRA file's weights and its adapter config (rank, alpha, targets), which
    ``save_lora_adapter`` writes into the safetensors metadata."""
    from safetensors import safe_open

    with safe_open(path, "pt") as file:
        metadata = file.metadata() or {}
    config = metadata.get("lora_adapter_metadata")
    return _load_file(path), json.loads(config) if config else None


def _is_lora(state_dict: dict[str, torch.Tensor]) -> bool:
    return any(marker in key for key in state_dict for marker in _LORA_MARKERS)


def style_weights(unet: SpaceTimeUNet, style: Any) -> dict[str, torch.Tensor]:
    """The style's spatial weights that differ from ``unet``'s, by 2D name, float32 on the
    CPU: ``W_style`` of a full model, ``W + dW`` of a LoRA. A ValueError when the style does
    not fit the U-Net's spatial layers (names or shapes)."""
    style = _read_style(style)
    own = {name: p for name, p in unet.named_parameters() if not name.startswith(ADDED_PREFIXES)}
    if isinstance(style, Path) or (isinstance(style, dict) and _is_lora(style)):
        lora, metadata = (style, None) if isinstance(style, dict) else _read_lora(style)
        copy = unet.to_unet2d().float()
        prefix = "unet" if any(key.startswith("unet.") for key in lora) else None
        try:
            copy.load_lora_adapter(lora, prefix=prefix, metadata=metadata)
        except Exception as error:
            raise ValueError(f"style is a LoRA that does not fit this U-Net's spatial layers: {error}") from None
        copy.fuse_lora(lora_scale=1.0)
        copy.unload_lora()
        style = copy
    weights = style.state_dict() if isinstance(style, UNet2DConditionModel) else style
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise ValueError(f"style has weights the U-Net's spatial layers lack: {unknown[:5]}")
    changed = {}
    for name, value in weights.items():
        if value.shape != own[name].shape:
            raise ValueError(f"style weight {name} is {tuple(value.shape)}; the U-Net's is {tuple(own[name].shape)}")
        value = value.detach().to("cpu", torch.float32)
        if not torch.equal(value, own[name].detach().to("cpu", torch.float32)):
            changed[name] = value
    return changed


class Stylization:
    """The record of one [`stylize`]: the original values of the weights it changed.
    ``restore()`` (or the end of a ``with`` block) puts them back, bit for bit."""

    def __init__(self, unet: SpaceTimeUNet, originals: dict[str, torch.Tensor], style_scale: float):
        self.unet, self.originals, self.style_scale = unet, originals, style_scale
        self.restored = False

    def restore(self) -> None:
        if self.restored:
            return
        parameters = dict(self.unet.named_parameters())
        with torch.no_grad():
            for name, value in self.originals.items():
                parameters[name].copy_(value)
        self.restored = True

    def __enter__(self) -> Stylization:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


def stylize(model: DiffusionPipeline | SpaceTimeUNet, style: Any, style_scale: float = 0.5) -> Stylization:
    """Interpolate the spatial weights of ``model`` (a Lumiere pipeline or its U-Net)
    towards ``style`` (module docstring): ``W = s * W_style + (1 - s) * W`` with ``s =
    style_scale``, in
    place, in the U-Net's dtype; temporal and conditioning weights are left alone.

    Args:
        model: a pipeline with a [`SpaceTimeUNet`] ``unet``, or the U-Net.
        style: the style (a 2D U-Net, its folder or state dict, or a LoRA).
        style_scale: in [0, 1]; 0 changes nothing, 1 puts the style weights in whole.

    Returns:
        a [`Stylization`] whose ``restore()`` undoes it; usable as a context manager.
    """
    unet = getattr(model, "unet", model)
    if not isinstance(unet, SpaceTimeUNet):
        raise ValueError(f"model must be a Lumiere pipeline or a SpaceTimeUNet; got {type(model).__name__}")
    check_finite("style_scale", style_scale)
    if not 0 <= style_scale <= 1:
        raise ValueError(
            f"style_scale={style_scale} is invalid; it must be in [0, 1] (0: the model as it is, 1: the style)"
        )
    targets = style_weights(unet, style)
    parameters = dict(unet.named_parameters())
    originals = {}
    with torch.no_grad():
        for name, value in targets.items():
            parameter = parameters[name]
            originals[name] = parameter.detach().clone()
            if style_scale:  # lerp is exact at 1; at 0 nothing is written
                mixed = torch.lerp(parameter.detach().float(), value.to(parameter.device), style_scale)
                parameter.copy_(mixed)
    return Stylization(unet, originals, style_scale)
