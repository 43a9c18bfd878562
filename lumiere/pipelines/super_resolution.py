"""Spatial super-resolution (SSR) of a clip with an inflated text-to-image SR U-Net: the
low-resolution clip, noised to ``noise_level`` (conditioning augmentation) and upsampled,
is concatenated to the noisy high-resolution clip at every step (:mod:`lumiere.super_resolution`).

A residual model (``super_resolution_residual``) samples the clip minus the input
upsampled, which is added back at the end.

Long clips go through temporal windows averaged at every step (MultiDiffusion, the
``window_size`` option of every pipeline, :mod:`lumiere.pipelines.windows`), which is how
Lumiere's SSR covers a clip it cannot hold at full resolution.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from diffusers import DDPMScheduler
from diffusers.schedulers import KarrasDiffusionSchedulers, SchedulerMixin
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..models.space_time_unet import SpaceTimeUNet
from ..super_resolution import NUM_LEVELS, conditioning, residual_base
from ..validation import check_int, check_multiple
from .base import LumiereBasePipeline, LumierePipelineOutput, first_generator, merge_options
from .inputs import video_pixels

__all__ = ["DEFAULT_NOISE_LEVEL", "LumiereSuperResolutionPipeline"]

# The augmentation level the input is noised to by default; see the model card of the
# shipped SSR model for how the output changes with it.
DEFAULT_NOISE_LEVEL = 50


class LumiereSuperResolutionPipeline(LumiereBasePipeline):
    r"""Upscale a clip ``super_resolution_scale`` times with a [`SpaceTimeUNet`] SSR model
    (its 2D U-Net reads ``2 * C`` channels, the noisy clip and the upsampled input, and the
    noise level as ``class_labels``: ``class_embed_type="timestep"``, as IF stage II).

    Components and config as [`LumiereBasePipeline`], and:
        super_resolution_scale (`int`, defaults to 2): output size over input size, per side.
        super_resolution_residual (`bool`, defaults to False): whether the U-Net samples the
            clip minus the input upsampled bicubically (trained with the option of that name),
            the upsample added back after sampling.
    """

    def __init__(
        self,
        unet: SpaceTimeUNet,
        scheduler: KarrasDiffusionSchedulers | SchedulerMixin,
        text_encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        vae: None = None,
        noise_frame_correlation: float = 0.0,
        super_resolution_scale: int = 2,
        super_resolution_residual: bool = False,
    ):
        check_int("super_resolution_scale", super_resolution_scale, 1)
        if not isinstance(super_resolution_residual, bool):
            raise ValueError(f"super_resolution_residual must be a bool; got {super_resolution_residual!r}")
        if vae is not None:
            raise ValueError("LumiereSuperResolutionPipeline works in pixel space; vae must be None")
        config = unet.config.unet2d_config
        if config["in_channels"] != 2 * config["out_channels"] or config.get("class_embed_type") != "timestep":
            raise ValueError(
                f"unet is not a super-resolution U-Net: it reads in_channels={config['in_channels']} with "
                f"out_channels={config['out_channels']} and class_embed_type={config.get('class_embed_type')!r}; "
                "one reads twice its output's channels (the noisy clip and the upsampled input) and "
                "class_embed_type='timestep' (the noise level): train one with lumiere train --super-resolution-scale"
            )  # fmt: skip
        super().__init__(unet, scheduler, text_encoder, tokenizer, vae, noise_frame_correlation)
        self.register_to_config(
            super_resolution_scale=super_resolution_scale, super_resolution_residual=super_resolution_residual
        )

    @property
    def num_channels_latents(self) -> int:
        return self.unet.config.unet2d_config["in_channels"] // 2

    @torch.no_grad()
    def __call__(
        self,
        video: Any,
        prompt: str | list[str] | None = None,
        noise_level: int = DEFAULT_NOISE_LEVEL,
        **options: Any,
    ) -> LumierePipelineOutput | tuple:
        r"""Upscale ``video`` under ``prompt``.

        Args:
            video: the low-resolution clip, as every pipeline takes one (a path, PIL images,
                an ``(F, H, W, 3)`` array or an ``(F, 3, H, W)`` tensor in [0, 1]; rules in
                :mod:`lumiere.pipelines.inputs`); scaled to cover the output size divided
                by ``super_resolution_scale`` and centre-cropped to it. Its frame count is
                the output's.
            prompt: what the clip shows (or ``prompt_embeds`` in ``options``).
            noise_level: the conditioning augmentation, in ``[0, 1000)``: the input is noised
                to this level of the noise schedule before the U-Net reads it. Higher hides
                more of the input's defects (and detail). Default :data:`DEFAULT_NOISE_LEVEL`.
            options: [`LumierePipeline`]'s sampling arguments by name (``height``, ``width``
                of the output, default the U-Net's ``sample_size``; ``num_inference_steps``,
                ``guidance_scale``, ``generator``, ``output_type``, the ``window_*`` options
                for long clips, ...).

        Returns:
            [`LumierePipelineOutput`] or ``(frames,)``: the clip at the output size.
        """
        o = merge_options(self, options)
        check_int("noise_level", noise_level, 0, NUM_LEVELS - 1)
        scale = self.config.super_resolution_scale
        height, width = self.default_size(o["height"], o["width"])
        check_multiple("height", height, scale * self.unet.spatial_factor)
        check_multiple("width", width, scale * self.unet.spatial_factor)
        low, _ = video_pixels(video, (height // scale, width // scale))
        prepared = self.prepare(prompt, low.shape[1], height, width, o)
        batch, device, dtype = prepared.latents.shape[0], self._execution_device, self.unet.dtype
        low = low[None].to(device=device, dtype=dtype).expand(batch, *low.shape)
        level = torch.full((batch,), noise_level, device=device)
        generator = first_generator(o["generator"])
        # The training noise schedule's forward process (the sampler may be any scheduler).
        concat = conditioning(low, (height, width), level, DDPMScheduler.from_config(self.scheduler.config), generator)
        guidance = self.guidance(
            prepared.prompt_embeds, prepared.negative_prompt_embeds, o["cross_attention_kwargs"], concat,
            model_kwargs={"class_labels": level},
        )  # fmt: skip
        base = partial(residual_base, low, (height, width)) if self.config.super_resolution_residual else None
        return self.finish(guidance, prepared, o, base=base)
