"""Text-to-video with a Space-Time U-Net: the whole clip is denoised in one pass.

Works in pixel space (``vae=None``, like Lumiere and Imagen) or in the latent space of a
Stable-Diffusion-style VAE. The shared machinery is in [`LumiereBasePipeline`] and
:mod:`lumiere.pipelines.sampling`; this file is only what text-to-video adds.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from diffusers import DiffusionPipeline

from ..models.space_time_unet import SpaceTimeUNet
from .base import SAMPLING_OPTIONS, LumiereBasePipeline, LumierePipelineOutput
from .checks import Callback
from .folders import is_video_pipeline, load_local, read_model_index

__all__ = ["LumierePipeline", "LumierePipelineOutput"]


class LumierePipeline(LumiereBasePipeline):
    r"""Text-to-video generation with a [`SpaceTimeUNet`].

    Components and config as [`LumiereBasePipeline`]: ``unet``, ``scheduler``,
    ``text_encoder``, ``tokenizer``, optional ``vae`` (None in pixel space), and
    ``noise_frame_correlation``.
    """

    @classmethod
    def from_text_to_image(
        cls,
        path_or_pipeline: str | os.PathLike | DiffusionPipeline,
        load_weights: bool = True,
        dtype: torch.dtype | None = None,
        **inflation_kwargs: Any,
    ) -> LumierePipeline:
        """Inflate a diffusers text-to-image pipeline (a loaded one, or a local folder in the
        Stable Diffusion layout: ``unet``, ``text_encoder``, ``tokenizer``, ``scheduler`` and
        optionally ``vae``) into a video pipeline. ``inflation_kwargs`` go to
        [`SpaceTimeUNet.from_unet2d`]; ``dtype`` applies when loading from a folder."""
        if isinstance(path_or_pipeline, DiffusionPipeline):
            source = path_or_pipeline
        else:
            if is_video_pipeline(read_model_index(path_or_pipeline, "path_or_pipeline")):
                raise ValueError(
                    f"path_or_pipeline={str(path_or_pipeline)!r} is already a Lumiere pipeline; load it with "
                    "LumierePipeline.from_pretrained"
                )
            source = load_local(
                path_or_pipeline, lambda: DiffusionPipeline.from_pretrained(path_or_pipeline, dtype=dtype)
            )
        components = source.components
        missing = [name for name in ("unet", "text_encoder", "tokenizer", "scheduler") if components.get(name) is None]
        if missing:
            raise ValueError(
                f"the text-to-image pipeline has no {missing}; it needs unet, text_encoder, tokenizer, scheduler"
            )
        unet = SpaceTimeUNet.from_unet2d(components["unet"], load_weights=load_weights, **inflation_kwargs)
        return cls(
            unet=unet,
            scheduler=components["scheduler"],
            text_encoder=components["text_encoder"],
            tokenizer=components["tokenizer"],
            vae=components.get("vae"),
        )

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        num_frames: int = 16,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        num_videos_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callback | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        decode_chunk_size: int = 16,
        autocast: bool = False,
        check_memory: bool = True,
        window_size: int | None = None,
        window_stride: int | None = None,
        window_weighting: str = "flat",
        window_noise: str = "independent",
        window_batch_size: int = 1,
        distribute_windows: bool = False,
    ) -> LumierePipelineOutput | tuple:
        r"""Generate videos from text.

        Args:
            prompt: the text, or one per video. Or pass ``prompt_embeds`` ``(B, L, D)``.
            num_frames: clip length; a multiple of ``unet.temporal_factor`` (any length
                ``>= window_size`` with temporal windows).
            height, width: in pixels, multiples of ``unet.spatial_factor * vae_scale_factor``;
                default the U-Net's ``sample_size`` times the VAE factor.
            num_inference_steps: denoising steps.
            guidance_scale: classifier-free guidance weight; ``<= 1`` turns guidance off.
            negative_prompt: what to steer away from (the unconditional branch).
            num_videos_per_prompt: videos per prompt.
            eta: DDIM's eta (ignored by schedulers that do not take it).
            generator: a ``torch.Generator`` (or one per video) for reproducible noise.
            latents: initial noise ``(B, C, F, h, w)`` instead of sampling it.
            prompt_embeds, negative_prompt_embeds: precomputed text embeddings.
            output_type: ``"np"``, ``"pt"``, ``"pil"`` or ``"latent"``.
            return_dict: return a [`LumierePipelineOutput`] rather than a tuple.
            cross_attention_kwargs: passed to the attention processors.
            callback_on_step_end: ``fn(pipe, step, timestep, tensors) -> dict`` called after
                each step with the tensors named in ``callback_on_step_end_tensor_inputs``;
                tensors it returns replace the pipeline's.
            decode_chunk_size: frames decoded by the VAE at a time.
            autocast: run a float32 U-Net under autocast to the device's fast low-precision
                dtype where the hardware has native kernels for it (bf16 on CPUs with
                AVX-512 BF16 or AMX; see [`lumiere.performance.fast_autocast_dtype`]). Off
                by default: the pipeline computes in the dtype its components were loaded in.
            check_memory: refuse up front (``InsufficientMemoryError``, a ValueError, with
                the estimate) a call that cannot fit in the device's available memory.
            window_size: run the U-Net on overlapping temporal windows of this many frames
                (a multiple of ``unet.temporal_factor``) and average their predictions at
                every step (MultiDiffusion, :mod:`lumiere.pipelines.windows`), for clips
                longer than the model takes or was trained on. None: the whole clip at once.
            window_stride: frames between window starts, in ``[1, window_size]``; default
                ``window_size // 2``. A last window is aligned to the clip's end.
            window_weighting: ``"flat"`` or ``"pyramid"`` (frames weigh most at a window's
                middle); the weights of each frame are normalised to sum to one.
            window_noise: ``"independent"`` (noise drawn per frame) or ``"shuffled"``
                (FreeNoise's rescheduling: every window starts from a permutation of the
                first window's noise; needs ``latents=None``).
            window_batch_size: windows per U-Net call.
            distribute_windows: share the windows among the processes of an ``accelerate
                launch`` (every process makes the same call and gets the same clip).

        Returns:
            [`LumierePipelineOutput`] or ``(frames,)``.
        """
        frame = locals()
        options = {name: frame[name] for name in SAMPLING_OPTIONS}
        height, width = self.default_size(height, width)
        prepared = self.prepare(prompt, num_frames, height, width, options)
        guidance = self.guidance(prepared.prompt_embeds, prepared.negative_prompt_embeds, cross_attention_kwargs)
        return self.finish(guidance, prepared, options)
