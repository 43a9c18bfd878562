"""Cinemagraphs: an image that moves only inside a region, on a conditional U-Net.

The conditioning is the image on every frame (C) known on all of frame 0 and outside the
region on later frames (M), the cinemagraph case of Lumiere's one ``<J, C, M>`` mechanism
(:mod:`lumiere.pipelines.conditional`).
"""

from __future__ import annotations

from typing import Any

import torch

from ..conditioning import first_frame_known
from ..validation import check_int
from .base import LumierePipelineOutput
from .conditional import LumiereConditionalPipeline
from .inputs import image_pixels, mask_pixels

__all__ = ["LumiereCinemagraphPipeline"]


class LumiereCinemagraphPipeline(LumiereConditionalPipeline):
    r"""Animate the masked region of an image, the rest still. Components as
    [`LumierePipeline`]; the U-Net needs a conditioning input (``shapes-tiny-edit``)."""

    # Measured on shapes-tiny-edit: guiding on the conditioning too makes the prompted motion
    # more often (93.8% against 87.5%, unseen).
    DEFAULTS = {"conditioning_guidance": True}

    @torch.no_grad()
    def __call__(
        self, image: Any, mask: Any, prompt: str | list[str] | None = None, num_frames: int = 16, **options: Any
    ) -> LumierePipelineOutput | tuple:
        r"""Generate ``num_frames`` of ``image`` moving where ``mask`` is white / 1.

        Args:
            image: as [`LumiereImageToVideoPipeline`]; frame 0 of the output.
            mask: the region to animate, ``(H, W)`` (a PIL image, array or tensor) of the
                image's size, white / 1 = animate; binarized as [`LumiereInpaintPipeline`]'s.
                A mask that marks nothing is a ValueError; one that marks everything warns
                (that is image-to-video).
            prompt: the text (or ``prompt_embeds`` in ``options``), e.g. the motion.
            num_frames: clip length.
            options: as [`LumiereImageToVideoPipeline`] (``conditioning_guidance`` True by
                default here too), and ``binarize_mask``.

        Returns:
            [`LumierePipelineOutput`] or ``(frames,)``.
        """
        o = self.check_options(options)
        size = self.default_size(o["height"], o["width"])
        check_int("num_frames", num_frames, 1)
        pixels, source = image_pixels(image, size)
        region = mask_pixels(mask, source, size, 1, o["binarize_mask"])
        self.check_coverage(region, "the whole image moves, this is image-to-video")

        def inputs() -> tuple[torch.Tensor, torch.Tensor]:
            known = torch.maximum(first_frame_known(num_frames), 1 - region)
            return pixels[:, None].expand(-1, num_frames, -1, -1), known

        return self.generate(prompt, num_frames, size, inputs, o)
