"""What the conditional pipelines (image-to-video, inpainting, cinemagraphs) share: their
inputs turned into a clip and a known-pixel mask, and one guided run of a conditional
[`SpaceTimeUNet`] on ``<J, C, M>`` (:mod:`lumiere.conditioning`).

Each pipeline is a short file that turns its own inputs into ``(video, known)`` and calls
[`LumiereConditionalPipeline.generate`]; everything else is the shared core.

Their inputs follow the rules of :mod:`lumiere.pipelines.inputs`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from ..conditioning import conditioning_input, downsample_mask
from ..validation import check_finite
from .base import SAMPLING_OPTIONS, LumiereBasePipeline, LumierePipelineOutput, first_generator, merge_options

# The shared arguments of the conditional pipelines, as LumierePipeline names them, and
# their defaults; each pipeline's __call__ takes them by name.
OPTIONS: dict[str, Any] = {
    **SAMPLING_OPTIONS,
    "conditioning_guidance": False,
    "conditioning_noise": 0.0,
    "paste_known": True,
    "binarize_mask": True,
}


class LumiereConditionalPipeline(LumiereBasePipeline):
    r"""The shared part of the conditional pipelines (not one to call on its own): a
    [`LumiereBasePipeline`] whose U-Net has a conditioning input (``conditioning_channels >
    0``, e.g. the shipped ``shapes-tiny-edit``, or any U-Net given one by
    ``SpaceTimeUNet.with_conditioning`` and trained with ``lumiere train --conditioning``).

    Options every conditional pipeline takes besides [`LumierePipeline`]'s:

    * ``conditioning_guidance`` (default: the pipeline's ``DEFAULTS``, else False):
      False guides on the text only, both branches seeing the same C and M (as diffusers'
      inpainting); True also guides on the conditioning, the unconditional branch knowing
      nothing (as SVD does for its image). Each pipeline's default is what measured best
      for it on shapes-tiny-edit (docs/editing.md): True for cinemagraphs, False for
      image-to-video and inpainting.
    * ``conditioning_noise`` (default 0): standard deviation of Gaussian noise added to the
      known pixels (in the model's space) before the U-Net sees them, conditioning
      augmentation for inputs unlike the training clips.
    * ``paste_known`` (default True): the known pixels of the input are returned as given
      (blended by a soft mask's weights) after decoding; False returns the model's output.
      Not applied to ``output_type="latent"``.
    * ``binarize_mask`` (default True): masks are thresholded at 0.5; False keeps them soft.
    """

    # This pipeline's defaults where they differ from OPTIONS'.
    DEFAULTS: dict[str, Any] = {}

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
        """``options`` merged over ``DEFAULTS`` and :data:`OPTIONS`; a TypeError names
        unknown ones."""
        merged = merge_options(self, {**self.DEFAULTS, **options}, OPTIONS)
        check_finite("conditioning_noise", merged["conditioning_noise"], low=0.0)
        for name in ("conditioning_guidance", "paste_known", "binarize_mask"):
            if not isinstance(merged[name], bool):
                raise ValueError(f"{name} must be a bool; got {merged[name]!r}")
        return merged

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
        generator = first_generator(o["generator"])
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
