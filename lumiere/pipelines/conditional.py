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
from typing import Any

import numpy as np
import PIL.Image
import torch

from ..conditioning import conditioning_input, downsample_mask
from ..data.video_folder import resize_crop
from ..validation import check_finite
from ..video import to_uint8_frames
from .base import LumiereBasePipeline, LumierePipelineOutput
from .sampling import schedule

# The shared arguments of the conditional pipelines, as LumierePipeline names them, and
# their defaults; each pipeline's __call__ takes them by name.
OPTIONS: dict[str, Any] = dict(
    height=None, width=None, num_inference_steps=50, guidance_scale=7.5, negative_prompt=None,
    num_videos_per_prompt=1, eta=0.0, generator=None, latents=None, prompt_embeds=None,
    negative_prompt_embeds=None, output_type="np", return_dict=True, cross_attention_kwargs=None,
    callback_on_step_end=None, callback_on_step_end_tensor_inputs=("latents",), decode_chunk_size=16,
    autocast=False, check_memory=True, conditioning_guidance=False, conditioning_noise=0.0, paste_known=True,
    binarize_mask=True,
)  # fmt: skip


def _as_frames(value: Any, name: str, single: bool) -> np.ndarray:
    """An image (``single``) or a video as uint8 ``(F, H, W, 3)``."""
    if isinstance(value, PIL.Image.Image):
        value = [value]
    elif isinstance(value, (np.ndarray, torch.Tensor)):
        ndim = 3 if single else 4
        if value.ndim != ndim:
            layouts = "(H, W, 3) array or (3, H, W) tensor" if single else "(F, H, W, 3) array or (F, 3, H, W) tensor"
            raise ValueError(f"{name} must be a {layouts}; got shape {tuple(value.shape)}")
        if torch.is_tensor(value):
            value = value.permute(*range(value.ndim - 3), -2, -1, -3)  # channels last
        value = value[None] if single else value
    elif not (isinstance(value, (list, tuple)) and value and all(isinstance(v, PIL.Image.Image) for v in value)):
        kinds = "a PIL image, an array or a tensor" if single else "a list of PIL images, an array or a tensor"
        raise ValueError(f"{name} must be {kinds}; got {type(value).__name__}")
    else:
        value = [image.convert("RGB") for image in value]
    try:
        return to_uint8_frames(value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


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

    def output_size(self, height: int | None, width: int | None) -> tuple[int, int]:
        return self.default_size(height, width)

    def image_pixels(self, image: Any, size: tuple[int, int], name: str = "image") -> torch.Tensor:
        """An image as ``(3, H, W)`` in [-1, 1] at ``size``, and its source size."""
        frames = _as_frames(image, name, single=True)
        return resize_crop(frames, size)[0], frames.shape[1:3]

    def video_pixels(self, video: Any, size: tuple[int, int], name: str = "video") -> torch.Tensor:
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
        self, prompt: str | list[str] | None, video: torch.Tensor, known: torch.Tensor, options: dict[str, Any]
    ) -> LumierePipelineOutput | tuple:
        """Sample with the masked clip ``video`` ``(3, F, H, W)`` in [-1, 1] and its mask
        ``known`` ``(1 or F, H, W)`` (1 = known) as the conditioning; ``options`` as
        :data:`OPTIONS` (merged by [`check_options`])."""
        o = options
        self.check_conditional_unet()
        num_frames, (height, width) = video.shape[1], video.shape[2:]
        self.check_inputs(
            prompt, num_frames, height, width, o["num_inference_steps"], o["negative_prompt"], o["prompt_embeds"],
            o["negative_prompt_embeds"], o["output_type"], o["callback_on_step_end"],
            o["callback_on_step_end_tensor_inputs"], o["guidance_scale"], o["num_videos_per_prompt"], o["eta"],
            o["generator"], o["decode_chunk_size"],
        )  # fmt: skip
        self._guidance_scale, self._interrupt = o["guidance_scale"], False
        device = self._execution_device
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt, device, o["num_videos_per_prompt"], self.do_classifier_free_guidance, o["negative_prompt"],
            o["prompt_embeds"], o["negative_prompt_embeds"],
        )  # fmt: skip
        batch = prompt_embeds.shape[0]
        if o["check_memory"]:
            self.check_memory(batch, num_frames, height, width)
        timesteps = schedule(self.scheduler, o["num_inference_steps"], device)
        latents = self.prepare_latents(
            batch, self.num_channels_latents, num_frames, height, width, self.unet.dtype, device, o["generator"],
            o["latents"],
        )  # fmt: skip

        pixels = video[None].to(device=device, dtype=self.unet.dtype).expand(batch, -1, -1, -1, -1)
        known = known[None, None].to(device=device, dtype=self.unet.dtype).expand(batch, 1, num_frames, -1, -1)
        generator = o["generator"][0] if isinstance(o["generator"], list) else o["generator"]
        encoded = self.encode_video(pixels * known, generator)
        known_latents = downsample_mask(known, encoded.shape[-2:])
        concat = conditioning_input(encoded, known_latents, o["conditioning_noise"], generator)
        uncond_concat = torch.zeros_like(concat) if o["conditioning_guidance"] else None
        guidance = self.guidance(
            prompt_embeds, negative_prompt_embeds, o["cross_attention_kwargs"], concat, uncond_concat
        )
        latents = self.sample(
            guidance, latents, timesteps, o["generator"], o["eta"], o["callback_on_step_end"],
            o["callback_on_step_end_tensor_inputs"], o["autocast"],
        )  # fmt: skip
        paste = (pixels, known) if o["paste_known"] else None
        return self.output(latents, o["output_type"], o["decode_chunk_size"], o["return_dict"], paste)

    @staticmethod
    def warn_or_refuse(known: torch.Tensor, what: str) -> None:
        """A mask that leaves nothing to generate is refused; one that keeps nothing is
        allowed (it is text-to-video) with a warning."""
        if bool((known >= 1).all()):
            raise ValueError(f"mask leaves nothing to generate: {what} (white / 1 marks what to regenerate)")
        if bool((known <= 0).all()):
            warnings.warn(f"mask keeps nothing: {what}; this is text-to-video", stacklevel=3)
