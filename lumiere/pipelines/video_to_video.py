"""Video-to-video (SDEdit) on the text-to-video U-Net: the input clip is noised part-way
along the schedule and denoised from there under the prompt, so that its layout and
motion survive as much as ``strength`` lets them.

``strength`` has diffusers' (AnimateDiff video-to-video's) meaning: of
``num_inference_steps``, the last ``int(num_inference_steps * strength)`` run. At 1 the
start is pure noise from the generator, exactly text-to-video; at 0 nothing runs and the
input comes back (through the VAE in a latent model).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import torch

from ..validation import check_finite, check_multiple
from .base import LumiereBasePipeline, LumierePipelineOutput, first_generator, merge_options
from .inputs import video_pixels

__all__ = ["LumiereVideoToVideoPipeline"]


class LumiereVideoToVideoPipeline(LumiereBasePipeline):
    r"""Edit a video with a prompt (SDEdit). Components as [`LumierePipeline`], whose
    models it shares through ``from_pipe``."""

    @torch.no_grad()
    def __call__(
        self, video: Any, prompt: str | list[str] | None = None, strength: float = 0.8, **options: Any
    ) -> LumierePipelineOutput | tuple:
        r"""Re-generate ``video`` under ``prompt``, keeping what ``strength`` spares.

        Args:
            video: the path of a video file, a list of PIL images, an ``(F, H, W, 3)`` array
                or an ``(F, 3, H, W)`` tensor in [0, 1] (rules in
                :mod:`lumiere.pipelines.inputs`); scaled to cover the output size and
                centre-cropped to it. Its frame count is the output's, a multiple of
                ``unet.temporal_factor`` (any, with temporal windows).
            prompt: the text of the edit (or ``prompt_embeds`` in ``options``).
            strength: in [0, 1], how much of the schedule runs (module docstring). Default
                0.8, diffusers' default for video-to-video.
            options: [`LumierePipeline`]'s sampling arguments by name (``height``,
                ``width``, ``num_inference_steps``, ``guidance_scale``, ``generator``,
                ``output_type``, ...); ``latents`` is the noise added to the encoded video,
                ``(B, C, F, h, w)``; ``decode_chunk_size`` frames go through the VAE at a
                time, encoding too.

        Returns:
            [`LumierePipelineOutput`] or ``(frames,)``.
        """
        o = merge_options(self, options)
        check_finite("strength", strength)
        if not 0 <= strength <= 1:
            raise ValueError(f"strength={strength} is invalid; it must be in [0, 1] (0 keeps the video, 1 ignores it)")
        size = self.default_size(o["height"], o["width"])
        pixels, _ = video_pixels(video, size)
        num_frames = pixels.shape[1]
        if o["window_size"] is None:  # with windows, the windows must suit the U-Net instead
            check_multiple("len(video)", num_frames, self.unet.temporal_factor)
        prepared = self.prepare(prompt, num_frames, *size, o, strength)
        steps = len(prepared.timesteps) // self.scheduler.order
        if steps == 0 and strength > 0:
            warnings.warn(
                f"strength={strength} runs int({o['num_inference_steps']} * {strength}) = 0 steps: the video comes "
                "back unchanged; raise strength or num_inference_steps",
                stacklevel=2,
            )
        if steps < o["num_inference_steps"]:
            batch = prepared.latents.shape[0]
            generator = first_generator(o["generator"])
            clip = pixels[None].expand(batch, *pixels.shape)
            encoded = self.encode_video(clip, generator, o["decode_chunk_size"]).to(prepared.latents.dtype)
            noise = prepared.latents / self.scheduler.init_noise_sigma
            start = self.scheduler.add_noise(encoded, noise, prepared.timesteps[:1]) if steps else encoded
            prepared = replace(prepared, latents=start)
        guidance = self.guidance(prepared.prompt_embeds, prepared.negative_prompt_embeds, o["cross_attention_kwargs"])
        return self.finish(guidance, prepared, o)
