"""What the conditional pipelines (image-to-video, inpainting, cinemagraphs) share: their
inputs turned into a clip and a known-pixel mask, and one guided run of a conditional
[`SpaceTimeUNet`] on ``<J, C, M>`` (:mod:`lumiere.conditioning`).

Each pipeline is a short file that turns its own inputs into ``(video, known)`` and calls
[`LumiereConditionalPipeline.generate`]; everything else is the shared core.

Input rules, the same in every pipeline:

* images: a PIL image, an ``(H, W, 3)`` array (uint8, or floats in [0, 1]) or a ``(3, H,
  W)`` tensor in [0, 1]; videos: a list of PIL images, an ``(F, H, W, 3)`` array or an
  ``(F, 3, H, W)`` tensor, values as for images;
* masks: a PIL image (converted to grey), an ``(H, W)`` or ``(F, H, W)`` array or tensor in
  [0, 1] (uint8 0-255 and bool too), of the image's or video's own size; **white / 1 marks
  what to regenerate** (diffusers' rule), black / 0 what to keep;
* everything is scaled (bilinear, antialiased) until it covers the output size, then
  centre-cropped to it, masks alike; masks are then binarized at 0.5 unless
  ``binarize_mask=False``, which keeps soft values (a known-ness weight per pixel).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import PIL.Image
import torch

from ..conditioning import conditioning_input, downsample_mask
from ..data.video_folder import resize_crop
from ..validation import check_finite
from ..video import to_uint8_frames
from .base import SAMPLING_OPTIONS, LumiereBasePipeline, LumierePipelineOutput

# The shared arguments of the conditional pipelines, as LumierePipeline names them, and
# their defaults; each pipeline's __call__ takes them by name.
OPTIONS: dict[str, Any] = {
    **SAMPLING_OPTIONS,
    "conditioning_guidance": False,
    "conditioning_noise": 0.0,
    "paste_known": True,
    "binarize_mask": True,
}


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


class LumiereConditionalPipeline(LumiereBasePipeline):
    r"""The shared part of the conditional pipelines (not one to call on its own): a
    [`LumiereBasePipeline`] whose U-Net has a conditioning input (``conditioning_channels >
    0``, e.g. the shipped ``shapes-tiny-edit``, or any U-Net given one by
    ``SpaceTimeUNet.with_conditioning`` and trained with ``lumiere train --conditioning``).

    Options every conditional pipeline takes besides [`LumierePipeline`]'s:

    * ``conditioning_guidance`` (default False): classifier-free guidance on the text
      only, both branches seeing the same C and M (as diffusers' inpainting); True also
      guides on the conditioning, the unconditional branch knowing nothing (as SVD does
      for its image).
    * ``conditioning_noise`` (default 0): standard deviation of Gaussian noise added to the
      known pixels (in the model's space) before the U-Net sees them, conditioning
      augmentation for inputs unlike the training clips.
    * ``paste_known`` (default True): the known pixels of the input are returned as given
      (blended by a soft mask's weights) after decoding; False returns the model's output.
      Not applied to ``output_type="latent"``.
    * ``binarize_mask`` (default True): masks are thresholded at 0.5; False keeps them soft.
    """

    def check_conditional_unet(self) -> None:
        if not self.unet.config.conditioning_channels:
            raise ValueError(
                f"{type(self).__name__} needs a U-Net with a conditioning input, and this one has "
                "conditioning_channels=0 (a text-to-video model). Use the shipped lumiere/assets/shapes-tiny-edit, "
                "or make one: `lumiere train --conditioning` (SpaceTimeUNet.with_conditioning adds the input)"
            )
        expected = self.num_channels_latents + 1
        if self.unet.config.conditioning_channels != expected:
            raise ValueError(
                f"the U-Net has conditioning_channels={self.unet.config.conditioning_channels}; these pipelines "
                f"give it a masked clip and its mask, {expected} channels"
            )

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` merged over :data:`OPTIONS`; a TypeError names unknown ones."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected arguments {unknown}; it takes {sorted(OPTIONS)}")
        merged = {**OPTIONS, **options}
        check_finite("conditioning_noise", merged["conditioning_noise"], low=0.0)
        for name in ("conditioning_guidance", "paste_known", "binarize_mask"):
            if not isinstance(merged[name], bool):
                raise ValueError(f"{name} must be a bool; got {merged[name]!r}")
        return merged

    def image_pixels(
        self, image: Any, size: tuple[int, int], name: str = "image"
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """An image as ``(3, H, W)`` in [-1, 1] at ``size``, and its source size."""
        frames = _as_frames(image, name, single=True)
        return resize_crop(frames, size)[0], frames.shape[1:3]

    def video_pixels(
        self, video: Any, size: tuple[int, int], name: str = "video"
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """A video as ``(3, F, H, W)`` in [-1, 1] at ``size``, and its source size."""
        frames = _as_frames(video, name, single=False)
        return resize_crop(frames, size).permute(1, 0, 2, 3), frames.shape[1:3]

    def mask_pixels(
        self, mask: Any, source_size: tuple[int, int], size: tuple[int, int], num_frames: int, binarize: bool
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

    def generate(
        self,
        prompt: str | list[str] | None,
        num_frames: int,
        size: tuple[int, int],
        inputs: Callable[[], tuple[torch.Tensor, torch.Tensor]],
        options: dict[str, Any],
    ) -> LumierePipelineOutput | tuple:
        """Sample ``num_frames`` at ``size`` ``(H, W)`` conditioned on ``inputs() -> (video,
        known)``: the clip ``(3, F, H, W)`` in [-1, 1] and its mask, 1 = known, broadcastable
        to ``(F, H, W)``. ``inputs`` runs after the up-front checks, so a clip that cannot fit
        is refused before it is built. ``options`` as :data:`OPTIONS` (see [`check_options`])."""
        o = options
        self.check_conditional_unet()
        prepared = self.prepare(prompt, num_frames, *size, o)
        video, known = inputs()
        batch, device, dtype = prepared.latents.shape[0], self._execution_device, self.unet.dtype
        pixels = video[None].to(device=device, dtype=dtype).expand(batch, 3, num_frames, *size)
        known = known[None, None].to(device=device, dtype=dtype).expand(batch, 1, num_frames, *size)
        generator = o["generator"][0] if isinstance(o["generator"], list) else o["generator"]
        # As in training: the whole clip encoded, then masked where the latents are known.
        encoded = self.encode_video(pixels, generator)
        known_latents = downsample_mask(known, encoded.shape[-2:])
        concat = conditioning_input(encoded, known_latents, o["conditioning_noise"], generator)
        guidance = self.guidance(
            prepared.prompt_embeds, prepared.negative_prompt_embeds, o["cross_attention_kwargs"], concat,
            torch.zeros_like(concat) if o["conditioning_guidance"] else None,
        )  # fmt: skip
        # Pasted in float32 (the decoded video's dtype), so known pixels return exactly as given.
        paste = (video[None].float().expand_as(pixels), known.float()) if o["paste_known"] else None
        return self.finish(guidance, prepared, o, paste)

    @staticmethod
    def check_coverage(regenerate: torch.Tensor, everything: str) -> None:
        """A mask ``regenerate`` (1 = regenerate) that marks nothing is refused, there being
        nothing to do; one that marks everything is allowed with a warning that it amounts
        to ``everything``."""
        if not bool((regenerate > 0).any()):
            raise ValueError("mask marks nothing to regenerate (all black / 0); white / 1 marks what to regenerate")
        if bool((regenerate >= 1).all()):
            warnings.warn(f"mask marks everything to regenerate (all white / 1): {everything}", stacklevel=3)
